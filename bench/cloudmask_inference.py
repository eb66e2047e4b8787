"""CloudMask inference per scene: the reference geometry against satpipe's blended engine, same model and batch.

The reference predicts 63 windows of 256 pixels at a stride of 176 and keeps their centres; the blended
engine predicts the same number of windows (overlap 80) and blends them with a cosine ramp. Both run
the reference U-Net and Sat-UNet (9 inputs, untrained: the time does not depend on the weights) on
synthetic scenes of the benchmark's shape, on the GPU when there is one. Prints seconds per scene and
the ratio blended / reference (1.0 means blending costs nothing). The two geometries take turns, round
after round (``--repeats``), and the ratio is taken within each round.

    uv run python bench/cloudmask_inference.py
    uv run python bench/cloudmask_inference.py --scenes 5 --batch-size 32
    uv run python bench/cloudmask_inference.py --smoke      # a corner of one scene, reference U-Net: checks the script
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial

import numpy as np
import torch
from measure import add_options, check_repeats, interleaved, ratio_line, spread

from satpipe.evaluation.cloudmask import WINDOW, reference_predict
from satpipe.evaluation.engine import ArraySink, Predictor, predict_scene
from satpipe.evaluation.segmentation import cloud_predictor
from satpipe.io.cloudmask import BAND_NAMES, NORM_HIGH, NORM_LOW
from satpipe.io.rasters import ArraySource
from satpipe.io.synthetic.cloudmask import render_slstr
from satpipe.training.segmentation import Segmenter


def scene(seed: int) -> np.ndarray:
    data = render_slstr(np.random.default_rng(seed))
    return np.concatenate([data["refs"], data["bts"]], axis=2).transpose(2, 0, 1).copy()


def timed(fn: Callable[[], None]) -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def run_reference(image: np.ndarray, *, predict: Predictor, batch_size: int, device: torch.device) -> None:
    reference_predict(image, predict, np.asarray(NORM_LOW, np.float32), batch_size=batch_size, device=device)


def run_blended(image: np.ndarray, *, predict: Predictor, batch_size: int, device: torch.device, overlap: int) -> None:
    predict_scene(ArraySource(image, nodata=NORM_LOW), predict, ArraySink(1, *image.shape[1:]), channels=1,
                  window=WINDOW, overlap=overlap, blend="cosine", batch_size=batch_size, device=device)  # fmt: skip


def per_scene(run: Callable[[np.ndarray], None], scenes: list[np.ndarray]) -> Callable[[], float]:
    """A measurement of the mean seconds ``run`` takes per scene, over every scene."""
    return lambda: statistics.mean(timed(partial(run, s)) for s in scenes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--overlap", type=int, default=80)
    parser.add_argument("--arch", action="append", help="model(s) to time (default: unet_cloudmask and satunet)")
    add_options(parser)
    args = parser.parse_args()
    check_repeats(parser, args)
    archs = args.arch or (["unet_cloudmask"] if args.smoke else ["unet_cloudmask", "satunet"])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    scenes = [scene(i) for i in range(1 if args.smoke else args.scenes)]
    if args.smoke:  # a corner of 2 x 2 reference windows
        scenes = [s[:, :352, :352].copy() for s in scenes]
    print(f"device {device}, {len(scenes)} scenes of {scenes[0].shape}, batch {args.batch_size}")
    for arch in archs:
        module = Segmenter(arch=arch, band_names=list(BAND_NAMES), low=list(NORM_LOW), high=list(NORM_HIGH),
                                clip=False)  # fmt: skip
        predict = cloud_predictor(module, device)
        reference = partial(run_reference, predict=predict, batch_size=args.batch_size, device=device)
        blended = partial(run_blended, predict=predict, batch_size=args.batch_size, device=device, overlap=args.overlap)
        reference(scenes[0])  # warm-up: allocator, cuDNN algorithm choice
        blended(scenes[0])
        seconds = interleaved({"reference": per_scene(reference, scenes), "blended": per_scene(blended, scenes)},
                              args.repeats)  # fmt: skip
        print(f"{arch}:")
        print(f"  reference  s/scene {spread(seconds['reference'])}")
        print(f"  blended    s/scene {spread(seconds['blended'])}")
        print("  " + ratio_line("blended/reference", seconds["blended"], seconds["reference"]))


if __name__ == "__main__":
    main()
