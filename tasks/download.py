"""Stage 1, data acquisition: download a public dataset or synthesize one (CPU, cached)."""

from __future__ import annotations

from flyte.io import Dir

from envs import DATA_RETRIES, data_env
from satpipe.artifacts import atomic_dir, file_digest, write_manifest
from tasks import STAGE_CACHE, artifacts_root, bad_input_is_final, output_dir, provenance, stage_dir


@data_env.task(cache=STAGE_CACHE, retries=DATA_RETRIES)
@bad_input_is_final
def download_eurosat(bands: str) -> Dir:
    """Fetch and verify the EuroSAT archive for ``bands`` ("rgb" or "ms") and extract it."""
    from satpipe.io import eurosat

    # Archives live in a fixed place, not a run folder, so that an interrupted download resumes.
    image_root = eurosat.fetch(artifacts_root() / "downloads" / "eurosat", bands)  # type: ignore[arg-type]
    write_manifest(image_root.parent, "download", dataset="eurosat", bands=bands, **provenance(bands=bands))
    return output_dir(image_root.parent)


@data_env.task(cache=STAGE_CACHE, retries=DATA_RETRIES)
@bad_input_is_final
def synthesize_eurosat(per_class: int, seed: int) -> Dir:
    """Generate a synthetic EuroSAT (both products) with ``per_class`` chips per class."""
    from satpipe.io.synthetic.eurosat import write_dataset

    out = stage_dir("synthesize")
    with atomic_dir(out) as tmp:
        write_dataset(tmp, per_class, seed)
        write_manifest(tmp, "synthesize", dataset="eurosat", **provenance(per_class=per_class, seed=seed))
    return output_dir(out)


@data_env.task(cache=STAGE_CACHE, retries=DATA_RETRIES)
@bad_input_is_final
def synthesize_clouds(train_scenes: int, test_scenes: int, size: int, seed: int, first_index: int = 0) -> Dir:
    """Generate cloudy scenes as a 38-Cloud layout, full GeoTIFFs and a GhalamClouds-style test set."""
    from satpipe.io.synthetic.clouds import write_cloud_dataset

    out = stage_dir("synthesize")
    inputs = {"train_scenes": train_scenes, "test_scenes": test_scenes, "size": size, "seed": seed,
              "first_index": first_index}  # fmt: skip
    with atomic_dir(out) as tmp:
        write_cloud_dataset(tmp, **inputs)
        write_manifest(tmp, "synthesize", dataset="clouds", **provenance(**inputs))
    return output_dir(out)


@data_env.task(cache=STAGE_CACHE, retries=DATA_RETRIES)
@bad_input_is_final
def synthesize_landcover(train_scenes: int, test_scenes: int, size: int, seed: int) -> Dir:
    """Generate 7-class land-cover scenes as GeoTIFF image/mask pairs with the dataset.yaml that describes them."""
    from satpipe.io.synthetic.landcover import write_landcover_dataset

    out = stage_dir("synthesize")
    inputs = {"train_scenes": train_scenes, "test_scenes": test_scenes, "size": size, "seed": seed}
    with atomic_dir(out) as tmp:
        write_landcover_dataset(tmp, **inputs)
        write_manifest(tmp, "synthesize", dataset="landcover", **provenance(**inputs))
    return output_dir(out)


@data_env.task(cache=STAGE_CACHE, retries=DATA_RETRIES)
@bad_input_is_final
def synthesize_cloudmask(train_files: int, test_files: int, seed: int) -> Dir:
    """Generate Sentinel-3 SLSTR scenes in CloudMask's HDF5 format (one-day/ for training, ssts/ for testing)."""
    from satpipe.io.synthetic.cloudmask import write_cloudmask_dataset

    out = stage_dir("synthesize")
    inputs = {"train_files": train_files, "test_files": test_files, "seed": seed}
    with atomic_dir(out) as tmp:
        write_cloudmask_dataset(tmp, **inputs)
        write_manifest(tmp, "synthesize", dataset="cloudmask", **provenance(**inputs))
    return output_dir(out)


@data_env.task(cache=STAGE_CACHE, retries=DATA_RETRIES)
@bad_input_is_final
def download_cloudmask(max_files: int | None) -> Dir:
    """Fetch CloudMask's files (all, or the first ``max_files`` of each split) from the benchmark's object store."""
    from satpipe.io import cloudmask

    # A fixed place, not a run folder, so that an interrupted download resumes.
    root = cloudmask.fetch(artifacts_root() / "downloads" / "cloudmask", max_files=max_files)
    write_manifest(root, "download", dataset="cloudmask", **provenance(max_files=max_files))
    # Every file was checked against the listed sizes; keying on the list spares hashing ~180 GB.
    return output_dir(root, identity=f"{file_digest(root / cloudmask.FILELIST)}-{max_files}")
