"""`run.py segment --data-dir` on a folder laid out as a user's own would be, end to end.

A generated dataset (five uint16 bands, four classes given as a mapping of mask values 0, 10, 20, 30, some
pixels marked with ignore_index 255, georeferenced in UTM 33N with 10 m pixels and a grid of its own per
scene) is trained on briefly through `run.py`, as a user runs it. Checked: the summary's scores, the
evaluation's class-id and confidence COGs (on their source image's grid, with the colour table), that a
second identical run takes every stage from the cache, `satpipe predict` with the trained checkpoint (and
its refusal of a dataset.yaml with other classes), and that the report renders in headless Chromium with
its per-class IoU figure and class-coloured overlays.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml
from PIL import Image
from rasterio.transform import from_origin
from scipy.ndimage import gaussian_filter

from satpipe.io.description import hex_rgb
from satpipe.reporting.kclass import CORRECT
from tests.browser import rendered_dom, screenshot
from tests.cli import cache_entries, run_cli, stage_status

pytestmark = pytest.mark.slow

#: Mask value -> class name: a mapping whose values are not the class ids 0..3.
CLASSES = {0: "background", 10: "water", 20: "forest", 30: "urban"}
COLORS = {"background": "#bdbdbd", "water": "#2b83ba", "forest": "#1a9641", "urban": "#d7301f"}
BANDS = ["blue", "green", "red", "nir", "swir"]
IGNORE_INDEX = 255
#: Mean digital number of each class in each band (all far from 0, the images' no-data value).
SPECTRA = np.array(
    [
        [2000, 2200, 2400, 3000, 3200],  # background: bare soil
        [1800, 1600, 1200, 600, 400],  # water: dark in the infrared
        [1100, 1500, 1000, 5200, 2400],  # forest: bright in the near infrared
        [3000, 3000, 3100, 3200, 3600],  # urban: bright everywhere
    ]
)
#: Mask value -> class id (255 for every other value), as the pipeline maps them.
LOOKUP = np.full(256, 255, np.uint8)
LOOKUP[list(CLASSES)] = np.arange(len(CLASSES))
CRS = "EPSG:32633"
PIXEL = 10.0
SATPIPE = Path(sys.executable).parent / "satpipe"


def scene_origin(index: int) -> tuple[float, float]:
    """Upper-left corner of scene ``index``: every scene on a grid of its own."""
    return 400_000 + 3_000 * index, 5_200_000 - 2_000 * index


def write_described_dataset(root: Path, *, scenes: int = 8, size: int = 128, seed: int = 0) -> Path:
    """A segmentation folder as a user's would look: images/*.tif, masks/{stem}.tif and dataset.yaml.

    Each scene's class map is smoothed noise cut into four classes; every band is its class's spectrum plus
    noise, so one pixel's bands tell its class. A few pixels per mask are ``ignore_index``.
    """
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    values = np.array(list(CLASSES), np.uint8)
    for i in range(scenes):
        field = gaussian_filter(rng.standard_normal((size, size)), sigma=size / 12)
        edges = np.quantile(field, [0.25, 0.5, 0.75])
        ids = np.digitize(field, edges)  # 0..3, about a quarter of the pixels each
        image = SPECTRA[ids].transpose(2, 0, 1) + rng.normal(0, 150, (len(BANDS), size, size))
        mask = values[ids]
        mask[rng.random((size, size)) < 0.02] = IGNORE_INDEX  # unlabelled pixels
        mask[: size // 16, : size // 4] = IGNORE_INDEX
        profile = {"driver": "GTiff", "width": size, "height": size, "crs": CRS,
                   "transform": from_origin(*scene_origin(i), PIXEL, PIXEL)}  # fmt: skip
        stem = f"tile_{i:02d}"
        with rasterio.open(root / "images" / f"{stem}.tif", "w", count=len(BANDS), dtype="uint16", **profile) as dst:
            dst.write(np.clip(image, 1, 65535).astype(np.uint16))
        with rasterio.open(root / "masks" / f"{stem}.tif", "w", count=1, dtype="uint8", **profile) as dst:
            dst.write(mask[None])
    description = {
        "name": "test land cover",
        "task": "segmentation",
        "classes": CLASSES,
        "ignore_index": IGNORE_INDEX,
        "bands": BANDS,
        "images": "images/*.tif",
        "masks": "masks/{stem}.tif",
        "colors": COLORS,
    }
    (root / "dataset.yaml").write_text(yaml.safe_dump(description, sort_keys=False))
    return root


#: The segment preset, shrunk so that a run takes a minute on two busy CPU cores.
TINY = [
    arg
    for setting in (
        "training.epochs=2",
        "training.lr=3e-3",
        "model.arch=unet_small",
        "data.patch_size=64",
        "evaluation.window=128",
        "evaluation.overlap=32",
        "training.num_workers=0",
        "training.batch_size=4",
        "training.early_stopping_patience=None",
    )
    for arg in ("--set", setting)
]
STAGES = ("data", "prepare", "train", "evaluate", "report")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_described_dataset(tmp_path_factory.mktemp("described") / "my_tiles")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("described_workspace")
    (path / "home").mkdir()
    return path


@pytest.fixture(scope="module")
def first(workspace: Path, dataset: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(workspace, "segment", "--data-dir", str(dataset), *TINY)


def checkpoint_of(result: subprocess.CompletedProcess[str]) -> Path:
    return Path(re.search(r"^checkpoint:\s+(\S+)", result.stdout, re.M)[1])


def test_a_described_folder_trains_and_evaluates_end_to_end(first, workspace: Path, dataset: Path) -> None:
    assert first.returncode == 0, first.stderr[-3000:]
    assert stage_status(first.stdout) == {"data": "input", **dict.fromkeys(STAGES[1:], "executed")}
    headline = re.search(
        r"^mIoU (\d\.\d+)\s+overall accuracy (\d\.\d+)\s+macro F1 (\d\.\d+)\s+per-pixel baseline mIoU (\d\.\d+)$",
        first.stdout,
        re.M,
    )
    assert headline, first.stdout
    assert all(0 <= float(v) <= 1 for v in headline.groups())
    assert float(headline[4]) > 0.5  # one pixel's bands tell its class: the baseline must learn that much
    report = workspace / "reports" / "segment.html"
    assert report.exists() and "<h2>Per-class IoU</h2>" in report.read_text()
    assert f"a dataset described by its dataset.yaml, the local copy at {dataset}<" in report.read_text()
    assert checkpoint_of(first).is_file()


def test_class_id_and_confidence_cogs_lie_on_their_source_grid(first, workspace: Path, dataset: Path) -> None:
    predictions = sorted((workspace / "artifacts" / "runs").glob("*/evaluate-*/predictions/*.tif"))
    ids = [p for p in predictions if not p.name.endswith(".confidence.tif")]
    assert ids and len(predictions) == 2 * len(ids)  # a confidence beside every class-id COG
    metrics = json.loads((ids[0].parent.parent / "metrics.json").read_text())
    per_scene = {row["scene"]: row for row in metrics["per_scene"]}
    assert sorted(per_scene) == [p.stem for p in ids] and metrics["classes"] == list(CLASSES.values())
    for path in ids:
        source = dataset / "images" / path.name
        with rasterio.open(source) as src, rasterio.open(path) as out:
            assert out.crs == src.crs and out.crs.to_epsg() == 32633
            assert out.transform == src.transform and out.shape == src.shape
            assert out.dtypes[0] == "uint8" and out.nodata == 255 and out.count == 1
            assert out.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
            colormap = out.colormap(1)
            assert [colormap[k][:3] for k in range(4)] == [hex_rgb(COLORS[name]) for name in CLASSES.values()]
            values = out.read(1)
        assert set(np.unique(values).tolist()) <= {0, 1, 2, 3, 255}
        with rasterio.open(dataset / "masks" / path.name) as mask:
            truth = LOOKUP[mask.read(1)]  # mask values 0, 10, 20, 30 -> class ids 0..3; 255 stays
        labelled = truth != 255
        assert (values[labelled] != 255).all()  # every labelled pixel has data, so has a prediction
        # The COG is what was scored: its agreement with the mask is the scene's accuracy in metrics.json.
        accuracy = float((values[labelled] == truth[labelled]).mean())
        assert accuracy == pytest.approx(per_scene[path.stem]["overall_accuracy"], abs=1e-9)
        with rasterio.open(path.with_name(f"{path.stem}.confidence.tif")) as conf:
            assert conf.dtypes[0] == "float32" and conf.crs == src.crs and conf.transform == src.transform
            confidence = conf.read(1)
        known = ~np.isnan(confidence)
        assert known.any() and (confidence[known] >= 0).all() and (confidence[known] <= 1).all()
        # A 4-class softmax's largest probability is at least 1/4 wherever a class was predicted.
        assert (confidence[values != 255] >= 0.25 - 1e-6).all()


def test_a_second_identical_run_executes_nothing(first, workspace: Path, dataset: Path) -> None:
    entries = cache_entries(workspace)
    again = run_cli(workspace, "segment", "--data-dir", str(dataset), *TINY)
    assert again.returncode == 0, again.stderr[-3000:]
    status = stage_status(again.stdout)
    assert status.pop("data") == "input" and set(status) == set(STAGES[1:])
    assert all(s.startswith("cached") for s in status.values()), again.stdout
    assert cache_entries(workspace) == entries > 0
    assert checkpoint_of(again) == checkpoint_of(first)


def predict(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SATPIPE), "predict", *args], capture_output=True, text=True, timeout=600)


def test_satpipe_predict_writes_class_ids_on_the_scene_grid(first, dataset: Path, tmp_path: Path) -> None:
    scene = dataset / "images" / "tile_03.tif"
    out = tmp_path / "out" / "tile_03_classes.tif"
    result = predict(str(scene), "--checkpoint", str(checkpoint_of(first)), "--out", str(out),
                     "--dataset", str(dataset), "--window", "128", "--device", "cpu")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().startswith(f"wrote {out} and ")
    with rasterio.open(scene) as src, rasterio.open(out) as mask:
        assert mask.crs == src.crs and mask.transform == src.transform and mask.shape == src.shape
        assert mask.dtypes[0] == "uint8" and mask.nodata == 255
        assert [mask.colormap(1)[k][:3] for k in range(4)] == [hex_rgb(c) for c in COLORS.values()]
        values = mask.read(1)
    assert set(np.unique(values).tolist()) <= {0, 1, 2, 3} and (values != 255).all()  # every pixel has data
    with rasterio.open(out.with_name(f"{out.stem}.prob.tif")) as prob:
        assert prob.dtypes[0] == "float32" and prob.transform == src.transform


def test_satpipe_predict_refuses_a_dataset_with_other_classes(first, tmp_path: Path, dataset: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    description = yaml.safe_load((dataset / "dataset.yaml").read_text())
    del description["colors"]
    description["classes"] = ["background", "water", "forest", "cropland"]
    (other / "dataset.yaml").write_text(yaml.safe_dump(description))
    out = tmp_path / "out" / "m.tif"
    result = predict(str(dataset / "images" / "tile_00.tif"), "--checkpoint", str(checkpoint_of(first)),
                     "--out", str(out), "--dataset", str(other / "dataset.yaml"))  # fmt: skip
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.startswith(f"error: {other / 'dataset.yaml'}: 4 classes ") and result.stderr.count("\n") == 1
    assert (
        "background, water, forest, cropland" in result.stderr
        and "use a model trained on this dataset" in result.stderr
    )
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_the_report_renders_its_class_iou_figure_and_coloured_overlays(first, workspace: Path, tmp_path: Path) -> None:
    report = workspace / "reports" / "segment.html"
    html = report.read_text()
    for name in CLASSES.values():
        assert f">{name}</span>" in html  # the swatch legend
    assert "<h2>Per-class IoU</h2>" in html and re.search(r"<h2>(Best|Worst) scene: tile_\d\d \(mIoU", html)
    dom = rendered_dom(report, tmp_path / "profile")
    figures = html.count("Plotly.newPlot(")
    assert figures >= 5 and dom.count('class="plot-container plotly"') == figures  # every figure was drawn
    assert dom.count("<image") >= 5  # the overlay's panels: RGB, truth, prediction, baseline, errors
    for name in CLASSES.values():
        assert f">{name}</text>" in dom  # drawn by plotly.js as an axis label of the class figures
    png = screenshot(report, tmp_path / "profile", tmp_path / "report.png", size=(1200, 6000))
    pixels = np.asarray(Image.open(png).convert("RGB")).astype(int)
    # The overlays are the rows where the error map's "right" grey fills a long stretch; no chart draws it.
    is_grey = (pixels == CORRECT).all(axis=2)
    overlay = pixels[is_grey.sum(axis=1) > 40]
    assert len(overlay) > 50
    counts = {name: int((overlay == hex_rgb(c)).all(axis=2).sum()) for name, c in COLORS.items()}
    assert sum(n > 50 for n in counts.values()) >= 3, counts  # truth and prediction panels in the class colours


#: The landcover preset, shrunk: five generated 128-pixel scenes, one of them for testing, and one epoch.
LANDCOVER = [
    arg
    for setting in (
        "data.synthetic_train_scenes=4",
        "data.synthetic_test_scenes=1",
        "data.synthetic_size=128",
        "training.epochs=1",
        "training.batch_size=4",
        "evaluation.window=128",
        "evaluation.overlap=32",
    )
    for arg in ("--set", setting)
]


def test_the_landcover_preset_generates_its_scenes_and_tests_on_those_its_description_lists(
    tmp_path: Path,
) -> None:
    (tmp_path / "home").mkdir()
    result = run_cli(tmp_path, "landcover", *LANDCOVER)
    assert result.returncode == 0, result.stderr[-3000:]
    assert stage_status(result.stdout) == dict.fromkeys(STAGES, "executed")
    assert re.search(r"^mIoU \d\.\d+\s+overall accuracy .*per-pixel baseline mIoU \d\.\d+$", result.stdout, re.M)
    (generated,) = (tmp_path / "artifacts" / "runs").glob("*/synthesize-*")
    listed = (generated / "test.txt").read_text().split()
    (evaluated,) = (tmp_path / "artifacts" / "runs").glob("*/evaluate-*")
    assert len(listed) == 1 and sorted(p.name for p in (evaluated / "predictions").iterdir()) == [
        f"{listed[0]}.confidence.tif",
        f"{listed[0]}.tif",
    ]
    report = (tmp_path / "reports" / "landcover.html").read_text()
    assert "synthetic: scenes generated by satpipe" in report and str(generated) in report
    assert report.count("Plotly.newPlot(") >= 5 and ">cropland</span>" in report
