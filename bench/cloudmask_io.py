"""CloudMask data path: satpipe's checked HDF5 read plus the reference's patching, against a plain h5py read.

The baseline reads the three datasets of each file with h5py and nothing else. satpipe's path is the
patch stage's: it checks each file's layout, reads its centre crop, masks non-finite pixels, stacks
the channels and cuts the 20 reference patches. Files are synthetic
scenes of the benchmark's real shape, written with and without gzip (the published files' compression
is not known here). Reads are repeated and alternated. "warm" reads come from the page cache
(the hardest case for satpipe: the plain read is a memory copy); "cold" ones from disk, after the
page cache is dropped before every pass (needs root; skipped otherwise). Target ratio (satpipe /
plain, in files per second) >= 0.5.

    uv run python bench/cloudmask_io.py              # 6 files, 3 rounds
    uv run python bench/cloudmask_io.py --files 12 --rounds 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from satpipe.data.cloudmask import file_patches
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
    start = time.perf_counter()
    for path in paths:
        with h5py.File(path, "r") as f:
            _ = f["refs"][()], f["bts"][()], f["bayes"][()]
    return len(paths) / (time.perf_counter() - start)


def satpipe_read_and_patch(paths: list[Path]) -> float:
    start = time.perf_counter()
    for path in paths:
        file_patches(path)  # what the patch stage runs for each file
    return len(paths) / (time.perf_counter() - start)


def can_drop_caches() -> bool:
    return os.access(DROP_CACHES, os.W_OK)


def drop_caches() -> None:
    os.sync()
    Path(DROP_CACHES).write_text("1\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    caches = ("warm", "cold") if can_drop_caches() else ("warm",)
    for compression in (None, "gzip"):
        with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:  # on disk, not a tmpfs
            paths = write_files(Path(tmp), args.files, compression)
            for cache in caches:
                plain_read(paths)  # warm the page cache for both
                plain, ours = [], []
                for _ in range(args.rounds):
                    for results, run in ((plain, plain_read), (ours, satpipe_read_and_patch)):
                        if cache == "cold":
                            drop_caches()
                        results.append(run(paths))
                p, o = statistics.median(plain), statistics.median(ours)
                print(
                    f"{compression or 'uncompressed':>12}, {cache}: plain h5py {p:6.2f} files/s, satpipe read + patch "
                    f"{o:6.2f} files/s, ratio {o / p:.2f} (target >= 0.5)"
                )


if __name__ == "__main__":
    main()
