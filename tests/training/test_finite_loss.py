"""A loss that turns NaN or infinite stops every kind of training at once, in one line, and places nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from satpipe.errors import NonFiniteLossError
from satpipe.training.classifier import SceneClassifier
from satpipe.training.fit import fit_classifier, fit_segmenter
from satpipe.training.segmentation import Segmenter
from satpipe.training.semi import SemiSegmenter, fit_semi
from tests.conftest import SMALL_SEGMENTATION, SMALL_TRAINING

POISONED_STEP = 2


@pytest.fixture(scope="module")
def patches(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """64-pixel patches of three small synthetic scenes."""
    from satpipe.data.patches import prepare_cloud_patches
    from satpipe.io.synthetic.clouds import write_cloud_dataset

    root = tmp_path_factory.mktemp("finite_loss")
    write_cloud_dataset(root / "raw", train_scenes=3, test_scenes=0, size=256, seed=2, progress=False)
    prepare_cloud_patches(root / "raw", root / "prepared", patch_size=64, overlap=0, min_valid_fraction=0.2,
                          val_fraction=0.34, split_seed=0, progress=False)  # fmt: skip
    return root / "prepared"


def classifier(prepared_rgb: Path, patches: Path, out: Path) -> None:
    fit_classifier(prepared_rgb, out, **{**SMALL_TRAINING, "epochs": 2, "batch_size": 8}, progress=False)


SEGMENTATION = {**SMALL_SEGMENTATION, "arch": "unet_small", "epochs": 2, "batch_size": 4, "slidemix": False}


def segmenter(prepared_rgb: Path, patches: Path, out: Path) -> None:
    fit_segmenter(patches, out, **SEGMENTATION, progress=False)


def semi(prepared_rgb: Path, patches: Path, out: Path) -> None:
    fit_semi(patches, out, method="fixmatch", fraction=0.5, split_by="patch", split_seed=0, threshold=0.9,
             ema_decay=None, **SEGMENTATION, progress=False)  # fmt: skip


@pytest.mark.parametrize(
    ("module", "fit"), [(SceneClassifier, classifier), (Segmenter, segmenter), (SemiSegmenter, semi)]
)
def test_a_non_finite_loss_stops_training_naming_the_epoch_and_step(
    module: type, fit: Callable[..., None], prepared_rgb: Path, patches: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    step = module.training_step
    seen: list[int] = []

    def poisoned(self: Any, batch: Any, batch_idx: int) -> torch.Tensor:
        seen.append(self.trainer.global_step)
        loss = step(self, batch, batch_idx)
        return loss * float("nan") if self.trainer.global_step == POISONED_STEP else loss

    monkeypatch.setattr(module, "training_step", poisoned)
    with pytest.raises(NonFiniteLossError) as error:
        fit(prepared_rgb, patches, tmp_path / "train")
    message = str(error.value)
    assert message.startswith(f"training loss became nan at epoch 0, step {POISONED_STEP};") and "\n" not in message
    assert seen == list(range(POISONED_STEP + 1))  # stopped at once, not at the end of the run
    assert list(tmp_path.iterdir()) == []  # no training output, not even a partial one
