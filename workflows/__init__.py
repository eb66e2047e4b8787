"""Async pipeline tasks that chain the stages, one per task family, and what they share."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

import flyte
from flyte.io import Dir

from satpipe.errors import ConfigError

T = TypeVar("T")
R = TypeVar("R")


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


def local_data(data_dir: Dir | None, digest: str | None) -> Dir:
    """The user's data folder (run.py --data-dir), keyed by its content digest for the stages' caches.

    A run's inputs lose a Dir's hash (flyte 2.12), so run.py passes the digest beside the folder and it
    is attached again here; stages then hit their caches for the same content at any path.
    """
    if data_dir is None:
        raise ConfigError("data.source=local needs a data folder (run.py --data-dir PATH)")
    return Dir(path=data_dir.path, name=data_dir.name, hash=digest)
