"""Data loading vs training step: can the input pipeline keep the model busy?

Measures, in one run on the same prepared data and batch size, the samples per second that the
DataLoader delivers (memory-mapped arrays -> float tensors -> batches, moved to the device) and the
samples per second that a training step consumes (normalise, augment, forward, backward, AdamW).
A ratio above 1 means the accelerator never waits for data. The two are measured in turn, round after
round (``--repeats``), and the ratio is taken within each round.

    uv run python bench/data_loading.py                      # quickstart model on this machine
    uv run python bench/data_loading.py --backbone efficientnet_b0 --input-size 224 --workers 8
    uv run python bench/data_loading.py --smoke              # seconds: checks the script works
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from measure import add_options, check_repeats, interleaved, ratio_line, spread

from satpipe.artifacts import read_manifest
from satpipe.data.chips import ChipDataModule
from satpipe.data.eurosat import prepare_eurosat
from satpipe.io.synthetic.eurosat import write_dataset
from satpipe.training.augment import random_dihedral
from satpipe.training.classifier import SceneClassifier

Measure = Callable[[], float]


def loader_rate(prepared: Path, batch_size: int, workers: int, device: torch.device, batches: int) -> Measure:
    """A measurement of the samples per second the training loader delivers to ``device``."""
    loader = ChipDataModule(prepared, batch_size=batch_size, num_workers=workers).train_dataloader()

    def measure() -> float:
        seen, start = 0, None
        while seen < batches:
            for batch in loader:
                batch["image"].to(device, non_blocking=True)
                if start is None:  # the first batch pays for worker start-up; do not count it
                    start = time.perf_counter()
                    continue
                seen += 1
                if seen == batches:
                    break
        if device.type == "cuda":
            torch.cuda.synchronize()
        return batches * batch_size / (time.perf_counter() - start)

    return measure


def step_rate(
    prepared: Path, backbone: str, input_size: int | None, batch_size: int, device: torch.device, steps: int
) -> Measure:
    """A measurement of the samples per second a training step consumes (after three warm-up steps)."""
    m = read_manifest(prepared, "prepare")
    module = SceneClassifier(
        backbone=backbone,
        class_names=m["classes"],
        in_chans=m["chip_shape"][0],
        mean=m["mean"],
        std=m["std"],
        value_scale=m["value_scale"],
        input_size=input_size,
    ).to(device)
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-3)
    x = torch.randint(0, 255, (batch_size, *m["chip_shape"]), device=device).float()
    y = torch.randint(0, len(m["classes"]), (batch_size,), device=device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    def train(n: int) -> None:
        for _ in range(n):
            with autocast:
                loss = torch.nn.functional.cross_entropy(module(random_dihedral(x)[0]), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    def measure() -> float:
        start = time.perf_counter()
        train(steps)
        return steps * batch_size / (time.perf_counter() - start)

    train(3)  # warm-up: allocator, cuDNN algorithm choice
    return measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="resnet10t")
    parser.add_argument("--input-size", type=int, default=None)
    parser.add_argument("--bands", default="rgb", choices=["rgb", "ms"])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--steps", type=int, default=20)
    add_options(parser)
    args = parser.parse_args()
    check_repeats(parser, args)
    if args.smoke:
        args.per_class, args.steps, args.batch_size = 10, 2, 8
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        write_dataset(Path(tmp) / "raw", args.per_class, seed=0, progress=False)
        prepare_eurosat(
            Path(tmp) / "raw",
            Path(tmp) / "prepared",
            bands=args.bands,
            train_fraction=0.6,
            val_fraction=0.2,
            split_seed=0,
            max_per_class=None,
            progress=False,
        )
        prepared = Path(tmp) / "prepared"
        rates = interleaved(
            {
                "loading": loader_rate(prepared, args.batch_size, args.workers, device, args.steps),
                "training": step_rate(prepared, args.backbone, args.input_size, args.batch_size, device, args.steps),
            },
            args.repeats,
        )
    print(
        f"device {device}, {args.backbone} @ {args.input_size or 64}px, {args.bands}, batch {args.batch_size}, "
        f"{args.workers} workers"
    )
    print(f"data loading   samples/s {spread(rates['loading'], '{:.0f}')}")
    print(f"training step  samples/s {spread(rates['training'], '{:.0f}')}")
    print(ratio_line("loading/training", rates["loading"], rates["training"], "(> 1: the model never waits for data)"))


if __name__ == "__main__":
    main()
