"""Thin Flyte adapters: materialise inputs, call one satpipe function, wrap the output.

No ML logic lives here. Library imports sit inside the task bodies, so the pipeline driver, a cached
run and `flyte deploy` never pay for importing torch and Lightning. Each stage writes into a
persistent, run-specific folder (local Flyte runs do not copy outputs, and cache entries point at
them), returns it as a Dir keyed by content, and is cached on its inputs plus the source of the code
it runs.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import flyte
import flyte.errors
from flyte.io import Dir

from satpipe.artifacts import content_key
from satpipe.errors import SatpipeError
from satpipe.versioning import function_version

P = ParamSpec("P")
R = TypeVar("R")

ARTIFACTS_ENV = "SATPIPE_ARTIFACTS"
#: The packages whose code a stage runs, followed through their imports: the library and these adapters.
#: config.py (settings, which reach a stage as its inputs) and envs/ (resources) are not, unless a task
#: function imports from them itself.
CODE_PACKAGES = ("satpipe", "tasks")


class StageVersion:
    """The cache policy of every stage: its version is the digest of the code it runs.

    That is the task's module and every module of ``CODE_PACKAGES`` that the module and the task import
    (:func:`satpipe.versioning.function_version`), so editing a reader re-runs only the stages that read
    with it, and nothing is bumped by hand. In a local run the version also names the artifact root:
    local outputs live in this checkout, so another checkout (or a moved one) keeps its own cache entries
    and never reuses, nor overwrites, this one's.
    """

    def get_version(self, salt: str, params: Any) -> str:
        version = _code_version(params.func)
        ctx = flyte.ctx()
        return f"{version}:{artifacts_root()}" if ctx is not None and ctx.mode == "local" else version


@functools.cache
def _code_version(func: Any) -> str:
    return function_version(func, within=CODE_PACKAGES)


#: Cache on the inputs and the code a stage runs (see StageVersion).
STAGE_CACHE = flyte.Cache(behavior="auto", policies=[StageVersion()])


def bad_input_is_final(task: Callable[P, R]) -> Callable[P, R]:
    """Raise satpipe's errors from ``task`` as non-recoverable, so Flyte does not retry them.

    Retries are for lost pods and preempted nodes (and downloads retry their own transfers); bad input
    fails every attempt alike. The error keeps its class name as its code, which run.py reads.
    """

    @functools.wraps(task)
    def final(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return task(*args, **kwargs)
        except SatpipeError as e:
            raise flyte.errors.NonRecoverableError(str(e), code=type(e).__name__) from None

    return final


def artifacts_root() -> Path:
    """Where stage outputs live: ``$SATPIPE_ARTIFACTS`` or ``./artifacts``."""
    return Path(os.environ.get(ARTIFACTS_ENV, "artifacts")).resolve()


def stage_dir(stage: str) -> Path:
    """A folder for this action's output: ``artifacts/runs/<run>/<stage>-<action>``."""
    action = flyte.ctx().action
    return artifacts_root() / "runs" / action.run_name / f"{stage}-{action.name[:8]}"


def output_dir(path: Path, identity: str | None = None) -> Dir:
    """Wrap a finished stage folder; downstream caches then key on its content, not its path.

    Args:
        path: The folder, holding its manifest.
        identity: What identifies the content when hashing every file would cost too much.
    """
    # Flyte names its scratch folders with Python's `random`, which training seeds: two trials with the
    # same seed would ask for the same folder. Fresh entropy keeps the names unique.
    random.seed()
    return Dir.from_local_sync(str(path), dir_cache_key=content_key(path, identity))


def resumable(stage: str, **inputs: Any) -> dict[str, Any]:
    """Where a training stage keeps what an interrupted attempt needs to resume, keyed by its inputs.

    Locally that is ``artifacts/work/<stage>-<key>``: a killed or failed run leaves it, and re-running
    the same task with the same inputs and code resumes from its latest checkpoint. On a cluster the
    folder is also saved as the task's Flyte checkpoint after every resume checkpoint, and a retried
    attempt (after a preemption, say) starts from the previous attempt's copy.

    Returns:
        ``work_dir`` and ``on_checkpoint`` for the library's training functions.
    """
    ctx = flyte.ctx()
    key = hashlib.sha256(json.dumps([ctx.version, inputs], sort_keys=True, default=str).encode()).hexdigest()[:16]
    work = artifacts_root() / "work" / f"{stage}-{key}"
    checkpoint = ctx.checkpoint
    if checkpoint is not None and not work.exists() and (restored := checkpoint.load_sync()) is not None:
        shutil.copytree(restored, work)
    return {"work_dir": work, "on_checkpoint": checkpoint.save_sync if checkpoint is not None else None}


def require_requested_gpus() -> None:
    """Stop at once when this pod cannot use the GPUs its task asked for (a no-op in local runs).

    Cluster pods of GPU tasks carry their request in ``$SATPIPE_GPU`` (envs.GPU_REQUEST_ENV); local runs
    do not, and train on whatever the machine has.
    """
    from envs import GPU_REQUEST_ENV

    if request := os.environ.get(GPU_REQUEST_ENV):
        from satpipe.devices import require_gpus

        require_gpus(request)


def provenance(**inputs: Any) -> dict[str, Any]:
    """What a manifest records about the action that wrote it."""
    action = flyte.ctx().action
    return {"run": action.run_name, "action": action.name, "inputs": inputs}
