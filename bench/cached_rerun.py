"""Cached re-run vs first run of `run.py`: wall time of an identical second run as a fraction of the first.

Both runs use a fresh, isolated Flyte cache and artifacts folder. Wall time includes Python start-up
and imports, which a cached run cannot avoid; the pipeline's own time is printed too.

    uv run python bench/cached_rerun.py              # the quickstart preset
    uv run python bench/cached_rerun.py --set training.epochs=2
    uv run python bench/cached_rerun.py quickstart --sweep training.phase2_lr=1e-3,3e-3 \
        --sweep training.label_smoothing=0.0,0.1  # a four-trial sweep: every trial cached the second time

Any other run.py option (--sweep, --seeds, ...) passes through. Each round (``--repeats``) makes a
fresh cache and runs twice; ratios are taken within a round.

    uv run python bench/cached_rerun.py --smoke      # the quickstart shrunk to two epochs on 10 chips per class
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

from measure import add_options, check_repeats, ratio_line, spread

RUN_PY = Path(__file__).resolve().parent.parent / "run.py"


#: The quickstart preset shrunk to seconds of work, for --smoke.
SMOKE = ("data.synthetic_per_class=10", "model.backbone=test_efficientnet", "training.epochs=2",
         "training.batch_size=16")  # fmt: skip


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
    add_options(parser)
    args, passthrough = parser.parse_known_args()
    check_repeats(parser, args)
    settings = [*SMOKE, *args.set] if args.smoke else args.set
    cli = [args.preset, *[f"--set={s}" for s in settings], *passthrough]
    first: dict[str, list[float]] = {"wall": [], "pipeline": []}
    again: dict[str, list[float]] = {"wall": [], "pipeline": []}
    executed = []
    for _ in range(args.repeats):  # each round: a fresh cache and artifacts folder, the first run, then the re-run
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "home").mkdir()
            for times in (first, again):
                wall, pipeline, out = timed_run(Path(tmp), cli)
                times["wall"].append(wall)
                times["pipeline"].append(pipeline)
            executed.append(out.count(" executed"))
    print(f"first run      wall s {spread(first['wall'], '{:.1f}')}   pipeline s {spread(first['pipeline'], '{:.1f}')}")
    print(f"cached re-run  wall s {spread(again['wall'], '{:.1f}')}   pipeline s {spread(again['pipeline'], '{:.1f}')}")
    print(f"stages executed by the re-runs: {executed}")
    print(ratio_line("re-run/first wall", again["wall"], first["wall"]))
    print(ratio_line("re-run/first pipeline", again["pipeline"], first["pipeline"]))


if __name__ == "__main__":
    main()
