"""Predict with a trained model: ``satpipe predict INPUT... --checkpoint MODEL --out OUT``.

MODEL is a checkpoint (.ckpt), a training output folder (its best checkpoint) or an exported model
(.onnx). What is predicted follows from --out:

  --out mask.tif    a segmenter predicts whole scenes. INPUT is one multi-band GeoTIFF, or one
                    single-band file per band in the model's band order (38-Cloud models: red green
                    blue nir). The scene is read and written window by window, so its size is limited
                    by disk, not memory. Outputs are Cloud-Optimized GeoTIFFs with the scene's CRS and
                    transform: the class ids (uint8, 255 no data, the model's class colours; cloud
                    models: 1 cloud, 0 clear) and, beside it, the probability (float32, NaN no data):
                    of cloud for cloud models, of the chosen class (confidence) for more classes.
                    --dataset checks the model's classes against a dataset.yaml first.
  --out preds.csv   a scene classifier predicts chips. INPUT is chip files (JPEG, PNG or GeoTIFF) or
                    folders of them (searched recursively). Each row holds the chip, its class and the
                    probability of every class; --json also writes them as JSON.

Every setting and path is checked before the model is loaded; nothing is written when one is wrong.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from satpipe.errors import ConfigError, DataError, SatpipeError
from satpipe.evaluation.blending import BLEND_MODES
from satpipe.inference.settings import (
    BLEND,
    CHIP_BATCH,
    OVERLAP,
    THRESHOLD,
    WINDOW,
    WINDOW_BATCH,
    check_batch_size,
    check_device_name,
    check_outputs,
    check_scene_settings,
    probability_path,
)

if TYPE_CHECKING:
    from satpipe.inference.models import LoadedModel

MASK_SUFFIXES, TABLE_SUFFIXES = (".tif", ".tiff"), (".csv",)
#: Scene prediction's settings and their defaults; a chip classifier takes none of them.
SCENE_DEFAULTS = {"prob_out": None, "threshold": THRESHOLD, "window": WINDOW, "overlap": OVERLAP, "blend": BLEND,
                  "dataset": None}  # fmt: skip


def build_parser(prog: str = "python -m satpipe.predict") -> argparse.ArgumentParser:
    """The command line; parsing it imports nothing heavy, so ``--help`` answers at once."""
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "inputs",
        nargs="+",
        type=Path,
        metavar="INPUT",
        help="scene files (segmenters); chip files or folders of chips (classifiers)",
    )
    parser.add_argument(
        "--checkpoint",
        required=True,
        type=Path,
        metavar="MODEL",
        help="a satpipe checkpoint (.ckpt), training output folder or exported model (.onnx); required",
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="the mask to write (.tif) or the predictions to write (.csv); required"
    )
    scenes = parser.add_argument_group("scenes (segmenters, --out .tif)")
    scenes.add_argument("--prob-out", type=Path, help="the probability to write (default: beside --out, .prob.tif)")
    scenes.add_argument(
        "--threshold",
        type=float,
        help=f"two-class models: cloud where the probability exceeds it, in (0, 1) (default: {THRESHOLD})",
    )
    scenes.add_argument(
        "--dataset",
        type=Path,
        help="a dataset.yaml (or its folder) whose classes the model must have, in order (default: none)",
    )
    scenes.add_argument("--window", type=int, help=f"window side in pixels, a multiple of 32 (default: {WINDOW})")
    scenes.add_argument(
        "--overlap", type=int, help=f"pixels shared by neighbouring windows, in [0, window) (default: {OVERLAP})"
    )
    scenes.add_argument(
        "--blend",
        choices=BLEND_MODES,
        help="how overlapping windows are weighted: cosine ramp, gaussian, center (keep each window's centre) "
        f"or none (plain averaging) (default: {BLEND})",
    )
    chips = parser.add_argument_group("chips (classifiers, --out .csv)")
    chips.add_argument("--json", type=Path, help="also write the predictions as JSON to this path (default: none)")
    parser.add_argument(
        "--batch-size",
        type=int,
        help=f"windows or chips per model call (default: {WINDOW_BATCH['cuda']} windows on a GPU, "
        f"{WINDOW_BATCH['cpu']} on a CPU; {CHIP_BATCH} chips)",
    )
    parser.add_argument(
        "--device", default="auto", help="auto (a GPU when one is usable), cpu, cuda or cuda:N (default: auto)"
    )
    return parser


def check_arguments(args: argparse.Namespace) -> str:
    """Check every setting and path of a parsed command line; returns ``scenes`` or ``chips``.

    Raises:
        ConfigError: For a setting out of range, or one that does not apply to what --out asks for.
        DataError: For a missing input or model, or an output that would replace an input or another output.
    """
    check_device_name(args.device)
    check_batch_size(args.batch_size)
    suffix = args.out.suffix.lower()
    if suffix not in MASK_SUFFIXES + TABLE_SUFFIXES:
        raise ConfigError(
            f"--out {args.out}: end it in .tif (a class map, from a segmenter) or .csv (classes, from a classifier)"
        )
    kind = "scenes" if suffix in MASK_SUFFIXES else "chips"
    if not args.checkpoint.exists():
        raise DataError(f"{args.checkpoint}: model does not exist")
    for path in args.inputs:
        if not (path.is_file() or (kind == "chips" and path.is_dir())):
            raise DataError(f"{path}: {'scene file' if kind == 'scenes' else 'chip or folder'} does not exist")
    outputs = {"--out": args.out}
    if kind == "scenes":
        if args.json is not None:
            raise ConfigError("--json applies to chip predictions (--out .csv), not to a mask")
        settings = {k: SCENE_DEFAULTS[k] if getattr(args, k) is None else getattr(args, k) for k in SCENE_DEFAULTS}
        check_scene_settings(
            **{k: v for k, v in settings.items() if k not in ("prob_out", "dataset")}, batch_size=args.batch_size
        )
        vars(args).update(settings)
        if args.prob_out is not None and args.prob_out.suffix.lower() not in MASK_SUFFIXES:
            raise ConfigError(f"--prob-out {args.prob_out}: end it in .tif (it is a GeoTIFF)")
        outputs["--prob-out"] = args.prob_out or probability_path(args.out)
    else:
        if given := [f"--{k.replace('_', '-')}" for k in SCENE_DEFAULTS if getattr(args, k) is not None]:
            raise ConfigError(f"{', '.join(given)}: scene settings; --out .csv classifies chips and takes none of them")
        if args.json is not None:
            if args.json.suffix.lower() != ".json":
                raise ConfigError(f"--json {args.json}: end it in .json")
            outputs["--json"] = args.json
    check_outputs([*args.inputs, args.checkpoint], outputs)
    return kind


def main(argv: list[str] | None = None, prog: str = "python -m satpipe.predict") -> int:
    """Command-line entry point; returns the exit status."""
    args = build_parser(prog).parse_args(argv)
    try:
        kind = check_arguments(args)
        # Imported only now: the model stack (torch, Lightning, rasterio, ONNX Runtime) takes seconds to load.
        from satpipe.inference.models import load_model, resolve_device

        model = load_model(args.checkpoint, resolve_device(args.device))
        if kind == "scenes":
            print(predict_scenes(args, model))
        else:
            print(predict_chips(args, model))
    except SatpipeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def predict_scenes(args: argparse.Namespace, model: LoadedModel) -> str:
    """Predict the scene into the class ids and probability; returns the summary line."""
    from satpipe.inference.scenes import predict_scene_file

    if args.dataset is not None:
        check_model_classes(model, args.dataset)
    result = predict_scene_file(
        args.inputs,
        model,
        args.out,
        args.prob_out,
        threshold=args.threshold,
        window=args.window,
        overlap=args.overlap,
        blend=args.blend,
        batch_size=args.batch_size,
    )
    shares = sorted(result.class_fractions.items(), key=lambda item: -item[1])[:4]
    return (
        f"wrote {result.mask} and {result.probability}: {result.width}x{result.height} pixels; of pixels with data "
        f"{', '.join(f'{name} {share:.1%}' for name, share in shares)} ({result.stats.windows_run} windows, "
        f"{result.stats.windows_skipped} skipped as no data)"
    )


def check_model_classes(model: LoadedModel, dataset: Path) -> None:
    """Refuse a model whose classes are not the dataset's, in the same order (ids would mean other classes).

    Raises:
        DataError: Naming the description and both class lists.
    """
    from satpipe.io.description import read_description

    desc = read_description(dataset)
    if model.task != "segmentation" or list(model.info["classes"]) != list(desc.classes):
        have = model.info.get("classes")
        raise DataError(
            f"{desc.path}: {desc.num_classes} classes ({', '.join(desc.classes)}), but {model.path} predicts "
            f"{len(have) if have else 0} ({', '.join(have or [])}); use a model trained on this dataset"
        )


def predict_chips(args: argparse.Namespace, model: LoadedModel) -> str:
    """Classify the chips and write the CSV (and JSON); returns the summary line."""
    from satpipe.inference.chips import classify_chips, write_predictions

    predictions = classify_chips(args.inputs, model, batch_size=args.batch_size)
    write_predictions(predictions, model.info["classes"], args.out, args.json)
    counts = ", ".join(f"{label} {n}" for label, n in Counter(p.label for p in predictions).most_common(3))
    written = f"{args.out} and {args.json}" if args.json else str(args.out)
    return f"wrote {written}: {len(predictions)} chips classified (most often: {counts})"


if __name__ == "__main__":
    sys.exit(main())
