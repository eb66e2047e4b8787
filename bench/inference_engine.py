"""Full-scene K-class inference engine: throughput against bare model calls and a naive loop, and peak memory.

The model predicts ``--classes`` classes (8 by default): the engine blends K probability channels.

1. Engine vs bare forward: the engine (windowed reads from a GeoTIFF, batching, blending K channels,
   streaming) against the model alone on the same windows, already in memory, same batch size. Target >= 0.9.
2. Engine vs a one-window-at-a-time loop: open, read one window, predict it alone, blend it into
   full-size arrays, as scripts often do. Target >= 3x.
3. Peak memory of `python -m satpipe.predict` on a 10,000 x 10,000 x 4 scene (target < 2.5 GiB), writing
   the class-id and confidence COGs, measured as the child process's maximum resident set size.

The three passes of 1 and 2 take turns, round after round (``--repeats``), and each ratio is taken
within a round.

    uv run python bench/inference_engine.py                  # all three, Sat-UNet
    uv run python bench/inference_engine.py --skip-memory    # throughput only
    uv run python bench/inference_engine.py --smoke          # a small scene and model, no memory run: seconds
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import rasterio
import torch
from measure import add_options, check_repeats, interleaved, ratio_line, spread
from rasterio.windows import Window

from satpipe.evaluation.engine import ArraySink, axis_weights, predict_scene, window_starts
from satpipe.evaluation.segmentation import model_predictor
from satpipe.io.rasters import RasterScene
from satpipe.training.segmentation import Segmenter

WINDOW, OVERLAP = 384, 64


def write_scene(path: Path, size: int, rows_per_block: int = 512) -> Path:
    """A smooth 4-band uint16 scene written strip by strip (no full copy in memory)."""
    profile = {
        "driver": "GTiff",
        "width": size,
        "height": size,
        "count": 4,
        "dtype": "uint16",
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "compress": "deflate",
        "nodata": 0,
    }
    x = np.linspace(0, 8 * np.pi, size, dtype=np.float32)
    with rasterio.open(path, "w", **profile) as dst:
        for row in range(0, size, rows_per_block):
            rows = min(rows_per_block, size - row)
            y = np.linspace(row, row + rows, rows, dtype=np.float32)[:, None] / size * 8 * np.pi
            strip = 20000 + 15000 * np.sin(x[None, :] + y) * np.cos(y)  # (rows, size)
            dst.write(
                np.stack([strip + 500 * b for b in range(4)]).astype(np.uint16), window=Window(0, row, size, rows)
            )
    return path


def make_checkpoint(path: Path, arch: str, classes: int) -> Path:
    """A Lightning checkpoint of an untrained K-class segmenter (speed and memory do not depend on the weights)."""
    module = Segmenter(arch=arch, band_names=["red", "green", "blue", "nir"], low=[5000] * 4, high=[40000] * 4,
                       class_names=[f"class{k}" for k in range(classes)])  # fmt: skip
    torch.save(
        {
            "state_dict": module.state_dict(),
            "hyper_parameters": dict(module.hparams),
            "pytorch-lightning_version": pl.__version__,
        },
        path,
    )
    return path


def naive_loop(scene_path: Path, predict, size: int, classes: int, device: torch.device) -> float:
    """One window at a time: read, predict alone, blend into full-size numpy arrays."""
    starts = window_starts(size, WINDOW, WINDOW - OVERLAP)
    num, den = np.zeros((classes, size, size), np.float64), np.zeros((size, size), np.float64)
    start = time.perf_counter()
    with rasterio.open(scene_path) as src:
        for y in starts:
            for x in starts:
                window = src.read(window=Window(x, y, WINDOW, WINDOW)).astype(np.float32)
                prob = predict(torch.from_numpy(window)[None].to(device))[0].float().cpu().numpy()
                w = np.outer(
                    axis_weights(size, y, WINDOW, OVERLAP, "cosine"), axis_weights(size, x, WINDOW, OVERLAP, "cosine")
                )
                num[:, y : y + WINDOW, x : x + WINDOW] += w * prob
                den[y : y + WINDOW, x : x + WINDOW] += w
    _ = num / den
    return time.perf_counter() - start


def bare_forward(scene_path: Path, predict, size: int, batch: int, device: torch.device) -> float:
    """The model alone on the same windows, preloaded in memory."""
    starts = window_starts(size, WINDOW, WINDOW - OVERLAP)
    with rasterio.open(scene_path) as src:
        data = src.read().astype(np.float32)
    windows = torch.from_numpy(np.stack([data[:, y : y + WINDOW, x : x + WINDOW] for y in starts for x in starts]))
    windows = windows.to(device)
    start = time.perf_counter()
    for i in range(0, len(windows), batch):
        predict(windows[i : i + batch])
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def engine_pass(scene_path: Path, predict, size: int, classes: int, batch: int, device: torch.device) -> float:
    """The engine over the whole scene: windowed reads, batching, blending, streaming into a sink."""
    with RasterScene([scene_path]) as source:
        start = time.perf_counter()
        predict_scene(source, predict, ArraySink(classes, size, size), channels=classes, window=WINDOW,
                      overlap=OVERLAP, batch_size=batch, device=device)  # fmt: skip
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="satunet")
    parser.add_argument("--size", type=int, default=1664, help="side of the throughput scene (pixels)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--classes", type=int, default=8, help="classes the model predicts (K)")
    parser.add_argument("--memory-arch", default=None, help="the memory run's architecture (default: --arch)")
    parser.add_argument("--memory-size", type=int, default=10000, help="side of the memory scene (pixels)")
    parser.add_argument("--skip-memory", action="store_true")
    add_options(parser)
    args = parser.parse_args()
    check_repeats(parser, args)
    if args.smoke:
        args.arch, args.size, args.batch_size, args.skip_memory = "unet_small", 448, 4, True
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = make_checkpoint(Path(tmp) / "model.ckpt", args.arch, args.classes)
        module = Segmenter.load_from_checkpoint(ckpt, map_location=device).eval()
        predict = model_predictor(module, device)
        scene = write_scene(Path(tmp) / "scene.tif", args.size)
        n = len(window_starts(args.size, WINDOW, WINDOW - OVERLAP)) ** 2
        predict(torch.zeros(args.batch_size, 4, WINDOW, WINDOW, device=device))  # warm-up
        seconds = interleaved(
            {
                "bare forward": partial(bare_forward, scene, predict, args.size, args.batch_size, device),
                "engine": partial(engine_pass, scene, predict, args.size, args.classes, args.batch_size, device),
                "naive loop": partial(naive_loop, scene, predict, args.size, args.classes, device),
            },
            args.repeats,
        )
        setup = f"{args.size}x{args.size} scene, {n} windows of {WINDOW} (overlap {OVERLAP}), batch {args.batch_size}"
        print(f"device {device}, {args.arch}, {args.classes} classes, {setup}")
        for name, values in seconds.items():
            print(f"{name:<13} windows/s {spread([n / v for v in values], '{:.2f}')}")
        print(ratio_line("engine/bare forward throughput", seconds["bare forward"], seconds["engine"],
                         "(target >= 0.9)"))  # fmt: skip
        print(ratio_line("engine/naive loop throughput", seconds["naive loop"], seconds["engine"], "(target >= 3)"))
        if args.skip_memory:
            return
        big = write_scene(Path(tmp) / "big.tif", args.memory_size)
        if args.memory_arch:  # memory is the accumulators' and the files' more than the network's
            ckpt = make_checkpoint(Path(tmp) / "memory.ckpt", args.memory_arch, args.classes)
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "satpipe.predict",
                str(big),
                "--checkpoint",
                str(ckpt),
                "--out",
                str(Path(tmp) / "mask.tif"),  # the command as a user runs it, with its defaults
            ],
            check=True,
        )
        # One measurement: the peak does not depend on a noisy moment the way a time does.
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB -> GiB
        print(
            f"peak memory of predict on {args.memory_size}x{args.memory_size}x4, {args.classes} classes, "
            f"{args.memory_arch or args.arch}: {peak:.2f} GiB (target < 2.5 GiB), {time.perf_counter() - start:.0f} s"
        )


if __name__ == "__main__":
    main()
