"""Cached re-run vs first run of `run.py`: wall time of an identical second run as a fraction of the first.

Both runs use a fresh, isolated Flyte cache and artifacts folder. Wall time includes Python start-up
and imports, which a cached run cannot avoid; the pipeline's own time is printed too.

    uv run python bench/cached_rerun.py              # the quickstart preset
    uv run python bench/cached_rerun.py --set training.epochs=2
    uv run python bench/cached_rerun.py quickstart --sweep training.phase2_lr=1e-3,3e-3 \
        --sweep training.label_smoothing=0.0,0.1  # a four-trial sweep: every trial cached the second time

Any other run.py option (--sweep, --seeds, ...) passes through.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUN_PY = Path(__file__).resolve().parent.parent / "run.py"


def timed_run(workspace: Path, args: list[str]) -> tuple[float, float, str]:
    env = {**os.environ, "HOME": str(workspace / "home")}
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, str(RUN_PY), *args], cwd=workspace, env=env, capture_output=True, text=True, check=True
    ).stdout
    pipeline = float(re.search(r"finished in ([\d.]+) s", out)[1])
    return time.perf_counter() - start, pipeline, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("preset", nargs="?", default="quickstart")
    parser.add_argument("--set", action="append", default=[])
    args, passthrough = parser.parse_known_args()
    cli = [args.preset, *[f"--set={s}" for s in args.set], *passthrough]
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "home").mkdir()
        first_wall, first_pipeline, _ = timed_run(Path(tmp), cli)
        second_wall, second_pipeline, out = timed_run(Path(tmp), cli)
    executed = out.count(" executed")
    print(f"first run      {first_wall:7.1f} s wall   {first_pipeline:7.1f} s pipeline")
    print(
        f"cached re-run  {second_wall:7.1f} s wall   {second_pipeline:7.1f} s pipeline   ({executed} stages executed)"
    )
    print(f"ratio re-run/first = {second_wall / first_wall:.3f} wall, {second_pipeline / first_pipeline:.4f} pipeline")


if __name__ == "__main__":
    main()
