"""Checks of prediction settings and output paths, made before any model is loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from satpipe.errors import ConfigError, DataError
from satpipe.inference.settings import (
    check_device_name,
    check_outputs,
    check_scene_settings,
    description_path,
    probability_path,
)

GOOD = {"threshold": 0.5, "window": 384, "overlap": 64, "blend": "cosine", "batch_size": None}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"threshold": 0.0}, "--threshold must be between 0 and 1"),
        ({"threshold": float("inf")}, "--threshold must be between 0 and 1"),
        ({"window": 48}, "--window must be a positive multiple of 32, got 48"),
        ({"window": -32}, "--window must be a positive multiple of 32, got -32"),
        ({"overlap": 400}, "--overlap must be in [0, window) = [0, 384), got 400"),
        ({"blend": "max"}, "--blend must be one of cosine, gaussian, center, none, got 'max'"),
        ({"batch_size": -3}, "--batch-size must be at least 1, got -3"),
    ],
)
def test_scene_settings_out_of_range(change: dict, message: str) -> None:
    check_scene_settings(**GOOD)
    with pytest.raises(ConfigError) as caught:
        check_scene_settings(**{**GOOD, **change})
    assert message in str(caught.value)


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:1"])
def test_device_names(device: str) -> None:
    check_device_name(device)
    for bad in ("tpu9", "gpu", "cuda:x", "cuda:", " cpu"):
        with pytest.raises(ConfigError, match="unknown device"):
            check_device_name(bad)


def test_outputs_are_checked_against_inputs_each_other_and_their_folder(tmp_path: Path) -> None:
    scene = tmp_path / "scene.tif"
    scene.write_bytes(b"")
    check_outputs([scene], {"--out": tmp_path / "new" / "deeper" / "m.tif", "--prob-out": tmp_path / "p.tif"})
    with pytest.raises(DataError, match="would overwrite the input"):
        check_outputs([scene], {"--out": tmp_path / "sub" / ".." / "scene.tif"})  # the same file, spelled otherwise
    (tmp_path / "link.tif").symlink_to(scene)
    with pytest.raises(DataError, match="would overwrite the input"):
        check_outputs([tmp_path / "link.tif"], {"--out": scene})
    with pytest.raises(DataError, match="the same file as --out"):
        check_outputs([scene], {"--out": tmp_path / "m.tif", "--prob-out": tmp_path / "m.tif"})
    with pytest.raises(DataError, match="is a folder"):
        check_outputs([scene], {"--out": tmp_path})
    with pytest.raises(DataError, match="scene.tif is a file"):
        check_outputs([], {"--out": scene / "m.tif"})


def test_where_derived_outputs_go() -> None:
    assert probability_path(Path("a/mask.tif")) == Path("a/mask.prob.tif")
    assert description_path(Path("a/model.onnx")) == Path("a/model.json")
