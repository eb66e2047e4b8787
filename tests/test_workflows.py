"""The checked stage call (workflows.stage) in real local Flyte runs, with toy stages."""

from __future__ import annotations

import shutil
from pathlib import Path

import flyte
import pytest
from flyte.io import Dir

from satpipe.artifacts import write_manifest
from tasks import STAGE_CACHE, output_dir, stage_dir
from workflows import stage

env = flyte.TaskEnvironment(name="test-stage")


@env.task(cache=STAGE_CACHE)
def count(n: int) -> Dir:
    """A stage: a folder with a manifest in this run's artifacts."""
    out = stage_dir("count")
    write_manifest(out, "count", n=n, run=flyte.ctx().action.run_name)
    return output_dir(out)


@env.task(cache=STAGE_CACHE)
def forgetful(n: int) -> Dir:
    """A stage whose output never matches its cache key, as a cluster's cache returning a lost output would."""
    out = stage_dir("forgetful")
    write_manifest(out, "forgetful", n=n)
    return Dir(path=str(out), hash=f"{n}~not-its-manifest")


@env.task
async def pipeline(n: int) -> Dir:
    return await stage(count, n)


@env.task
async def forgetful_pipeline(n: int) -> Dir:
    return await stage(forgetful, n)


def run(task: flyte.TaskTemplate, n: int) -> Path:
    flyte.init()
    return Path(flyte.with_runcontext(mode="local").run(task, n).outputs()[0].path)


def test_a_cached_output_that_is_gone_is_made_again_and_its_entry_replaced(
    isolated_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = run(pipeline, 1)
    assert run(pipeline, 1) == first  # a plain cache hit
    shutil.rmtree(isolated_home / "artifacts")
    again = run(pipeline, 1)
    assert again != first and (again / "manifest.json").is_file()
    notes = [r.getMessage() for r in caplog.records if "running the stage again" in r.getMessage()]
    assert notes == [f"count: the cached output {first} is gone (no manifest.json); running the stage again"]
    assert run(pipeline, 1) == again  # the entry now points at the new output


def test_an_output_still_unusable_when_made_again_stops_the_run_in_one_line(isolated_home: Path) -> None:
    import run as cli

    with pytest.raises(Exception, match=r"forgetful: the output \S+ was written again since it was cached .*"
                                         r"the cache returned it again; run with --no-cache") as error:  # fmt: skip
        run(forgetful_pipeline, 1)
    assert cli._is_input_error(error.value)  # run.py prints it as one `error:` line
