"""The ``satpipe`` command: ``satpipe run|predict|export ...``.

  satpipe run [preset] ...     run a pipeline: run.py of this satpipe checkout, with the same arguments
  satpipe predict INPUT ...    predict scenes (cloud masks) or chips (classes) with a trained model
  satpipe export CKPT ...      export a trained model to ONNX

`satpipe COMMAND --help` describes each command.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from satpipe.errors import SatpipeError

COMMANDS = ("run", "predict", "export")


def find_run_py(package_dir: Path) -> Path:
    """run.py of the checkout a package directory (``<checkout>/src/satpipe``) belongs to.

    The pipelines (run.py, config.py, tasks/, workflows/) live beside ``src/`` in a checkout, not in the
    package: ``uv sync`` installs the package from the checkout in editable mode, so the checkout is
    found from the package's own location.

    Raises:
        SatpipeError: If the package was not installed from a checkout.
    """
    checkout = Path(package_dir).resolve().parent.parent
    run_py = checkout / "run.py"
    if not (run_py.is_file() and (checkout / "config.py").is_file() and (checkout / "workflows").is_dir()):
        raise SatpipeError(
            f"satpipe run needs a satpipe checkout, and this satpipe is installed at {Path(package_dir).resolve()} "
            "without one; clone the repository and use `uv run satpipe run` (or `uv run run.py`) inside it"
        )
    return run_py


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (``run`` replaces this process with run.py)."""
    parser = argparse.ArgumentParser(
        prog="satpipe", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=COMMANDS, help="what to do")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the command's own arguments")
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        parser.print_help()
        return 2
    args = parser.parse_args(argv)
    if args.command == "predict":
        from satpipe.predict import main as predict

        return predict(args.args, prog="satpipe predict")
    if args.command == "export":
        from satpipe.export import main as export

        return export(args.args, prog="satpipe export")
    try:
        run_py = find_run_py(Path(__file__).parent)
    except SatpipeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    # Exactly `python run.py ...`: the same interpreter, working directory, environment and exit status.
    os.execv(sys.executable, [sys.executable, str(run_py), *args.args])


if __name__ == "__main__":
    sys.exit(main())
