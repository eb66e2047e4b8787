"""Experiment tracking: the W&B mode, a run's config and name, and test scores in the run that trained the model."""

from __future__ import annotations

import importlib.metadata
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from satpipe.artifacts import read_manifest


def resolve_wandb_mode(requested: str, environ: Mapping[str, str] | None = None) -> tuple[str, str | None]:
    """Choose the W&B mode for a run.

    Online needs both a request and an API key: without a key W&B fails at once, and with a key but no
    network it hangs for minutes, so offline is the default and the safe fallback.

    Args:
        requested: ``"online"``, ``"offline"`` or ``"disabled"``.
        environ: Where to look for ``WANDB_API_KEY`` (the process environment by default).

    Returns:
        The mode to use and, when it differs from the request, why.
    """
    environ = os.environ if environ is None else environ
    if requested == "online" and not environ.get("WANDB_API_KEY"):
        return "offline", "tracking.mode=online but WANDB_API_KEY is not set; logging offline (wandb sync later)"
    return requested, None


def run_origin(data_source: str, commit: str) -> dict[str, Any]:
    """Where a run came from, for its W&B config: the satpipe version, the git commit and the data."""
    return {"satpipe_version": importlib.metadata.version("satpipe"), "git_commit": commit, "data_source": data_source}


def run_config(config: dict[str, Any], **details: Any) -> dict[str, Any]:
    """A W&B run's config: every section of the resolved ``config`` (its ``name`` as ``preset``) and ``details``."""
    sections = dict(config)
    return {"preset": sections.pop("name"), **details, **sections}


def run_name(preset: str, seed: int, label: str = "") -> str:
    """A W&B run's readable name: ``<preset>[-<label>]-train-seed<seed>`` (label: a sweep trial, an arm)."""
    return "-".join([preset, *([label] if label else []), "train", f"seed{seed}"])


def log_evaluation(
    train_dir: Path, result: dict[str, Any], *, mode: str, dir: str | None = None, entity: str | None = None
) -> str | None:
    """Log an evaluation's scores, tables and confusion matrix into the W&B run that trained the scored model.

    The run is resumed by the id its training manifest records. Offline, wandb writes the resumed part
    in a folder of its own and ``wandb sync`` uploads the two, in order, into one run. Scores go to the
    step after training's last, so they never collide with a training step.

    Args:
        train_dir: The training stage output (its manifest names the W&B run).
        result: What the evaluation returned (``headline``, and ``per_class``/``confusion`` or ``per_scene``).
        mode: ``"online"``, ``"offline"`` or ``"disabled"`` (nothing is logged).
        dir: Where W&B keeps its files.
        entity: The W&B entity.

    Returns:
        The W&B run id logged to, or None when training logged to no run or tracking is disabled.
    """
    trained = read_manifest(Path(train_dir)).get("wandb")
    if not trained or mode == "disabled":
        return None
    import wandb

    run = wandb.init(
        id=trained["id"], project=trained["project"], entity=entity, mode=mode, dir=dir, resume="allow",
        reinit="create_new",  # training runs of other trials may be open in this process
    )  # fmt: skip
    with run:
        scores = {f"test/{_slug(name)}": value for name, value in result["headline"]}
        run.log({**scores, **_evaluation_media(result)}, step=trained.get("step"))
    return run.id


def _slug(name: str) -> str:
    """``"test accuracy (reference)"`` -> ``"accuracy_reference"``."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower().removeprefix("test ")).strip("_")


def _evaluation_media(result: dict[str, Any]) -> dict[str, Any]:
    import wandb

    media: dict[str, Any] = {}
    for key in ("per_class", "per_scene"):
        if rows := result.get(key):
            flat = [_flatten(row) for row in rows]
            media[f"test/{key}"] = wandb.Table(columns=list(flat[0]), data=[list(row.values()) for row in flat])
    if (confusion := _confusion(result)) is not None:
        counts, names = confusion
        table = wandb.Table(
            columns=["Actual", "Predicted", "nPredictions"],
            data=[[names[i], names[j], counts[i][j]] for i in range(len(names)) for j in range(len(names))],
        )
        # The chart wandb.plot.confusion_matrix draws, from counts (it would need every prediction).
        media["test/confusion_matrix"] = wandb.plot_table(
            vega_spec_name="wandb/confusion_matrix/v1",
            data_table=table,
            fields={"Actual": "Actual", "Predicted": "Predicted", "nPredictions": "nPredictions"},
            string_fields={"title": "Confusion matrix (test)"},
        )
    return media


def _flatten(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in row.items():
        flat.update(_flatten(value, f"{prefix}{key}/") if isinstance(value, dict) else {prefix + key: value})
    return flat


def _confusion(result: dict[str, Any]) -> tuple[list[list[int]], list[str]] | None:
    """Counts (rows are true classes) and class names: the classifier's, or cloud pixels summed over scenes."""
    if "confusion" in result:
        return result["confusion"], result["classes"]
    scenes = result.get("per_scene") or []
    if scenes and all(k in scenes[0] for k in ("tp", "fp", "fn", "tn")):
        tp, fp, fn, tn = (sum(int(s[k]) for s in scenes) for k in ("tp", "fp", "fn", "tn"))
        return [[tn, fp], [fn, tp]], ["clear", "cloud"]
    return None
