"""CloudMask data path: satpipe's checked HDF5 read plus the reference's patching, against a plain h5py read.

The baseline reads the same centre crop (1024 x 1280 at offset 88, 110) of the three datasets of each
file with h5py and nothing else, so both sides decompress the same chunks of a gzip file. satpipe's
path is the patch stage's: it checks each file's layout, reads its centre crop, masks non-finite
pixels, stacks the channels and cuts the 20 reference patches. Files are synthetic scenes of the
benchmark's real shape, written with and without gzip (the published files' compression is not
known here). Each round reads all files both ways, in an order that alternates between rounds, and
the ratio is taken within each round. "warm" reads come from the page cache (the hardest case for
satpipe: the plain read is a memory copy); "cold" ones from disk, after the page cache is dropped
before every pass (needs root; skipped otherwise). Target ratio (satpipe / plain, in files per
second) >= 0.5.

    uv run python bench/cloudmask_io.py              # 6 files, 3 rounds
    uv run python bench/cloudmask_io.py --files 12 --repeats 5
    uv run python bench/cloudmask_io.py --smoke      # one file: checks the script works
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import h5py
import numpy as np
from measure import add_options, check_repeats, interleaved, ratio_line, spread

from satpipe.data.cloudmask import CROP_OFFSET, CROP_SHAPE, file_patches
from satpipe.io.synthetic.cloudmask import file_name, render_slstr

DROP_CACHES = "/proc/sys/vm/drop_caches"


def write_files(folder: Path, count: int, compression: str | None) -> list[Path]:
    paths = []
    for i in range(count):
        data = render_slstr(np.random.default_rng(i))
        path = folder / file_name(i)
        with h5py.File(path, "w") as f:
            for key, array in data.items():
                f.create_dataset(key, data=array, compression=compression)
        paths.append(path)
    return paths


def plain_read(paths: list[Path]) -> float:
    """Files per second of h5py reading the centre crop of each file's three datasets, nothing else."""
    (top, left), (h, w) = CROP_OFFSET, CROP_SHAPE
    crop = np.s_[top : top + h, left : left + w]
    start = time.perf_counter()
    for path in paths:
        with h5py.File(path, "r") as f:
            _ = f["refs"][crop], f["bts"][crop], f["bayes"][crop]
    return len(paths) / (time.perf_counter() - start)


def satpipe_read_and_patch(paths: list[Path]) -> float:
    """Files per second of what the patch stage runs for each file."""
    start = time.perf_counter()
    for path in paths:
        file_patches(path)
    return len(paths) / (time.perf_counter() - start)


def one_pass(read: Callable[[list[Path]], float], paths: list[Path], cold: bool) -> float:
    """Files per second of one pass of ``read``, from disk when ``cold``."""
    if cold:
        drop_caches()
    return read(paths)


def can_drop_caches() -> bool:
    return os.access(DROP_CACHES, os.W_OK)


def drop_caches() -> None:
    os.sync()
    Path(DROP_CACHES).write_text("1\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=6)
    add_options(parser)
    args = parser.parse_args()
    check_repeats(parser, args)
    files = 1 if args.smoke else args.files
    caches = ("warm", "cold") if can_drop_caches() and not args.smoke else ("warm",)
    for compression in (None, "gzip"):
        with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:  # on disk, not a tmpfs
            paths = write_files(Path(tmp), files, compression)
            for cache in caches:
                plain_read(paths)  # warm the page cache for both
                reads = {"plain": plain_read, "satpipe": satpipe_read_and_patch}
                setups = {name: partial(one_pass, read, paths, cache == "cold") for name, read in reads.items()}
                rates = interleaved(setups, args.repeats)
                print(f"{compression or 'uncompressed'}, {cache}:")
                print(f"  plain h5py crop read  files/s {spread(rates['plain'], '{:.2f}')}")
                print(f"  satpipe read + patch  files/s {spread(rates['satpipe'], '{:.2f}')}")
                print("  " + ratio_line("satpipe/plain", rates["satpipe"], rates["plain"], "(target >= 0.5)"))


if __name__ == "__main__":
    main()
