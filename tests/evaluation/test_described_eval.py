import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from satpipe.artifacts import read_manifest, write_manifest
from satpipe.data.patches import PATCH_STAGE
from satpipe.errors import DataError
from satpipe.evaluation import described
from satpipe.evaluation.described import confusion_metrics, evaluate_described, score_scene
from satpipe.io.dataset_files import Scene, list_scenes
from satpipe.io.description import IGNORE, DatasetDescription, read_description
from satpipe.io.rasters import MASK_NODATA
from satpipe.io.synthetic.landcover import write_landcover_dataset

SETTINGS = {"window": 64, "overlap": 16, "blend": "cosine", "batch_size": 4, "device": "cpu"}


@pytest.fixture(scope="module")
def landcover(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five 128 px land-cover scenes (two test) whose bands all hold the mask value: the truth is readable."""
    root = tmp_path_factory.mktemp("landcover")
    write_landcover_dataset(root, train_scenes=3, test_scenes=2, size=128, progress=False)
    for image in sorted((root / "images").glob("*.tif")):
        with rasterio.open(root / "masks" / image.name) as mask:
            values = mask.read(1).astype(np.uint16)
        with rasterio.open(image, "r+") as dst:
            dst.write(np.repeat(values[None], dst.count, axis=0))
    return root


def test_scores_from_a_hand_made_confusion_matrix() -> None:
    confusion = np.array([[5, 1, 0, 0], [2, 3, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]])
    scores = confusion_metrics(confusion, ["a", "b", "c", "d"])
    a, b, c, d = scores["per_class"]
    assert a == {"class": "a", "pixels": 6, "iou": 5 / 8, "precision": 5 / 7, "recall": 5 / 6, "f1": 10 / 13}
    assert b == {"class": "b", "pixels": 6, "iou": 3 / 7, "precision": 3 / 4, "recall": 3 / 6, "f1": 6 / 10}
    assert c == {"class": "c", "pixels": 0, "iou": None, "precision": None, "recall": None, "f1": None}
    assert d == {"class": "d", "pixels": 0, "iou": 0.0, "precision": 0.0, "recall": 0.0, "f1": 0.0}  # only predicted
    assert scores["miou"] == pytest.approx((5 / 8 + 3 / 7 + 0) / 3)  # class c, absent from both, is left out
    assert scores["macro_f1"] == pytest.approx((10 / 13 + 6 / 10 + 0) / 3)
    assert scores["overall_accuracy"] == pytest.approx(8 / 12)
    empty = confusion_metrics(np.zeros((2, 2), np.int64))
    assert empty["miou"] is None and empty["overall_accuracy"] is None and empty["per_class"][0]["class"] == 0


def truth_predictor(num_classes: int) -> described.Predictor:
    """Probabilities one-hot on the class whose mask value every band holds (value 1..K -> id 0..K-1)."""

    def predict(x: Tensor) -> Tensor:
        ids = (x[:, 0].long() - 1).clamp(0, num_classes - 1)
        return F.one_hot(ids, num_classes).permute(0, 3, 1, 2).float()

    return predict


def _test_scenes(root: Path) -> tuple[DatasetDescription, list[Scene]]:
    desc = read_description(root)
    return desc, [s for s in list_scenes(desc) if s.split == "test"]


def _truth(desc: DatasetDescription, scene: Scene) -> tuple[np.ndarray, object, object]:
    with rasterio.open(scene.mask) as mask:
        return desc.class_ids(mask.read(1)), mask.crs, mask.transform


def test_predicting_the_true_classes_scores_one_and_writes_colour_cogs_on_the_scenes_grid(
    landcover: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(described, "PREVIEW_SIDE", 50)  # a preview of every 3rd pixel, kept across strips
    desc, scenes = _test_scenes(landcover)
    assert len(scenes) == 2
    for scene in scenes:
        confusion, stats, preview = score_scene(scene, desc, truth_predictor(7), tmp_path, **SETTINGS)
        truth, crs, transform = _truth(desc, scene)
        labelled = truth != IGNORE
        assert confusion.shape == (7, 7) and confusion.sum() == labelled.sum() > 0
        assert (confusion == np.diag(np.diag(confusion))).all() and confusion_metrics(confusion)["miou"] == 1.0
        assert stats.windows_run > 0 and stats.labelled_without_data == 0
        np.testing.assert_array_equal(preview["gt"], truth[::3, ::3])
        np.testing.assert_array_equal(preview["pred"], np.where(labelled, truth, MASK_NODATA)[::3, ::3])
        assert preview["rgb"].shape == (43, 43, 3) and preview["rgb"].dtype == np.uint8
        with rasterio.open(tmp_path / f"{scene.stem}.tif") as ids:
            assert ids.crs == crs and ids.transform.almost_equals(transform)
            assert ids.dtypes[0] == "uint8" and ids.nodata == MASK_NODATA
            colormap = ids.colormap(1)
            assert [colormap[k][:3] for k in range(7)] == desc.rgb_colors() and colormap[MASK_NODATA][3] == 0
            np.testing.assert_array_equal(ids.read(1), np.where(labelled, truth, MASK_NODATA))
        with rasterio.open(tmp_path / f"{scene.stem}.confidence.tif") as confidence:
            values = confidence.read(1)
            assert confidence.dtypes[0] == "float32" and confidence.crs == crs
            np.testing.assert_allclose(values[labelled], 1.0, atol=1e-5)
            assert np.isnan(values[~labelled]).all()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary left


def test_a_constant_predictor_is_scored_in_the_first_column_and_writes_nothing(landcover: Path, tmp_path: Path) -> None:
    desc, scenes = _test_scenes(landcover)
    first = F.one_hot(torch.zeros((), dtype=torch.long), 7).float()[:, None, None]  # (7, 1, 1)
    confusion, _, preview = score_scene(
        scenes[0], desc, lambda x: first.expand(x.shape[0], 7, *x.shape[2:]), None, **SETTINGS
    )
    truth, _, _ = _truth(desc, scenes[0])
    assert confusion[:, 0].sum() == confusion.sum() == (truth != IGNORE).sum()
    np.testing.assert_array_equal(confusion[:, 0], np.bincount(truth[truth != IGNORE], minlength=7))
    assert preview["rgb"].any() and not list(tmp_path.iterdir())


class TruthModel(nn.Module):
    """A stand-in segmenter: logits that pick the class every band holds."""

    def __init__(self, class_names: list[str], in_channels: int = 4) -> None:
        super().__init__()
        self.class_names, self.in_channels = class_names, in_channels
        self.scale = nn.Parameter(torch.tensor(50.0))

    def forward(self, x: Tensor) -> Tensor:
        return self.scale * truth_predictor(len(self.class_names))(x)


def _prepared(root: Path, out: Path) -> Path:
    """A prepared folder as the described patch stage writes it, with 32 px training patches."""
    desc = read_description(root)
    train = [s for s in list_scenes(desc) if s.split is None]
    images, masks = [], []
    for scene in train:
        with rasterio.open(scene.image) as img, rasterio.open(scene.mask) as msk:
            image, mask = img.read(), desc.class_ids(msk.read(1))
        for r in range(0, 128, 32):
            images += [image[:, r : r + 32, c : c + 32] for c in range(0, 128, 32)]
            masks += [mask[r : r + 32, c : c + 32] for c in range(0, 128, 32)]
    out.mkdir()
    np.save(out / "train_images.npy", np.stack(images))
    np.save(out / "train_masks.npy", np.stack(masks))
    write_manifest(
        out,
        PATCH_STAGE,
        classes=list(desc.classes),
        colors=list(desc.colors),
        bands=list(desc.bands or ()),
        dtype="uint16",
        percentiles={"low": [0.0] * 4, "high": [8.0] * 4, "q": [1, 99]},
        test_scenes=[s.stem for s in list_scenes(desc) if s.split == "test"],
        class_frequencies=[1 / 7] * 7,
    )
    return out


def test_evaluation_of_a_described_dataset_writes_metrics_cogs_and_previews(
    landcover: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prepared = _prepared(landcover, tmp_path / "prepared")
    classes = read_manifest(prepared)["classes"]
    monkeypatch.setattr(described, "load_trained", lambda path, device: TruthModel(classes))
    monkeypatch.setattr(described, "BASELINE_PIXELS", 3000)  # 50k pixels take a minute on a busy CPU
    settings = {k: v for k, v in SETTINGS.items() if k != "device"}
    out = tmp_path / "evaluate"
    result = evaluate_described(landcover, prepared, tmp_path / "train", out, **settings, progress=False,
                                provenance={"run": "test"})  # fmt: skip
    assert json.loads((out / "metrics.json").read_text()) == result
    assert result["miou"] == result["overall_accuracy"] == result["macro_f1"] == 1.0
    assert [name for name, _ in result["headline"]] == [
        "mIoU",
        "overall accuracy",
        "macro F1",
        "per-pixel baseline mIoU",
    ]
    assert (
        result["classes"] == classes and len(result["per_class"]) == 7 and result["per_class"][0]["class"] == classes[0]
    )
    assert np.array(result["confusion"]).shape == (7, 7) and sum(r["pixels"] for r in result["per_scene"]) == sum(
        p["pixels"] for p in result["per_class"]
    )
    assert result["baseline"]["name"] == "per-pixel MLP on band values" and 0 <= result["baseline"]["miou"] <= 1
    assert result["inference"] == {"window": 64, "overlap": 16, "blend": "cosine"}
    manifest = read_manifest(out, "evaluate")
    assert manifest["headline"] == result["headline"] and manifest["run"] == "test"
    stems = [row["scene"] for row in result["per_scene"]]
    assert sorted(p.name for p in (out / "predictions").iterdir()) == sorted(
        f"{stem}{suffix}" for stem in stems for suffix in (".tif", ".confidence.tif")
    )
    preview = np.load(out / "previews" / f"{stems[0]}.npz")
    assert set(preview.files) == {"rgb", "gt", "pred", "baseline_pred"} and preview["rgb"].shape == (128, 128, 3)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (TruthModel(["a", "b", "c"]), r"the model predicts 3 classes \(a, b, c\), but .*prepared holds 7"),
        (TruthModel([f"c{i}" for i in range(7)], in_channels=3), r"scene_000\d.tif: 4 band\(s\), but the model"),
    ],
)
def test_a_model_unlike_the_data_is_refused_before_anything_is_written(
    landcover: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: TruthModel, message: str
) -> None:
    prepared = _prepared(landcover, tmp_path / "prepared")
    monkeypatch.setattr(described, "load_trained", lambda path, device: model)
    with pytest.raises(DataError, match=message):
        evaluate_described(landcover, prepared, tmp_path / "train", tmp_path / "out", window=64, overlap=16,
                           blend="cosine", batch_size=4, progress=False)  # fmt: skip
    assert not (tmp_path / "out").exists()
