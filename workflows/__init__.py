"""Async pipeline tasks that chain the stages, one per task family, and what they share."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import flyte
import flyte.storage
from flyte.io import Dir

from satpipe.artifacts import MANIFEST_NAME, output_problem
from satpipe.errors import ConfigError, ManifestError
from tasks import artifacts_root

T = TypeVar("T")
R = TypeVar("R")
logger = logging.getLogger(__name__)


@dataclass
class PipelineResult:
    """Every stage's output folder, and the run that produced this result.

    ``trained`` and ``evaluated`` hold one folder per training run (one per seed where a pipeline
    repeats training over seeds).
    """

    run: str
    raw: Dir
    prepared: Dir
    trained: list[Dir]
    evaluated: list[Dir]
    report: Dir


async def stage(
    task: flyte.TaskTemplate,
    *args: Any,
    wrap: Callable[[flyte.TaskTemplate], flyte.TaskTemplate] | None = None,
    **kwargs: Any,
) -> Dir:
    """Run a stage, or take its output from the cache only if that output is still there.

    A cache entry remembers where an output was written, not the output: a local ``artifacts/`` may
    have been deleted or moved since. Every stage output is checked (its manifest read, a few hundred
    bytes, locally or from the object store), and one that is gone, was written again or lies outside
    this checkout's artifacts is made again by the same task with a cache behaviour that executes and
    overwrites the entry, so the next run hits the new output. Saying so takes one line.

    Args:
        task: The stage's task, with any overrides (resources, say).
        *args: Its inputs.
        wrap: Applied to the task last: W&B logging must wrap the final copy of a task (tasks.train.logged_on).
        **kwargs: Its keyword inputs.

    Raises:
        ManifestError: If the output made again fails the check too (a cluster's cache is not
            overwritten by a single task; a run with --no-cache overwrites it).
    """
    wrap = wrap or (lambda t: t)
    out = await wrap(task).aio(*args, **kwargs)
    if (problem := await _output_problem(out)) is None:
        return out
    logger.warning(f"{task.short_name}: the cached output {out.path} {problem}; running the stage again")
    cache = task.cache if isinstance(task.cache, flyte.Cache) else flyte.Cache(task.cache)
    out = await wrap(task.override(cache=replace(cache, behavior="override"))).aio(*args, **kwargs)
    if (problem := await _output_problem(out)) is not None:
        raise ManifestError(
            f"{task.short_name}: the output {out.path} {problem}, and the cache returned it again; "
            "run with --no-cache to overwrite the cache"
        )
    return out


async def _output_problem(out: Dir) -> str | None:
    """Why a stage output cannot be used (``satpipe.artifacts.output_problem``), or None."""
    manifest_path = flyte.storage.join(out.path, MANIFEST_NAME)
    manifest = None
    if await flyte.storage.exists(manifest_path):
        manifest = b"".join([chunk async for chunk in flyte.storage.get_stream(manifest_path)])
    # Local outputs must lie in this checkout's artifacts; a cluster's live in its object store.
    root = None if flyte.storage.is_remote(out.path) else artifacts_root()
    return output_problem(out.path, out.hash, manifest, root)


async def fan_out(work: Callable[[T], Awaitable[R]], items: Iterable[T], limit: int | None = None) -> list[R]:
    """``work`` on every item concurrently, results in the order of ``items``, at most ``limit`` at once.

    Without a limit, branches run all at once on a cluster (each task in its own pod) and one after
    another locally: there they share one machine's accelerator or cores, and training in parallel
    threads would share the process's random number generators, so a seed would no longer reproduce
    its run. An explicit limit applies in both places.
    """
    ctx = flyte.ctx()
    if limit is None and (ctx is None or ctx.mode == "local"):
        limit = 1
    gate = asyncio.Semaphore(limit) if limit else None

    async def guarded(item: T) -> R:
        if gate is None:
            return await work(item)
        async with gate:
            return await work(item)

    return list(await asyncio.gather(*(guarded(item) for item in items)))


async def over_seeds(
    cfg: Any, trial: Callable[[Any, Dir, Dir], Awaitable[tuple[Dir, Dir]]], raw: Dir, prepared: Dir
) -> tuple[list[Dir], list[Dir]]:
    """Stages 3 and 4 (``trial``: training and evaluation) for seeds ``training.seed`` .. ``+ cfg.seeds - 1``.

    Each seed is cached on its own, so asking for more seeds runs only the new ones.

    Returns:
        The training and the evaluation outputs, in seed order.
    """

    def with_seed(seed: int) -> Any:
        return replace(cfg, training=replace(cfg.training, seed=seed))

    seeds = [cfg.training.seed + i for i in range(cfg.seeds)]
    with flyte.group("seeds"):
        runs = await fan_out(lambda seed: trial(with_seed(seed), raw, prepared), seeds)
    return [t for t, _ in runs], [e for _, e in runs]


def local_data(data_dir: Dir | None, digest: str | None) -> Dir:
    """The user's data folder (run.py --data-dir), keyed by its content digest for the stages' caches.

    A run's inputs lose a Dir's hash (flyte 2.12), so run.py passes the digest beside the folder and it
    is attached again here; stages then hit their caches for the same content at any path.
    """
    if data_dir is None:
        raise ConfigError("data.source=local needs a data folder (run.py --data-dir PATH)")
    return Dir(path=data_dir.path, name=data_dir.name, hash=digest)
