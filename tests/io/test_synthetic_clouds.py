from pathlib import Path

import numpy as np
import rasterio

from satpipe.io.cloud38 import list_patches, read_ground_truth, scene_ground_truth
from satpipe.io.synthetic.clouds import CLOUD, SURFACES, ghalam_dn, landsat_dn, render_scene


def test_rendering_is_deterministic_and_clouds_are_bright() -> None:
    a, b = render_scene(np.random.default_rng([5, 1]), 256, 256), render_scene(np.random.default_rng([5, 1]), 256, 256)
    np.testing.assert_array_equal(a.reflectance, b.reflectance)
    cloudy = a.reflectance[:, a.clouds].mean(axis=1)
    clear = a.reflectance[:, a.valid & ~a.clouds].mean(axis=1)
    assert (cloudy > clear + 0.2).all() and (cloudy < CLOUD + 0.05).all()
    assert max(SURFACES["sand"]) > 0.35  # a bright confounder exists


def test_nodata_margins_and_ground_truth_inside_the_footprint() -> None:
    scene = render_scene(np.random.default_rng(7), 300, 300)
    assert 0.4 < scene.valid.mean() < 0.95 and not scene.valid[0, 0]
    assert (scene.reflectance[:, ~scene.valid] == 0).all() and not scene.clouds[~scene.valid].any()
    assert (landsat_dn(scene)[:, ~scene.valid] == 0).all() and (landsat_dn(scene)[:, scene.valid] > 4000).all()
    assert ghalam_dn(scene).dtype == np.uint8 and (ghalam_dn(scene)[:, ~scene.valid] == 0).all()


def test_dataset_layouts(synthetic_clouds: Path) -> None:
    train = list_patches(synthetic_clouds / "38-Cloud_training", "train", require_gt=True)
    test = list_patches(synthetic_clouds / "38-Cloud_test", "test", require_gt=False)
    ghalam = list_patches(synthetic_clouds / "GhalamClouds", "test", require_gt=True)
    assert len({p.scene for p in train}) == 6 and len({p.scene for p in test}) == 2 and len(ghalam) == len(test)
    assert all(p.scene.startswith("LC08_") for p in train + test)  # the official evaluation finds ids by 'LC'
    gt = read_ground_truth(scene_ground_truth(synthetic_clouds / "38-Cloud_test", test[0].scene))
    assert gt.shape == (512, 512)
    with rasterio.open(synthetic_clouds / "scenes" / f"{test[0].scene}.TIF") as src:
        assert src.count == 4 and src.crs.to_epsg() == 32633 and src.res == (30.0, 30.0) and src.nodata == 0
