"""Does unlabelled imagery help? The `semi` preset (1/16 of the labels, three seeds per arm) on a fresh cache.

Runs `run.py semi` in a new, isolated workspace (its own Flyte cache and artifacts, so nothing is reused
from earlier runs) and prints each arm's held-out full-scene Jaccard, mean ± standard deviation over
seeds, whether the semi-supervised arm's gain exceeds the seed-to-seed spread, and how far supervised-only
training on 1/16 of the labels falls short of training on every label (the room unlabelled data could fill).

    uv run python experiments/semi_vs_supervised.py
    uv run python experiments/semi_vs_supervised.py --set semi.method=unimatch --set semi.ema_decay=0.99
    uv run python experiments/semi_vs_supervised.py --set semi.fractions=1/16,1/8,1/4,1   # gain vs fraction
    uv run python experiments/semi_vs_supervised.py --set semi.split_by=scene   # label whole scenes
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUN_PY = Path(__file__).resolve().parent.parent / "run.py"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "home").mkdir()
        env = {**os.environ, "HOME": str(Path(tmp) / "home")}
        start = time.perf_counter()
        done = subprocess.run([sys.executable, str(RUN_PY), "semi", *sys.argv[1:]], cwd=tmp, env=env,
                              capture_output=True, text=True)  # fmt: skip
        minutes = (time.perf_counter() - start) / 60
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            return done.returncode
        lines = [line for line in done.stdout.splitlines() if re.match(r"^\S+ [\d/]+(:| vs )", line)]
        print("\n".join(lines))
        report = Path(tmp) / "reports" / "semi.html"
        kept = Path("reports") / "semi-experiment.html"
        kept.parent.mkdir(exist_ok=True)
        kept.write_text(report.read_text())
        print(f"{minutes:.1f} minutes on {os.cpu_count()} cores; report: {kept.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
