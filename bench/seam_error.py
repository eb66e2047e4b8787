"""Seam error at window borders, with and without blending.

A trained Sat-UNet predicts synthetic cloudy scenes twice: whole, in one window (no seams), and tiled
into overlapping windows with each blending mode. Near the windows' inner borders a network sees the
least context, so that is where tiled predictions drift from the whole-scene one. Reported per mode:
the mean absolute difference from the whole-scene prediction within 4 pixels of an inner window
border and elsewhere, the mean jump between neighbouring pixels across borders (vs. elsewhere), and
the Jaccard against the ground truth. Errors, not times, so one pass per scene says it all; the ratios
give their median and range over scenes.

    uv run python bench/seam_error.py                        # trains a small Sat-UNet first (a few minutes)
    uv run python bench/seam_error.py --checkpoint CKPT      # a model from `uv run run.py clouds`
    uv run python bench/seam_error.py --smoke                # one epoch, one scene: checks the script works
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from measure import ratios, spread

from satpipe.data.patches import prepare_cloud_patches
from satpipe.evaluation.clouds import counts
from satpipe.evaluation.engine import BLEND_MODES, ArraySink, predict_scene, window_starts
from satpipe.evaluation.segmentation import cloud_predictor
from satpipe.io.rasters import ArraySource
from satpipe.io.synthetic.clouds import landsat_dn, render_scene, write_cloud_dataset
from satpipe.training.fit import fit_segmenter
from satpipe.training.segmentation import Segmenter

SIZE, WINDOW, BAND = 768, 256, 4


def train_quickly(root: Path, scenes: int = 8, epochs: int = 6) -> Path:
    write_cloud_dataset(root / "raw", train_scenes=scenes, test_scenes=1, size=SIZE, seed=0, progress=False)
    prepare_cloud_patches(
        root / "raw",
        root / "prep",
        patch_size=128,
        overlap=0,
        min_valid_fraction=0.2,
        val_fraction=0.2,
        split_seed=0,
        progress=False,
    )
    manifest = fit_segmenter(
        root / "prep",
        root / "train",
        arch="satunet",
        normalization="percentile",
        epochs=epochs,
        lr=1e-3,
        weight_decay=1e-4,
        loss="ce",
        augment=True,
        slidemix=True,
        slidemix_gamma=2,
        slidemix_beta=1.0,
        batch_size=16,
        num_workers=0,
        precision="32-true",
        save_top_k=1,
        early_stopping_patience=None,
        overlays_every=1,
        seed=0,
        progress=False,
    )
    return root / "train" / manifest["best_checkpoint"]


def boundaries(overlap: int) -> list[int]:
    """Columns (and rows) where a window begins or ends inside the scene: where seams can appear."""
    starts = window_starts(SIZE, WINDOW, WINDOW - overlap)
    return sorted({*starts[1:], *(s + WINDOW for s in starts[:-1] if s + WINDOW < SIZE)})


def near_boundaries(overlap: int) -> np.ndarray:
    """(SIZE, SIZE) True within BAND pixels of a window boundary, across rows or columns."""
    near = np.zeros(SIZE, bool)
    for c in boundaries(overlap):
        near[max(0, c - BAND) : c + BAND] = True
    return near[:, None] | near[None, :]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--scenes", type=int, default=3)
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--smoke", action="store_true", help="train one epoch on two scenes and score one: seconds")
    args = parser.parse_args()
    if args.smoke:
        args.scenes = 1
    with tempfile.TemporaryDirectory() as tmp:
        sizes = {"scenes": 2, "epochs": 1} if args.smoke else {}
        ckpt = args.checkpoint or train_quickly(Path(tmp), **sizes)
        module = Segmenter.load_from_checkpoint(ckpt, map_location="cpu").eval()
        predict = cloud_predictor(module, torch.device("cpu"))
        rows = {name: [] for name in ("none, no overlap", *BLEND_MODES)}
        for index in range(args.scenes):
            scene = render_scene(np.random.default_rng([99, index]), SIZE, SIZE)
            source = ArraySource(landsat_dn(scene))
            whole = ArraySink(1, SIZE, SIZE)
            # One window: the seam-free reference.
            predict_scene(source, predict, whole, channels=1, window=SIZE, overlap=0)
            valid = scene.valid
            for name in rows:
                blend, overlap = ("none", 0) if name == "none, no overlap" else (name, args.overlap)
                tiled = ArraySink(1, SIZE, SIZE)
                predict_scene(source, predict, tiled, channels=1, window=WINDOW, overlap=overlap, blend=blend)
                error = np.abs(tiled.prob[0] - whole.prob[0])
                near = near_boundaries(overlap) & valid
                jumps = np.abs(np.diff(tiled.prob[0], axis=1))  # between columns c-1 and c, at index c-1
                edges = np.zeros(SIZE - 1, bool)
                edges[[c - 1 for c in boundaries(overlap)]] = True
                pair_valid = valid[:, 1:] & valid[:, :-1]
                at_edges, elsewhere = jumps[:, edges][pair_valid[:, edges]], jumps[:, ~edges][pair_valid[:, ~edges]]
                jaccard = counts(tiled.prob[0][valid], scene.clouds[valid], 0.5).metrics()["jaccard"]
                rows[name].append(
                    (error[near].mean(), error[valid & ~near].mean(), at_edges.mean(), elsewhere.mean(), jaccard)
                )
    print(
        f"{args.scenes} synthetic scenes of {SIZE}x{SIZE}, windows of {WINDOW}, overlap {args.overlap}; "
        f"reference: the whole scene in one window"
    )
    header = ("MAE near borders", "MAE elsewhere", "jump at borders", "jump elsewhere", "Jaccard")
    print(f"{'mode':<18}" + "".join(f"{h:>18}" for h in header))
    for name, values in rows.items():
        m = np.mean(values, axis=0)
        print(f"{name:<18}" + "".join(f"{v:>18.5f}" for v in m))
    base = [values[0] for values in rows["none, no overlap"]]
    for name in BLEND_MODES:
        per_scene = [values[0] for values in rows[name]]
        print(f"ratio border MAE {name}/no-overlap tiling = {spread(ratios(per_scene, base), unit='scenes')}")


if __name__ == "__main__":
    main()
