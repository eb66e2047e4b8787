import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import config
from satpipe.data.semi import SemiDataModule, labelled_indices
from satpipe.errors import ConfigError, DataError
from satpipe.evaluation.segmentation import load_segmenter
from satpipe.training.history import epoch_series, read_metrics_csv
from satpipe.training.semi import SemiSegmenter, consistency_loss, fit_semi, pseudo_labels


def segmenter(**kwargs: Any) -> SemiSegmenter:
    return SemiSegmenter(arch="unet_small", band_names=["r", "g", "b", "n"], low=[0.0] * 4, high=[1.0] * 4, **kwargs)


def test_pseudo_labels_carry_no_gradient_and_leave_batch_norm_alone() -> None:
    module = segmenter().train()
    before = {k: v.clone() for k, v in module.model.state_dict().items()}
    labels, confidence = pseudo_labels(module.model, module.class_logits, torch.rand(2, 4, 32, 32))
    assert not labels.requires_grad and not confidence.requires_grad and module.model.training
    assert set(labels.unique().tolist()) <= {0, 1} and (confidence >= 0.5).all() and (confidence <= 1).all()
    after = module.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # running statistics untouched


def test_consistency_loss_keeps_confident_pixels_and_divides_by_valid_ones() -> None:
    logits = torch.zeros(1, 2, 2, 2)  # equal logits of two classes: cross-entropy log 2 whatever the target
    target = torch.tensor([[[1, 0], [1, 0]]])
    keep = torch.tensor([[[True, True], [False, False]]])
    valid = torch.tensor([[[True, True], [True, False]]])
    assert consistency_loss(logits, target, keep, valid) == pytest.approx(2 * np.log(2) / 3)
    assert consistency_loss(logits, target, torch.zeros_like(keep), valid) == 0
    confident = torch.tensor([0.99, 0.97, 0.6, 0.5])
    assert (confident >= 0.95).tolist() == [True, True, False, False]


def test_hidden_labels_never_reach_the_loss() -> None:
    module = segmenter(method="fixmatch", threshold=0.5)
    module.log = lambda *a, **k: None  # type: ignore[method-assign]
    image = torch.rand(4, 4, 32, 32)
    batch = {
        "labelled": {"image": image, "mask": (torch.rand(4, 32, 32) > 0.5).long()},
        "unlabelled": {"image": image, "valid": torch.ones(4, 32, 32, dtype=torch.uint8)},
    }
    losses = []
    for hidden in (torch.zeros(4, 32, 32), torch.ones(4, 32, 32)):
        torch.manual_seed(0)
        batch["unlabelled"]["mask"] = hidden.long()
        losses.append(module.training_step(batch, 0))
    assert losses[0] == losses[1] and losses[0].requires_grad


def test_ema_teacher_follows_the_student() -> None:
    module = segmenter(method="fixmatch", ema_decay=0.9)
    assert module.teacher is not None and not any(p.requires_grad for p in module.teacher.parameters())
    with torch.no_grad():
        for p in module.model.parameters():
            p.add_(1.0)
    teacher_before = next(module.teacher.parameters()).clone()
    module.on_train_batch_end(None, None, 0)
    student = next(module.model.parameters())
    assert torch.allclose(next(module.teacher.parameters()), 0.9 * teacher_before + 0.1 * student)


def test_labelled_subsets_by_patch_and_by_scene() -> None:
    scenes = {"a": 10, "b": 20, "c": 30, "d": 4}
    by_patch = labelled_indices(scenes, 1 / 16, "patch", seed=0)
    assert len(by_patch) == 4 and np.array_equal(by_patch, labelled_indices(scenes, 1 / 16, "patch", seed=0))
    by_scene = labelled_indices(scenes, 0.2, "scene", seed=3)
    starts = {"a": 0, "b": 10, "c": 30, "d": 60}
    whole = [name for name in scenes if set(range(starts[name], starts[name] + scenes[name])) <= set(by_scene)]
    assert sum(scenes[n] for n in whole) == len(by_scene) >= 0.2 * 64  # whole scenes only, at least the share
    assert np.array_equal(labelled_indices(scenes, 1, "scene", seed=3), np.arange(64))  # every label: the reference
    assert config.labelled_fractions(config.SemiSupervisedConfig(fractions="1/16, 0.25,1")) == [1 / 16, 0.25, 1]
    for bad in ("3/2", "0", "1/0", "half"):
        with pytest.raises(ConfigError, match=r"shares in \(0, 1\]"):
            config.labelled_fractions(config.SemiSupervisedConfig(fractions=bad))


def test_every_arm_takes_the_same_steps_and_both_arms_the_same_labels(trained_segmenter: dict[str, Path]) -> None:
    prepared = trained_segmenter["prepared"]
    arms = [
        SemiDataModule(prepared, 4, fraction=1 / 8, split_by="patch", split_seed=1, unlabelled=u) for u in (False, True)
    ]
    every = SemiDataModule(prepared, 4, fraction=1, split_by="patch", split_seed=1, unlabelled=False)
    assert np.array_equal(arms[0].labelled, arms[1].labelled)
    assert set(arms[1].pool).isdisjoint(arms[1].labelled) and len(every.pool) == 0
    loaders = [arm.train_dataloader() for arm in (*arms, every)]
    supervised, semi, reference = (list(iter(loader)) for loader in loaders)
    total = len(arms[0].labelled) + len(arms[0].pool)
    assert len(supervised) == len(semi) == len(reference) == arms[0].steps_per_epoch == total // 4
    batch = semi[0][0]
    assert set(batch) == {"labelled", "unlabelled"} and batch["unlabelled"]["valid"].dtype == torch.uint8
    seen = {image.numpy().tobytes() for b in reference for image in b[0]["labelled"]["image"]}
    assert len(seen) > 0.9 * total  # the reference draws (almost) every training patch in an epoch
    with pytest.raises(DataError, match="every training patch is labelled"):
        SemiDataModule(prepared, 4, fraction=1, split_by="patch", split_seed=1, unlabelled=True)


def test_unlabelled_scenes_join_the_pool(trained_segmenter: dict[str, Path], tmp_path: Path) -> None:
    from satpipe.data.patches import prepare_unlabelled_patches

    prepared = trained_segmenter["prepared"]
    made = prepare_unlabelled_patches(trained_segmenter["raw"] / "38-Cloud_test", tmp_path / "u", patch_size=128,
                                      overlap=0, min_valid_fraction=0.2, progress=False)  # fmt: skip
    extra = made["counts"]["unlabelled"]
    plain, more = (
        SemiDataModule(prepared, 4, fraction=1 / 8, split_by="patch", split_seed=1, unlabelled=True, unlabelled_dir=u)
        for u in (None, tmp_path / "u")
    )
    assert np.array_equal(plain.labelled, more.labelled) and more.extra == extra > 0
    assert more.steps_per_epoch == (len(more.labelled) + len(more.pool) + extra) // 4 > plain.steps_per_epoch
    batches = list(iter(more.train_dataloader()))
    assert len(batches) == more.steps_per_epoch
    seen = {image.numpy().tobytes() for b in batches for image in b[0]["unlabelled"]["image"]}
    assert len(seen) > len(more.pool)  # one epoch draws the unlabelled scenes' patches too

    # Patches of another product (8-bit here) cannot share a pool with 16-bit labelled ones.
    manifest = json.loads((tmp_path / "u" / "manifest.json").read_text())
    (tmp_path / "u" / "manifest.json").write_text(json.dumps({**manifest, "dtype": "uint8"}))
    with pytest.raises(DataError, match="unlabelled patches have dtype uint8"):
        SemiDataModule(prepared, 4, fraction=1 / 8, split_by="patch", split_seed=1, unlabelled=True,
                       unlabelled_dir=tmp_path / "u")  # fmt: skip


@pytest.mark.parametrize("method", ["fixmatch", "unimatch"])
def test_a_semi_supervised_arm_learns_and_logs_its_pseudo_labels(
    method: str, trained_segmenter: dict[str, Path], tmp_path: Path
) -> None:
    manifest = fit_semi(
        trained_segmenter["prepared"], tmp_path / "train", method=method, fraction=0.25, split_by="patch",
        split_seed=0, threshold=0.9, ema_decay=0.99 if method == "unimatch" else None, arch="unet_small",
        normalization="percentile", epochs=4, lr=3e-3, weight_decay=0.0, loss="ce", batch_size=8, num_workers=0,
        precision="32-true", save_top_k=1, early_stopping_patience=None, seed=0, progress=False, slidemix=True,
    )  # fmt: skip
    assert manifest["labelled_patches"] > 0 and manifest["method"] == method
    rows = read_metrics_csv(tmp_path / "train" / "metrics.csv")
    _, sup = epoch_series(rows, "train_sup_loss")
    _, accuracy = epoch_series(rows, "pseudo_accuracy_all")
    assert sup[-1] < sup[0] and epoch_series(rows, "confident_ratio_epoch")[1] and accuracy[-1] > 0.6
    assert manifest["best_score"] > 0.3  # validation Jaccard after four short epochs, well above an empty mask
    module = load_segmenter(tmp_path / "train")
    assert isinstance(module, SemiSegmenter) and module.hparams.method == method
