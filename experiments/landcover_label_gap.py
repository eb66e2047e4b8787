"""Is there room for semi-supervised learning on `landcover`? Labels of 1/16 of the training scenes against all.

The `landcover` preset's data (generated, prepared once), then for each seed: the training patches of a
seeded 1/16 of the training scenes (whole scenes, as annotation campaigns label them) and of every training
scene, each trained with the preset's model and settings for the same number of optimiser steps (the
preset's epochs over every scene), and scored on the held-out test scenes predicted whole. Prints each
run's full-scene mIoU, mean ± standard deviation per share, and the gap that unlabelled scenes could fill.

    uv run python experiments/landcover_label_gap.py              # 3 seeds, about 35 minutes on 2 CPU cores
    uv run python experiments/landcover_label_gap.py --seeds 1 --set training.epochs=10   # a quick look
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # config.py lives at the project root

import config
from satpipe.artifacts import read_manifest, write_manifest
from satpipe.comparison import mean_and_spread
from satpipe.data.described import prepare_described_patches
from satpipe.data.patches import PATCH_STAGE
from satpipe.evaluation.described import confusion_metrics, score_scene
from satpipe.evaluation.segmentation import model_predictor
from satpipe.io.dataset_files import list_scenes
from satpipe.io.description import read_description
from satpipe.io.synthetic.landcover import write_landcover_dataset
from satpipe.training.checkpoints import load_trained
from satpipe.training.fit import fit_segmenter

SHARES = (1 / 16, 1.0)


def labelled_subset(prepared: Path, out: Path, share: float, seed: int) -> int:
    """A prepared folder holding the training patches of a seeded ``share`` of the training scenes (val unchanged).

    Returns:
        How many training patches it holds.
    """
    manifest = read_manifest(prepared, PATCH_STAGE)
    scenes = list(manifest["scenes"]["train"])  # in the order their patches were written
    chosen = set(np.random.default_rng(seed).permutation(scenes)[: max(1, round(len(scenes) * share))].tolist())
    starts = np.cumsum([0] + [manifest["scenes"]["train"][s] for s in scenes])
    rows = np.concatenate([np.arange(starts[i], starts[i + 1]) for i, s in enumerate(scenes) if s in chosen])
    out.mkdir(parents=True)
    for kind in ("images", "masks"):
        np.save(out / f"train_{kind}.npy", np.load(prepared / f"train_{kind}.npy", mmap_mode="r")[rows])
        (out / f"val_{kind}.npy").symlink_to(prepared / f"val_{kind}.npy")
    kept = {s: n for s, n in manifest["scenes"]["train"].items() if s in chosen}
    fields = {k: v for k, v in manifest.items() if k not in ("stage", "created")}
    write_manifest(out, PATCH_STAGE, **{**fields, "scenes": {**manifest["scenes"], "train": kept},
                                        "counts": {**manifest["counts"], "train": len(rows)}})  # fmt: skip
    return len(rows)


def steps_per_epoch(patches: int, batch_size: int) -> int:
    """Optimiser steps of one epoch (the training loader drops a ragged last batch when it has more than one)."""
    return patches // batch_size if patches > batch_size else 1


def test_miou(data: Path, prepared: Path, train_dir: Path, cfg: config.DescribedConfig) -> float:
    """Full-scene mIoU of the best checkpoint, pooled over the test scenes."""
    desc = read_description(data)
    tests = set(read_manifest(prepared, PATCH_STAGE)["test_scenes"])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    predict = model_predictor(load_trained(train_dir), device)  # type: ignore[arg-type]
    e = cfg.evaluation
    pooled = sum(
        score_scene(s, desc, predict, None, window=e.window, overlap=e.overlap, blend=e.blend,
                    batch_size=e.batch_size, device=device)[0]
        for s in list_scenes(desc) if s.stem in tests
    )  # fmt: skip
    return confusion_metrics(pooled)["miou"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override the preset")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    cfg = config.build_config("landcover", args.set)
    d, t = cfg.data, cfg.training
    start = time.perf_counter()
    results: dict[float, list[float]] = {share: [] for share in SHARES}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_landcover_dataset(
            root / "data",
            train_scenes=d.synthetic_train_scenes,
            test_scenes=d.synthetic_test_scenes,
            size=d.synthetic_size,
            seed=d.synthetic_seed,
        )
        prepared = root / "prepared"
        prepare_described_patches(root / "data", prepared, patch_size=d.patch_size, overlap=d.overlap,
                                  min_valid_fraction=d.min_valid_fraction, val_fraction=d.val_fraction,
                                  test_fraction=d.test_fraction, split_seed=d.split_seed)  # fmt: skip
        every = read_manifest(prepared, PATCH_STAGE)["counts"]["train"]
        steps = t.epochs * steps_per_epoch(every, t.batch_size)
        for seed in range(t.seed, t.seed + args.seeds):
            for share in SHARES:
                subset = root / f"share{share:.4f}-seed{seed}"
                patches = labelled_subset(prepared, subset / "prepared", share, seed)
                epochs = math.ceil(steps / steps_per_epoch(patches, t.batch_size))
                settings = {**asdict(cfg.model), **asdict(t), "epochs": epochs, "seed": seed}
                fit_segmenter(subset / "prepared", subset / "train", **settings, progress=False)
                miou = test_miou(root / "data", prepared, subset / "train", cfg)
                results[share].append(miou)
                print(f"share {share:.4f} seed {seed}: {patches} patches, {epochs} epochs ({steps} steps), "
                      f"test mIoU {miou:.4f}", flush=True)  # fmt: skip
    summary = {f"{share:.4f}": mean_and_spread(values) for share, values in results.items()}
    for share, (mean, spread) in summary.items():
        print(f"share {share}: mIoU {mean:.4f} ± {spread:.4f} over {args.seeds} seeds")
    gap = summary[f"{SHARES[1]:.4f}"][0] - summary[f"{SHARES[0]:.4f}"][0]
    print(f"gap (every label minus 1/16): {gap:+.4f} mIoU; {(time.perf_counter() - start) / 60:.1f} minutes")
    print(json.dumps({"runs": {f"{k:.4f}": v for k, v in results.items()}, "gap": gap}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
