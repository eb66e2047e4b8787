import json
import re
from dataclasses import asdict
from pathlib import Path

import pytest

import config
from satpipe.errors import ConfigError


@pytest.mark.parametrize("name", list(config.PRESETS))
def test_every_preset_builds_and_validates(name: str) -> None:
    cfg = config.build_config(name)
    assert cfg.name == name


def test_presets_state_only_differences() -> None:
    for spec in config.PRESETS.values():
        defaults = asdict(spec.config_class())
        for key, value in spec.overrides.items():
            section, field = key.split(".")
            assert defaults[section][field] != value, f"{key} repeats the default"


def test_overrides_are_parsed_by_field_type() -> None:
    cfg = config.build_config(
        "quickstart",
        [
            "training.phase2_lr=1e-4",
            "training.early_stopping_patience=3",
            "model.pretrained=false",
            "model.input_size=none",
            "data.bands=ms",
        ],
    )
    assert cfg.training.phase2_lr == 1e-4 and isinstance(cfg.training.phase2_lr, float)
    assert cfg.training.early_stopping_patience == 3 and cfg.model.pretrained is False and cfg.model.input_size is None
    assert cfg.data.bands == "ms"
    assert config.build_config("quickstart").training.phase2_lr == 3e-3  # frozen: the preset was not mutated


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("training.phse2_lr=1", "unknown setting 'training.phse2_lr'; did you mean 'training.phase2_lr'?"),
        ("epochs=3", "unknown setting 'epochs'; did you mean 'training.epochs'?"),
        ("model=3", "'model' is a section"),
        ("training.phase2_lr=abc", "training.phase2_lr: expected float, got 'abc'"),
        ("training.phase2_lr=-1", "training.phase2_lr must be > 0"),
        ("training.epochs=0", "training.epochs must be >= 1"),
        ("training.phase1_epochs=99", "training.phase1_epochs must be between 0 and training.epochs"),
        ("data.source=ftp", "data.source must be download, synthetic or local"),
        ("data.train_fraction=0.9", "must be < 1 so that a test split remains"),
        ("training.precision=fp8", "training.precision must be auto"),
        ("resources.gpu=TPU:1", "resources.gpu must be TYPE:COUNT with TYPE one of T4"),
        ("resources.gpu=A100:3", "COUNT 1, 2, 4 or 8"),
        ("resources.nodes=0", "resources.nodes must be between 1 and 64"),
        ("tracking.mode=loud", "tracking.mode must be offline, online or disabled"),
        ("model.pretrained=maybe", "model.pretrained: expected bool"),
        ("oops", "--set expects key=value"),
    ],
)
def test_bad_values_give_one_clear_line(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        config.build_config("quickstart", [override])
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_setting_of_another_preset_is_named_as_such_and_only_own_keys_are_suggested() -> None:
    with pytest.raises(ConfigError) as err:
        config.build_config("clouds", ["training.phase2_lr=1e-3"])
    assert str(err.value) == (
        "'training.phase2_lr' does not apply to preset 'clouds' (it is a setting of quickstart, eurosat, eurosat-ms);"
        " did you mean 'training.lr'?"
    )
    with pytest.raises(
        ConfigError, match=r"'semi.method' does not apply to preset 'cloudmask' \(it is a setting of semi\)"
    ):
        config.build_config("cloudmask", ["semi.method=unimatch"])
    every_key = {key for spec in config.PRESETS.values() for key in config._all_keys(spec.config_class)}
    for preset, spec in config.PRESETS.items():
        own = config._all_keys(spec.config_class)
        for key in every_key - set(own):
            with pytest.raises(ConfigError) as err:
                config.build_config(preset, [f"{key}=1"])
            assert f"does not apply to preset {preset!r}" in str(err.value)
            suggested = re.search(r"did you mean '([^']+)'", str(err.value))
            assert suggested is None or suggested[1] in own, str(err.value)


def test_unknown_preset() -> None:
    with pytest.raises(ConfigError, match="unknown preset 'nope'; choose one of quickstart"):
        config.build_config("nope")


def test_config_round_trips_through_flyte_and_saves_as_json(tmp_path: Path) -> None:
    import flyte.types

    cfg = config.build_config("eurosat-ms", ["training.early_stopping_patience=4"])
    engine = flyte.types.TypeEngine
    literal_type = engine.to_literal_type(type(cfg))
    back = flyte.syncify.syncify(engine.to_python_value)  # type: ignore[attr-defined]
    literal = flyte.syncify.syncify(engine.to_literal)(cfg, type(cfg), literal_type)  # type: ignore[attr-defined]
    assert back(literal, type(cfg)) == cfg
    config.save_config(cfg, tmp_path / "config.json")
    assert json.loads((tmp_path / "config.json").read_text())["data"]["bands"] == "ms"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.normalization=percentile", "model.normalization must be cloudmask for CloudMask data"),
        ("seeds=0", "seeds must be between 1 and 100"),
        ("data.max_files=1", "data.max_files must be None or >= 2"),
        ("evaluation.overlap=256", "evaluation.overlap must be in [0, the window of 256)"),
        ("data.source=ftp", "data.source must be download, synthetic or local"),
        ("data.disk=500GB", "data.disk must be a size such as 320Gi, got '500GB'"),
    ],
)
def test_bad_cloudmask_values_give_one_clear_line(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        config.build_config("cloudmask", [override])


def test_cloudmask_normalisation_is_refused_for_38cloud() -> None:
    with pytest.raises(ConfigError, match="model.normalization must be percentile or fixed"):
        config.build_config("clouds", ["model.normalization=cloudmask"])


def test_cloudmask_benchmark_keeps_the_reference_training() -> None:
    cfg = config.build_config("cloudmask-benchmark")
    assert (cfg.model.arch, cfg.model.normalization) == ("unet_cloudmask", "cloudmask")
    t = cfg.training
    assert (t.lr, t.batch_size, t.early_stopping_patience, t.augment, t.slidemix) == (1e-3, 32, 25, False, False)
    assert cfg.data.source == "download" and cfg.data.val_fraction == 0.2
