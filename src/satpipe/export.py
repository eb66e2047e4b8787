"""Export a trained model to ONNX: ``satpipe export CKPT [--out model.onnx]``.

CKPT is a checkpoint (.ckpt) or a training output folder (its best checkpoint). The graph takes raw
band values exactly as the training data stored them (image: batch x bands x height x width, float32)
and includes the model's normalisation, so nothing has to be re-implemented beside it: classifiers
return class probabilities (batch x classes), segmenters cloud probabilities (batch x height x width;
height and width any multiple of 32). What the model expects (bands or classes, the normalisation,
the task) is stored in the ONNX metadata and in a JSON file beside the model.

Every setting and path is checked before the checkpoint is loaded; nothing is written when one is wrong.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from satpipe.errors import ConfigError, DataError, SatpipeError
from satpipe.inference.settings import check_outputs, description_path


def build_parser(prog: str = "python -m satpipe.export") -> argparse.ArgumentParser:
    """The command line; parsing it imports nothing heavy, so ``--help`` answers at once."""
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoint", type=Path, metavar="CKPT", help="a .ckpt file or a training output folder")
    parser.add_argument("--format", choices=("onnx",), default="onnx", help="the format to write (default: onnx)")
    parser.add_argument(
        "--out",
        type=Path,
        help="the model to write, ending in .onnx; its description goes beside it as .json "
        "(default: beside the checkpoint, .onnx; model.onnx in a training output folder)",
    )
    return parser


def output_path(checkpoint: Path, out: Path | None) -> Path:
    """Where the model goes: ``--out``, or beside the checkpoint."""
    if out is not None:
        return out
    return checkpoint / "model.onnx" if checkpoint.is_dir() else checkpoint.with_suffix(".onnx")


def check_arguments(args: argparse.Namespace) -> Path:
    """Check the checkpoint and the outputs; returns where the model goes.

    Raises:
        ConfigError: If --out does not end in .onnx.
        DataError: If the checkpoint is missing, or an output would replace it or cannot be written.
    """
    if not args.checkpoint.exists():
        raise DataError(f"{args.checkpoint}: checkpoint does not exist")
    out = output_path(args.checkpoint, args.out)
    if out.suffix.lower() != ".onnx":
        raise ConfigError(f"--out {out}: end it in .onnx (predict recognises exported models by it)")
    check_outputs([args.checkpoint], {"--out": out, "--out (its description)": description_path(out)})
    return out


def main(argv: list[str] | None = None, prog: str = "python -m satpipe.export") -> int:
    """Command-line entry point; returns the exit status."""
    args = build_parser(prog).parse_args(argv)
    try:
        out = check_arguments(args)
        # Imported only now: torch and ONNX take seconds to load.
        from satpipe.inference.onnx_export import export_onnx, onnx_info

        path = export_onnx(args.checkpoint, out)
    except SatpipeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path} and {description_path(path)} ({onnx_info(path)['task']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
