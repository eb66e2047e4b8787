"""Stage 2, preparation: validate, split, pack and compute statistics (CPU, cached)."""

from __future__ import annotations

from flyte.io import Dir

from envs import DATA_RETRIES, data_env
from tasks import STAGE_CACHE, bad_input_is_final, output_dir, provenance, stage_dir


@data_env.task(cache=STAGE_CACHE, retries=DATA_RETRIES)
@bad_input_is_final
def prepare_eurosat(
    raw: Dir, bands: str, train_fraction: float, val_fraction: float, split_seed: int, max_per_class: int | None
) -> Dir:
    """Split EuroSAT chips by class into train/val/test arrays with training-split band statistics."""
    from satpipe.data import eurosat

    out = stage_dir("prepare")
    split = {
        "train_fraction": train_fraction,
        "val_fraction": val_fraction,
        "split_seed": split_seed,
        "max_per_class": max_per_class,
    }
    eurosat.prepare_eurosat(
        raw.download_sync(),
        out,
        bands=bands,
        **split,  # type: ignore[arg-type]
        provenance=provenance(raw=raw.hash, bands=bands, **split),
    )
    return output_dir(out)


@data_env.task(cache=STAGE_CACHE, retries=DATA_RETRIES)
@bad_input_is_final
def prepare_cloud_patches(
    raw: Dir, patch_size: int, overlap: int, min_valid_fraction: float, val_fraction: float, split_seed: int
) -> Dir:
    """Cut 38-Cloud-layout training patches to size, skip empty ones, split by scene, fit percentiles."""
    from satpipe.data.patches import prepare_cloud_patches as prepare

    out = stage_dir("patch")
    settings = {
        "patch_size": patch_size,
        "overlap": overlap,
        "min_valid_fraction": min_valid_fraction,
        "val_fraction": val_fraction,
        "split_seed": split_seed,
    }
    prepare(raw.download_sync(), out, **settings, provenance=provenance(raw=raw.hash, **settings))
    return output_dir(out)


@data_env.task(cache=STAGE_CACHE, retries=DATA_RETRIES)
@bad_input_is_final
def prepare_unlabelled_patches(raw: Dir, patch_size: int, overlap: int, min_valid_fraction: float) -> Dir:
    """Cut scenes without labels into patches as the labelled ones are cut, for semi-supervised training."""
    from satpipe.data.patches import prepare_unlabelled_patches as prepare

    out = stage_dir("patch")
    settings = {"patch_size": patch_size, "overlap": overlap, "min_valid_fraction": min_valid_fraction}
    prepare(raw.download_sync(), out, **settings, provenance=provenance(raw=raw.hash, **settings))
    return output_dir(out)


@data_env.task(cache=STAGE_CACHE, retries=DATA_RETRIES)
@bad_input_is_final
def prepare_cloudmask_patches(raw: Dir, val_fraction: float, split_seed: int, max_files: int | None) -> Dir:
    """Cut CloudMask training files into the reference's 20 patches each, split 80/20 by file."""
    from satpipe.data.cloudmask import prepare_cloudmask

    out = stage_dir("patch")
    settings = {"val_fraction": val_fraction, "split_seed": split_seed, "max_files": max_files}
    prepare_cloudmask(raw.download_sync(), out, **settings, provenance=provenance(raw=raw.hash, **settings))
    return output_dir(out)


@data_env.task(cache=STAGE_CACHE, retries=DATA_RETRIES)
@bad_input_is_final
def prepare_described_patches(
    raw: Dir,
    patch_size: int,
    overlap: int,
    min_valid_fraction: float,
    val_fraction: float,
    test_fraction: float,
    split_seed: int,
) -> Dir:
    """Check a dataset.yaml folder, split it by scene, cut training patches of class ids, fit percentiles."""
    from satpipe.data.described import prepare_described_patches as prepare

    out = stage_dir("patch")
    settings = {
        "patch_size": patch_size,
        "overlap": overlap,
        "min_valid_fraction": min_valid_fraction,
        "val_fraction": val_fraction,
        "test_fraction": test_fraction,
        "split_seed": split_seed,
    }
    prepare(raw.download_sync(), out, **settings, provenance=provenance(raw=raw.hash, **settings))
    return output_dir(out)
