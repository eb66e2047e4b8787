"""The K-class (land-cover) report, built from a made-up training history and evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from satpipe.artifacts import write_manifest
from satpipe.io.description import hex_rgb
from satpipe.reporting.kclass import CORRECT, colourise, error_map, kclass_report, scenes_to_show
from satpipe.reporting.provenance import RunFacts
from tests.browser import rendered_dom, screenshot

CLASSES = ["grassland", "building", "water", "forest"]
COLOURS = ["#a6d96a", "#d7301f", "#2b83ba", "#1a9641"]
SCENES = {"scene_a": 0.71, "scene_b": 0.42, "scene_c": 0.58}  # mIoU: a best, b worst
MIOU = 0.6123
FIGURES = 5 + len(SCENES)  # IoU bars, confusion, per-scene, curves, frequencies; one overlay per shown scene


def _class_rows(ious: list[float]) -> list[dict[str, float | str | int]]:
    return [
        {
            "class": c,
            "iou": iou,
            "precision": iou + 0.1,
            "recall": iou + 0.05,
            "f1": iou + 0.07,
            "pixels": 1000 * (i + 1),
        }
        for i, (c, iou) in enumerate(zip(CLASSES, ious, strict=True))
    ]


def _preview(path: Path, seed: int) -> None:
    """Blocky class maps (16-pixel cells) so the scaled-up images keep exact colours inside each block."""
    rng = np.random.default_rng(seed)
    gt = np.kron(rng.integers(0, 4, (4, 6)), np.ones((16, 16), int)).astype(np.uint8)
    gt[:16, :16] = 255  # an unlabelled corner
    pred = gt.copy()
    pred[16:32, 16:48] = (pred[16:32, 16:48] + 1) % 4
    pred[:16, :16] = 255
    base = np.where(rng.random(gt.shape) < 0.3, rng.integers(0, 4, gt.shape), gt).astype(np.uint8)
    rgb = rng.integers(0, 255, (*gt.shape, 3), dtype=np.uint8)
    np.savez(path, rgb=rgb, gt=gt, pred=pred, baseline_pred=base)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("kclass")
    train, evaluate = root / "train", root / "evaluate"
    (evaluate / "previews").mkdir(parents=True)
    train.mkdir()
    lines = ["epoch,step,train_loss_epoch,val_loss,val_miou"]
    lines += [f"{e},{10 * (e + 1)},{1.2 - 0.2 * e},{1.3 - 0.2 * e},{0.3 + 0.1 * e}" for e in range(4)]
    (train / "metrics.csv").write_text("\n".join(lines) + "\n")
    write_manifest(train, "train", monitor="val_miou", best_checkpoint="checkpoints/best.ckpt", best_score=0.6,
                   epochs_run=4, precision="32-true", device="cpu")  # fmt: skip
    confusion = [[900, 50, 30, 20], [40, 1800, 100, 60], [10, 20, 2900, 70], [30, 60, 10, 3900]]
    metrics = {
        "protocol": "full scenes, pixels pooled over the test scenes",
        "classes": CLASSES,
        "colors": COLOURS,
        "inference": {"window": 256, "overlap": 0.25, "blend": "gaussian"},
        "confusion": confusion,
        "per_class": _class_rows([0.55, 0.48, 0.81, 0.6]),
        "miou": MIOU,
        "overall_accuracy": 0.8876,
        "macro_f1": 0.7345,
        "per_scene": [
            {"scene": s, "miou": m, "overall_accuracy": m + 0.2, "pixels": 4000, "windows": 4, "confusion": confusion}
            for s, m in SCENES.items()
        ],
        "baseline": {
            "name": "per-pixel MLP",
            "confusion": confusion,
            "per_class": _class_rows([0.3, 0.2, 0.7, 0.4]),
            "miou": 0.4,
            "overall_accuracy": 0.7,
            "macro_f1": 0.5,
        },
        "class_frequencies": [0.2, 0.1, 0.3, 0.4],
        "headline": [["mIoU", MIOU]],
    }
    (evaluate / "metrics.json").write_text(json.dumps(metrics))
    for i, scene in enumerate(SCENES):
        _preview(evaluate / "previews" / f"{scene}.npz", i)
    return {"train": train, "evaluate": evaluate}


@pytest.fixture(scope="module")
def report(run: dict[str, Path], synthetic_run: RunFacts) -> Path:
    config = {"name": "unit", "train": {"lr": 0.001, "epochs": 4}}
    path = run["evaluate"].parent / "report.html"
    path.write_text(kclass_report(run["train"], run["evaluate"], config, "land cover", synthetic_run))
    return path


def test_page_has_every_part(report: Path) -> None:
    html = report.read_text()
    for name in CLASSES:
        assert f">{name}</span>" in html and f'"{name}"' in html  # in the swatch legend and on the figures' axes
    assert html.count("Plotly.newPlot(") == FIGURES
    assert f">{MIOU:.4f}<" in html and ">+0.2123<" in html and "mIoU, per-pixel baseline (per-pixel MLP)" in html
    for title in ("Per-class IoU", "Confusion matrix", "Per-scene mIoU", "Training curves",
                  "Class frequencies (training split)", "Settings"):  # fmt: skip
        assert f"<h2>{title}</h2>" in html
    # Best two and the one scene left for worst, each once.
    assert "<h2>Best scene: scene_a (mIoU 0.710)</h2>" in html and "<h2>Best scene: scene_c (mIoU 0.580)</h2>" in html
    assert "<h2>Worst scene: scene_b (mIoU 0.420)</h2>" in html and html.count(" scene: scene_") == 3
    assert html.count('"source":"data:image') == 5 * len(SCENES)
    assert "<th>train.lr</th><td>0.001</td>" in html and "synthetic: scenes generated by satpipe" in html


def test_best_and_worst_scenes_are_each_shown_once(tmp_path: Path) -> None:
    rows = [{"scene": s, "miou": m} for s, m in (("a", 0.1), ("b", 0.9), ("c", 0.5), ("d", 0.3), ("e", 0.7))]
    for row in rows:
        (tmp_path / f"{row['scene']}.npz").touch()
    assert [(w, r["scene"]) for w, r in scenes_to_show(rows, tmp_path)] == [
        ("Best", "b"), ("Best", "e"), ("Worst", "a"), ("Worst", "d")]  # fmt: skip
    assert [r["scene"] for _, r in scenes_to_show(rows[:1], tmp_path)] == ["a"]
    (tmp_path / "b.npz").unlink()  # a scene without a preview is not offered
    assert "b" not in [r["scene"] for _, r in scenes_to_show(rows, tmp_path)]


def test_colours_and_error_map() -> None:
    gt = np.array([[0, 1, 2, 255]], np.uint8)
    pred = np.array([[0, 2, 255, 1]], np.uint8)
    assert [tuple(c) for c in colourise(pred, COLOURS)[0]] == [hex_rgb(COLOURS[0]), hex_rgb(COLOURS[2]),
                                                               (0, 0, 0), hex_rgb(COLOURS[1])]  # fmt: skip
    # Right: grey; wrong (also no prediction): the true class's colour; unlabelled: black.
    assert [tuple(c) for c in error_map(gt, pred, COLOURS)[0]] == [CORRECT, hex_rgb(COLOURS[1]),
                                                                    hex_rgb(COLOURS[2]), (0, 0, 0)]  # fmt: skip


def test_disagreeing_class_counts_are_refused(run: dict[str, Path], synthetic_run: RunFacts, tmp_path: Path) -> None:
    bad = tmp_path / "evaluate"
    bad.mkdir()
    metrics = json.loads((run["evaluate"] / "metrics.json").read_text())
    metrics["colors"] = COLOURS[:3]
    (bad / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(ValueError, match="4 classes, 3 colours"):
        kclass_report(run["train"], bad, {}, "x", synthetic_run)


def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    dom = rendered_dom(report, tmp_path / "profile")
    assert dom.count('class="plot-container plotly"') == FIGURES  # every figure was drawn by plotly.js
    assert "heatmaplayer" in dom and dom.count("<image") >= 5 * len(SCENES)
    png = screenshot(report, tmp_path / "profile", tmp_path / "report.png", size=(1200, 6000))
    pixels = np.asarray(Image.open(png).convert("RGB")).astype(int)
    # The overlays are the rows where the error map's "right" grey fills a long stretch; no chart draws it.
    is_grey = (pixels == CORRECT).all(axis=2)
    overlay = pixels[is_grey.sum(axis=1) > 40]
    assert len(overlay) > 100
    counts = {c: int((overlay == hex_rgb(c)).all(axis=2).sum()) for c in COLOURS}
    assert max(counts.values()) > 20, counts
