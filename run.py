"""Run a satpipe pipeline locally (the default) or on a Union/Flyte cluster.

uv run run.py                                   # offline quick start: synthetic EuroSAT, CPU
uv run run.py eurosat                           # EuroSAT RGB from its public archive
uv run run.py eurosat --data-dir ~/data/EuroSAT # a local copy instead of downloading
uv run run.py quickstart --set training.phase2_lr=1e-3
uv run run.py cloudmask --seeds 5               # MLCommons CloudMask on synthetic scenes, five seeds
uv run run.py semi --data-dir ~/data/38-Cloud --unlabelled-dir ~/data/unlabelled   # labels vs more scenes
uv run run.py clouds --sweep training.lr=3e-4,1e-3 --sweep model.arch=satunet,unet_small   # a cached grid sweep
uv run run.py eurosat --remote                  # submit to the cluster in .flyte/config.yaml
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import config
from satpipe.errors import SatpipeError

PROJECT_ROOT = Path(__file__).resolve().parent
FLYTE_CONFIG = PROJECT_ROOT / ".flyte" / "config.yaml"
_SATPIPE_ERRORS = {cls.__name__ for cls in (SatpipeError, *SatpipeError.__subclasses__())}


def _is_input_error(exc: BaseException | None) -> bool:
    """True for satpipe's bad-input errors, also when Flyte re-raises them from a task."""
    return isinstance(exc, SatpipeError) or getattr(exc, "code", None) in _SATPIPE_ERRORS


class _HideInputErrorTracebacks(logging.Filter):
    """Flyte logs every task failure with a traceback; for bad input one line from us is the whole story."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and _is_input_error(record.exc_info[1]))


def _check_eurosat(cfg: Any, data_dir: Path) -> None:
    from satpipe.data.eurosat import check_chips

    d = cfg.data
    check_chips(data_dir, bands=d.bands, max_per_class=d.max_per_class, split_seed=d.split_seed)


def _check_38cloud(cfg: Any, data_dir: Path | None, unlabelled_dir: Path | None = None) -> None:
    from satpipe.data.patches import check_cloud_folders

    d = cfg.data
    check_cloud_folders(
        data_dir,
        unlabelled_dir,
        val_fraction=d.val_fraction,
        split_seed=d.split_seed,
        cross_dataset=cfg.evaluation.cross_dataset,
    )


def _check_cloudmask(cfg: Any, data_dir: Path) -> None:
    from satpipe.data.cloudmask import check_cloudmask_files

    d = cfg.data
    check_cloudmask_files(data_dir, max_files=d.max_files, val_fraction=d.val_fraction, split_seed=d.split_seed)


def _check_described(cfg: Any, data_dir: Path) -> None:
    from satpipe.data.described import check_described_folder

    d = cfg.data
    check_described_folder(
        data_dir, val_fraction=d.val_fraction, test_fraction=d.test_fraction, split_seed=d.split_seed, progress=True
    )


@dataclass(frozen=True)
class Family:
    """How run.py drives one task family: its pipeline task and the check of a local data folder.

    The check reads folder layouts and file headers (and, for a dataset.yaml, the values of every mask), so
    it takes seconds to minutes on a full dataset
    and finds a missing or odd file before any stage runs.
    """

    workflow: str
    pipeline: str
    check_data: Callable[[Any, Path], None]

    def load(self) -> Any:
        """The pipeline task (imported only when a run needs it)."""
        return getattr(importlib.import_module(self.workflow), self.pipeline)


FAMILIES = {
    config.ClassificationConfig: Family("workflows.classification", "classification_pipeline", _check_eurosat),
    config.SegmentationConfig: Family("workflows.segmentation", "segmentation_pipeline", _check_38cloud),
    config.CloudMaskConfig: Family("workflows.cloudmask", "cloudmask_pipeline", _check_cloudmask),
    config.SemiConfig: Family("workflows.semi", "semi_pipeline", _check_38cloud),
    config.DescribedConfig: Family("workflows.described", "described_pipeline", _check_described),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line: a preset, overrides and where to run."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "preset",
        nargs="?",
        default=config.DEFAULT_PRESET,
        help=f"one of: {', '.join(f'{k} ({v.description})' for k, v in config.PRESETS.items())}",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting, e.g. --set training.phase2_lr=1e-4 (repeatable)",
    )
    parser.add_argument("--data-dir", type=Path, help="use a local copy of the dataset (sets data.source=local)")
    parser.add_argument(
        "--unlabelled-dir",
        type=Path,
        help="scenes without labels for the semi preset's unlabelled pool (38-Cloud layout)",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        metavar="N",
        help=f"repeat training over N seeds (presets {', '.join(config.presets_with('seeds'))})",
    )
    parser.add_argument(
        "--sweep",
        action="append",
        default=[],
        metavar="KEY=VALUES",
        help="sweep a setting: key=v1,v2,... or, with --sweep-mode random, key=log:low:high (repeatable)",
    )
    parser.add_argument("--sweep-mode", choices=("grid", "random"), default="grid", help="grid (default) or random")
    parser.add_argument("--trials", type=int, default=10, help="trials of a random sweep (default 10)")
    parser.add_argument("--sweep-seed", type=int, default=0, help="seed of a random sweep's draws")
    parser.add_argument(
        "--parallel", type=int, metavar="N", help="trials at once (default: 1 locally, all on a cluster)"
    )
    parser.add_argument("--remote", action="store_true", help="submit to the cluster in .flyte/config.yaml")
    parser.add_argument("--no-cache", action="store_true", help="execute every stage even if a cached result exists")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    return parser.parse_args(argv)


def resolve(args: argparse.Namespace) -> tuple[Any, Path | None]:
    """The validated config and data folder (not yet checked: see :func:`check_inputs`), or a ConfigError."""
    cfg = config.build_config(args.preset, args.set)
    if args.seeds is not None:
        if args.preset not in (takes := config.presets_with("seeds")):
            raise config.ConfigError(f"--seeds applies to the presets {', '.join(takes)}, not {args.preset!r}")
        cfg = config.set_value(cfg, "seeds", args.seeds)
        config.validate(cfg)
    data_dir = args.data_dir.expanduser().resolve() if args.data_dir else None
    if data_dir is not None:
        cfg = config.set_value(cfg, "data.source", "local")
    elif cfg.data.source == "local":
        raise config.ConfigError("data.source=local needs --data-dir PATH")
    return cfg, data_dir


def resolve_unlabelled(args: argparse.Namespace, cfg: Any) -> Path | None:
    """The folder of unlabelled scenes (checked with the labelled one: see :func:`check_inputs`), or None."""
    if args.unlabelled_dir is None:
        return None
    if not isinstance(cfg, config.SemiConfig):
        raise config.ConfigError(f"--unlabelled-dir applies to the semi preset, not {args.preset!r}")
    if args.sweep:
        raise config.ConfigError("--unlabelled-dir cannot be combined with --sweep yet")
    return args.unlabelled_dir.expanduser().resolve()


def check_inputs(cfg: Any, data_dir: Path | None, unlabelled_dir: Path | None) -> None:
    """Check every local folder the run will read, before any stage runs and before the pretrained weights.

    Raises:
        DatasetNotFoundError, DataError: Naming the folder or file that is missing or wrong.
    """
    if unlabelled_dir is not None:  # the semi preset: both folders at once, so their band types are compared
        _check_38cloud(cfg, data_dir, unlabelled_dir)
    elif data_dir is not None:
        FAMILIES[type(cfg)].check_data(cfg, data_dir)


def sweep_trials(args: argparse.Namespace, data_dir: Path | None) -> tuple[list[str], list[list[str]]]:
    """The sweep's shared overrides and each trial's, every trial's config validated; empty without --sweep."""
    if not args.sweep:
        return [], []
    from satpipe.sweep import expand

    if args.parallel is not None and args.parallel < 1:
        raise config.ConfigError(f"--parallel must be >= 1, got {args.parallel}")
    if args.seeds is not None:
        raise config.ConfigError("--seeds cannot be combined with --sweep: a trial trains one seed")
    base = [*args.set, *(["data.source=local"] if data_dir else [])]
    trials = expand(args.sweep, args.sweep_mode, args.trials, args.sweep_seed)
    for trial in trials:
        config.build_config(args.preset, [*base, *trial])
    return base, trials


def preflight(cfg: Any, remote: bool) -> None:
    """Checks that would otherwise fail only after earlier stages ran."""
    if remote and not FLYTE_CONFIG.exists():
        raise config.ConfigError(
            f"{FLYTE_CONFIG}: missing; create it with `flyte create config` (README, Run on Union)"
        )
    if getattr(cfg.model, "pretrained", False) and not remote:
        from satpipe.models.classifier import check_backbone

        check_backbone(cfg.model.backbone, pretrained=True)  # offline: fail now, not after data preparation


def main(argv: list[str] | None = None) -> int:
    """Run the pipeline for a preset; returns the exit status."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # GDAL's errors reach Python as exceptions, which satpipe reports in one line; rasterio also logs each
    # at INFO, which would put GDAL's own lines before that one.
    logging.getLogger("rasterio").setLevel(logging.WARNING)
    try:
        cfg, data_dir = resolve(args)
        unlabelled_dir = resolve_unlabelled(args, cfg)
        base, trials = sweep_trials(args, data_dir)
        check_inputs(cfg, data_dir, unlabelled_dir)
        if args.print_config:
            print(config.json.dumps(config.to_dict(cfg), indent=2))
            return 0
        preflight(cfg, args.remote)
    except SatpipeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    import flyte
    from flyte.io import Dir
    from flyteplugins.wandb import wandb_config

    from satpipe.artifacts import content_key
    from satpipe.tracking import resolve_wandb_mode, run_origin
    from satpipe.versioning import git_commit
    from tasks import artifacts_root

    logging.getLogger("flyte").addFilter(_HideInputErrorTracebacks())
    # W&B's banners and run summaries repeat what the summary below says; its warnings still show.
    os.environ.setdefault("WANDB_SHOW_INFO", "false")
    wandb_mode, note = resolve_wandb_mode(cfg.tracking.mode)
    if note:
        print(f"note: {note}")
    wandb_kwargs: dict[str, Any] = {
        "project": cfg.tracking.project,
        "entity": cfg.tracking.entity,
        "mode": wandb_mode,
        "group": f"{cfg.name}-sweep-{_digest(base, trials)}" if trials else cfg.name,
        "tags": [cfg.name, *(["sweep"] if trials else [])],
        # Each training run adds its whole config (tasks/train.py logged_on).
        "config": run_origin(str(data_dir) if data_dir else cfg.data.source, git_commit(PROJECT_ROOT)),
    }
    if args.remote:
        flyte.init_from_config(FLYTE_CONFIG, root_dir=PROJECT_ROOT)
    else:
        flyte.init(root_dir=PROJECT_ROOT)
        artifacts_root().mkdir(parents=True, exist_ok=True)
        wandb_kwargs["dir"] = str(artifacts_root())  # W&B adds its own wandb/ folder below

    # Keyed by content, so a moved or touched copy of the same data still hits the cache.
    def local_input(folder: Path | None) -> tuple[Dir | None, str | None]:
        return (Dir.from_local_sync(str(folder)), content_key(folder)) if folder else (None, None)

    data, digest = local_input(data_dir)
    started = time.monotonic()
    runner = flyte.with_runcontext(
        mode="remote" if args.remote else "local",
        custom_context=wandb_config(**wandb_kwargs),
        disable_run_cache=args.no_cache,
        overwrite_cache=args.no_cache,  # what executes every stage on a cluster (ignored locally)
    )
    try:
        if trials:
            from workflows.sweep import sweep_pipeline

            run = runner.run(
                sweep_pipeline, args.preset, base, trials, data_dir=data, data_digest=digest, parallel=args.parallel
            )
        else:
            unlabelled, unlabelled_digest = local_input(unlabelled_dir)
            extra = {"unlabelled_dir": unlabelled, "unlabelled_digest": unlabelled_digest} if unlabelled else {}
            run = runner.run(FAMILIES[type(cfg)].load(), cfg, data_dir=data, data_digest=digest, **extra)
        if args.remote:
            print(f"submitted: {run.url}")
            return 0
        result = run.outputs()[0]
    except Exception as e:
        if not _is_input_error(e):
            raise
        print(f"error: {e}", file=sys.stderr)
        return 1
    seconds = time.monotonic() - started
    if trials:
        print_sweep_summary(cfg, args.preset, base, result, seconds, local_data=data_dir is not None)
    else:
        print_summary(cfg, result, seconds, local_data=data_dir is not None)
    return 0


def _digest(*parts: Any) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:8]


def _status(out: Any, run: str) -> str:
    """``executed`` by this run, ``cached (from run ...)`` or ``input`` (a folder no stage wrote)."""
    from satpipe.artifacts import read_manifest

    manifest = Path(out.path) / "manifest.json"
    made_by = read_manifest(Path(out.path)).get("run") if manifest.exists() else None
    if made_by is None:
        return "input"
    return "executed" if made_by == run else f"cached (from run {made_by})"


def _arm(train: dict[str, Any]) -> str:
    """Which arm of an experiment a training run belongs to ("" outside the semi-supervised experiment)."""
    from fractions import Fraction

    return f"{train['method']} {Fraction(train['fraction']).limit_denominator(1000)}" if "method" in train else ""


def print_summary(cfg: Any, result: Any, seconds: float, local_data: bool) -> None:
    """Which stages ran or came from the cache, the test metrics, and where everything is."""
    from satpipe.artifacts import read_manifest
    from satpipe.comparison import gain_over, mean_and_spread

    print(f"\nrun {result.run} ({cfg.name}) finished in {seconds:.1f} s")
    trains = [read_manifest(Path(t.path)) for t in result.trained]
    labels = [f"{_arm(t)} seed {t.get('seed')}".strip() for t in trains]
    for stage, out in (("data", result.raw), ("prepare", result.prepared), ("train", result.trained),
                       ("evaluate", result.evaluated), ("report", result.report)):  # fmt: skip
        if stage == "data" and local_data:
            line = "input"
        elif isinstance(out, list) and len(out) > 1:
            line = "; ".join(f"{label} {_status(o, result.run)}" for label, o in zip(labels, out, strict=True))
        else:
            line = _status(out[0] if isinstance(out, list) else out, result.run)
        print(f"  {stage:<9} {line}")
    print()
    arms: dict[str, list[list[Any]]] = {}
    for train, evaluated in zip(trains, result.evaluated, strict=True):
        arms.setdefault(_arm(train), []).append(read_manifest(Path(evaluated.path))["headline"])
    for arm, headlines in arms.items():
        prefix = f"{arm}: " if arm else ""
        if len(headlines) == 1:
            print(prefix + "   ".join(f"{name} {value:.4f}" for name, value in headlines[0]))
            continue
        for i, (name, _) in enumerate(headlines[0]):
            mean, spread = mean_and_spread([h[i][1] for h in headlines])
            print(f"{prefix}{name} {mean:.4f} ± {spread:.4f} over {len(headlines)} seeds")
    scores = {arm: [h[0][1] for h in headlines] for arm, headlines in arms.items()}
    for arm, values in scores.items():  # the semi-supervised experiment: each method against supervised-only
        method, _, share = arm.partition(" ")
        name = arms[arm][0][0][0]
        if method and method != "supervised" and (base := scores.get(f"supervised {share}")):
            g = gain_over(base, values)
            beats = "beats" if g["beats_spread"] else "does not beat"
            print(
                f"{arm} vs supervised: {name} gain {g['gain']:+.4f}, which {beats} the seed spread ({g['spread']:.4f})"
            )
        elif method == "supervised" and share != "1" and (every := scores.get("supervised 1")):
            worth = gain_over(every, values)["gain"]
            print(f"{arm} vs every label: {name} {worth:+.4f} (what the hidden labels are worth)")
    made_by = read_manifest(Path(result.report.path))["run"]
    print(f"report:      {latest_report(cfg.name, f'{cfg.name}-{made_by}', Path(result.report.path))}")
    for label, trained, train in zip(labels, result.trained, trains, strict=True):
        print(
            f"{'checkpoint:' if len(labels) == 1 else label + ':':<12} {Path(trained.path) / train['best_checkpoint']}"
        )
        if wandb := train.get("wandb"):  # none when tracking was disabled
            print(f"W&B run:     {wandb['url'] or wandb['dir']}")
    offline = [w for t in trains if (w := t.get("wandb")) and not w["url"]]
    if offline:  # an evaluation logs into a second folder with its training's run id; sync uploads both, in order
        folder = Path(offline[0]["dir"]).parent
        if len(offline) == 1:
            hint = f"`wandb sync {folder}/offline-run-*-{offline[0]['id']}` uploads it with its evaluation"
        else:
            hint = f"`wandb sync {folder}/offline-run-*` uploads every run there not synced yet, evaluations included"
        print(f"             (offline; {hint})")


def print_sweep_summary(cfg: Any, preset: str, base: list[str], result: Any, seconds: float, local_data: bool) -> None:
    """Data stages, each trial's status and objective, the report, and the command of the best trial."""
    from satpipe.artifacts import read_manifest
    from satpipe.sweep import command

    print(f"\nrun {result.run} ({cfg.name} sweep, {len(result.trials)} trials) finished in {seconds:.1f} s")
    for stage, outs in (("data", result.raw), ("prepare", result.prepared)):
        statuses = ["input"] if stage == "data" and local_data else [_status(o, result.run) for o in outs]
        print(f"  {stage:<9} {'; '.join(statuses)}")
    scores = {}
    for i, trial in enumerate(result.trials, start=1):
        if trial.status != "ok":
            print(f"  trial {i:<3} failed: {trial.error}   {' '.join(trial.overrides)}")
            continue
        name, value = read_manifest(Path(trial.evaluated.path))["headline"][0]
        scores[i] = value
        print(f"  trial {i:<3} {_status(trial.trained, result.run)}   {name} {value:.4f}   {' '.join(trial.overrides)}")
    # Named as the sweep's W&B group: one report per sweep, the same one however often it runs.
    sweep = f"{cfg.name}-sweep-{_digest(base, [t.overrides for t in result.trials])}"
    print(f"report:      {latest_report(f'{cfg.name}-sweep', sweep, Path(result.report.path))}")
    if scores:
        best = max(scores, key=scores.__getitem__)
        rerun = command(preset, base, result.trials[best - 1].overrides)
        print(f"best:        trial {best} ({scores[best]:.4f}): {rerun}")


def latest_report(latest: str, name: str, report_dir: Path) -> str:
    """Keep a report as ``reports/<name>.html`` and copy it to ``reports/<latest>.html``, the latest of its kind.

    Returns:
        Where the latest copy is, and the name it is kept under.
    """
    from satpipe.artifacts import atomic_write_text

    html = (report_dir / "report.html").read_text()
    for stem in (name, latest):
        atomic_write_text(Path("reports") / f"{stem}.html", html)
    return f"{(Path('reports') / f'{latest}.html').resolve()}  (kept as reports/{name}.html)"


if __name__ == "__main__":
    sys.exit(main())
