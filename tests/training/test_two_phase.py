"""The phase change: a frozen backbone in phase 1, a trainable one after, LR groups as specified."""

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from satpipe.artifacts import read_manifest
from satpipe.data.chips import ChipDataModule
from satpipe.models.classifier import head_and_backbone_parameters
from satpipe.training.callbacks import TwoPhaseFinetuning
from satpipe.training.classifier import SceneClassifier
from satpipe.training.trainer import build_trainer

PHASE1, EPOCHS, PHASE2_LR, RATIO, WD = 2, 4, 5e-3, 0.1, 0.05


class Probe(pl.Callback):
    """Records backbone/head state at phase boundaries and every step's learning rates and trainability."""

    def __init__(self) -> None:
        self.snapshots: dict[str, dict[str, torch.Tensor]] = {}
        self.lrs: list[dict[str, float]] = []
        self.trainable: list[tuple[bool, bool]] = []

    @staticmethod
    def state(module: SceneClassifier, part: str) -> dict[str, torch.Tensor]:
        head_ids = {id(p) for p in module.model.get_classifier().parameters()}
        tensors = {n: t for n, t in module.model.state_dict(keep_vars=True).items()}
        keep = {n: t for n, t in tensors.items() if (id(t) in head_ids) == (part == "head")}
        return {n: t.detach().clone() for n, t in keep.items()}

    def on_train_start(self, trainer: pl.Trainer, module: SceneClassifier) -> None:
        self.snapshots["start/backbone"] = self.state(module, "backbone")
        self.snapshots["start/head"] = self.state(module, "head")

    def on_train_epoch_end(self, trainer: pl.Trainer, module: SceneClassifier) -> None:
        for part in ("backbone", "head"):
            self.snapshots[f"epoch{trainer.current_epoch}/{part}"] = self.state(module, part)

    def on_train_batch_start(self, trainer: pl.Trainer, module: SceneClassifier, batch: object, idx: int) -> None:
        self.lrs.append({g["name"]: g["lr"] for g in trainer.optimizers[0].param_groups})
        head, backbone = head_and_backbone_parameters(module.model)
        self.trainable.append((all(p.requires_grad for _, p in head), any(p.requires_grad for _, p in backbone)))


@pytest.fixture(scope="module")
def run(prepared_rgb: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[SceneClassifier, Probe, pl.Trainer]:
    pl.seed_everything(0, workers=True, verbose=False)
    manifest = read_manifest(prepared_rgb, "prepare")
    module = SceneClassifier(
        backbone="test_efficientnet",
        class_names=manifest["classes"],
        in_chans=3,
        mean=manifest["mean"],
        std=manifest["std"],
        value_scale=255.0,
        phase1_epochs=PHASE1,
        phase1_lr=1e-2,
        phase2_lr=PHASE2_LR,
        backbone_lr_ratio=RATIO,
        weight_decay=WD,
        warmup_steps=3,
    )
    probe = Probe()
    trainer, _ = build_trainer(
        tmp_path_factory.mktemp("two_phase"),
        max_epochs=EPOCHS,
        monitor="val_acc",
        mode="max",
        save_top_k=1,
        precision="32-true",
        early_stopping_patience=None,
        callbacks=[TwoPhaseFinetuning(PHASE1), probe],
        progress=False,
    )
    trainer.fit(module, datamodule=ChipDataModule(prepared_rgb, batch_size=16))
    return module, probe, trainer


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_backbone_weights_and_norm_statistics_do_not_change_in_phase1(run) -> None:
    _, probe, _ = run
    s = probe.snapshots
    assert any("running_mean" in k for k in s["start/backbone"])  # batch-norm buffers are part of the check
    assert same(s["start/backbone"], s[f"epoch{PHASE1 - 1}/backbone"])
    assert not same(s["start/head"], s[f"epoch{PHASE1 - 1}/head"])  # the head did learn


def test_backbone_trains_in_phase2(run) -> None:
    _, probe, _ = run
    s = probe.snapshots
    assert not same(s[f"epoch{PHASE1 - 1}/backbone"], s[f"epoch{EPOCHS - 1}/backbone"])
    steps_per_epoch = len(probe.lrs) // EPOCHS
    p1 = PHASE1 * steps_per_epoch
    assert probe.trainable[:p1] == [(True, False)] * p1
    assert probe.trainable[p1:] == [(True, True)] * (len(probe.lrs) - p1)


def test_learning_rate_groups_follow_the_specification(run) -> None:
    module, probe, trainer = run
    groups = trainer.optimizers[0].param_groups
    assert [g["name"] for g in groups] == ["head", "head_no_decay", "backbone", "backbone_no_decay"]
    assert [g["weight_decay"] for g in groups] == [WD, 0.0, WD, 0.0]
    assert all(p.ndim <= 1 for g in groups if g["name"].endswith("no_decay") for p in g["params"])
    assert all(p.ndim > 1 for g in groups if not g["name"].endswith("no_decay") for p in g["params"])
    schedule = module.schedule()
    p1 = schedule.phase1_steps
    assert p1 == PHASE1 * len(probe.lrs) // EPOCHS and schedule.total_steps == len(probe.lrs)
    for step, lrs in enumerate(probe.lrs):
        assert lrs["head"] == pytest.approx(schedule.head_lr(step)) == pytest.approx(lrs["head_no_decay"])
        assert lrs["backbone"] == pytest.approx(schedule.backbone_lr(step)) == pytest.approx(lrs["backbone_no_decay"])
    # At the boundary: head at phase2_lr, backbone at 0.1x, then a fresh cosine over the remaining steps.
    assert probe.lrs[p1 - 1]["backbone"] == 0
    assert probe.lrs[p1]["head"] == pytest.approx(PHASE2_LR) and probe.lrs[p1]["backbone"] == pytest.approx(
        PHASE2_LR * RATIO
    )
    assert probe.lrs[-1]["head"] < 0.05 * PHASE2_LR
