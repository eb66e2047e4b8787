"""Predict a cloud mask for a whole scene: ``python -m satpipe.predict SCENE... --checkpoint CKPT --out mask.tif``.

SCENE is one multi-band GeoTIFF, or one single-band file per band in the model's band order (for
38-Cloud models: red green blue nir). The scene is read and written window by window, so its size is
limited by disk, not memory. Outputs are Cloud-Optimized GeoTIFFs with the scene's CRS and transform:
the mask (uint8: 1 cloud, 0 clear, 255 no data) and, beside it, the probability (float32, NaN no data).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import torch

from satpipe.errors import DataError, SatpipeError
from satpipe.evaluation.engine import BLEND_MODES, EngineStats, Predictor, predict_scene
from satpipe.evaluation.segmentation import model_predictor
from satpipe.io.rasters import MaskWriter, RasterScene
from satpipe.training.checkpoints import load_trained
from satpipe.training.segmentation import CloudSegmenter

GDAL_CACHE_MB = 256
PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")


@dataclass
class Prediction:
    """What was written, with the engine's statistics."""

    mask: Path
    probability: Path
    height: int
    width: int
    cloud_fraction: float
    stats: EngineStats


class _CountingWriter:
    """Passes rows to the writer and counts cloudy and valid pixels on the way."""

    def __init__(self, writer: MaskWriter) -> None:
        self.writer, self.cloud, self.valid = writer, 0, 0

    def write(self, row: int, prob: np.ndarray) -> None:
        self.writer.write(row, prob)
        valid = ~np.isnan(prob)
        self.valid += int(valid.sum())
        self.cloud += int((prob[valid] > self.writer.threshold).sum())


def load_predictor(path: Path, device: torch.device) -> tuple[Predictor, list[str]]:
    """Raw windows -> cloud probabilities, and the bands expected, from a checkpoint or an exported ONNX model.

    Raises:
        DataError: If the file is missing, not a satpipe model, or not a segmentation model.
    """
    path = Path(path)
    if path.suffix == ".onnx":
        return onnx_predictor(path)
    module = load_trained(path, device)
    if not isinstance(module, CloudSegmenter):
        raise DataError(f"{path}: a {type(module).__name__}, not a segmentation model")
    return model_predictor(module, device), list(module.hparams.band_names)


def onnx_predictor(path: Path) -> tuple[Predictor, list[str]]:
    """An exported segmenter run by ONNX Runtime (on the GPU when its CUDA provider is there)."""
    import onnxruntime as ort

    if not path.is_file():
        raise DataError(f"{path}: model does not exist")
    try:
        session = ort.InferenceSession(
            str(path), providers=[p for p in PROVIDERS if p in ort.get_available_providers()]
        )
        info = {k: json.loads(v) for k, v in session.get_modelmeta().custom_metadata_map.items()}
    except Exception as e:  # a damaged or foreign file
        raise DataError(f"{path}: not an ONNX model satpipe exported ({type(e).__name__})") from None
    if info.get("task") != "cloud segmentation":
        raise DataError(f"{path}: a {info.get('task', 'unknown')} model, not a segmentation model")

    def predict(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {"image": x.float().cpu().numpy()})[0]).to(x.device)

    return predict, list(info["bands"])


def predict_file(
    scene_paths: list[Path],
    checkpoint: Path,
    out: Path,
    prob_out: Path | None = None,
    *,
    threshold: float = 0.5,
    window: int = 384,
    overlap: int = 64,
    blend: str = "cosine",
    batch_size: int | None = None,
    device: str = "auto",
    progress: bool = True,
) -> Prediction:
    """Predict a scene into a mask COG and a probability COG.

    Raises:
        DataError: For unreadable or mismatched band files, a band count other than the checkpoint's,
            or a scene without any valid pixel. Nothing is written in that case.
    """
    dev = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device)
    # Large batches keep a GPU busy; on a CPU they only cost memory (and small ones run faster there).
    batch_size = batch_size or (16 if dev.type == "cuda" else 2)
    predictor, bands = load_predictor(checkpoint, dev)
    prob_out = prob_out or out.with_name(out.stem + ".prob" + out.suffix)
    # GDAL caches raster blocks up to 5% of RAM by default; a fixed cap keeps memory flat whatever the scene.
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), RasterScene(scene_paths) as scene:
        if scene.count != len(bands):
            raise DataError(
                f"{scene_paths[0]}: {scene.count} band(s), but {checkpoint} expects {len(bands)} ({', '.join(bands)})"
            )
        writer = MaskWriter(
            out,
            prob_out,
            height=scene.height,
            width=scene.width,
            crs=scene.crs,
            transform=scene.transform,
            threshold=threshold,
        )
        counter = _CountingWriter(writer)
        try:
            stats = predict_scene(
                scene,
                predictor,
                counter,
                window=window,
                overlap=overlap,
                blend=blend,
                batch_size=batch_size,
                device=dev,
                progress=progress,
            )
            if stats.windows_run == 0:
                raise DataError(
                    f"{scene_paths[0]}: every pixel is no data ({scene.nodata:g} in all bands); nothing to predict"
                )
        except BaseException:
            writer.abort()
            raise
        writer.close()
    return Prediction(out, prob_out, scene.height, scene.width, counter.cloud / max(counter.valid, 1), stats)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m satpipe.predict", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("scene", nargs="+", type=Path, help="a multi-band GeoTIFF, or one file per band in model order")
    parser.add_argument(
        "--checkpoint",
        required=True,
        type=Path,
        help="a satpipe segmentation checkpoint (.ckpt) or exported model (.onnx)",
    )
    parser.add_argument("--out", required=True, type=Path, help="the mask to write (GeoTIFF)")
    parser.add_argument("--prob-out", type=Path, help="the probability to write (default: beside --out, .prob.tif)")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--window", type=int, default=384)
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--blend", default="cosine", choices=BLEND_MODES)
    parser.add_argument("--batch-size", type=int, help="windows per model call (default: 16 on a GPU, 2 on a CPU)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    args = parser.parse_args(argv)
    if not 0 <= args.overlap < args.window or args.window % 32:
        parser.error(
            f"--window must be a multiple of 32 and --overlap in [0, window); got {args.window}, {args.overlap}"
        )
    try:
        result = predict_file(
            args.scene,
            args.checkpoint,
            args.out,
            args.prob_out,
            threshold=args.threshold,
            window=args.window,
            overlap=args.overlap,
            blend=args.blend,
            batch_size=args.batch_size,
            device=args.device,
        )
    except SatpipeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(
        f"wrote {result.mask} and {result.probability}: {result.width}x{result.height} pixels, "
        f"{result.cloud_fraction:.1%} of valid pixels cloudy ({result.stats.windows_run} windows, "
        f"{result.stats.windows_skipped} skipped as no data)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
