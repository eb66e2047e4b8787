"""run.py's checks before anything is submitted (in-process; nothing here starts Flyte)."""

import json
import re
from pathlib import Path

import pytest

import config
import run
from satpipe.models import classifier


def test_pretrained_weights_offline_are_refused_before_any_stage(
    synthetic_eurosat: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import huggingface_hub

    monkeypatch.setattr(classifier, "hub_reachable", lambda *a, **k: False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    assert run.main(["eurosat", "--data-dir", str(synthetic_eurosat)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach huggingface.co") and "model.pretrained=false" in err
    assert err.count("\n") == 1


def test_a_bad_chip_is_named_before_the_pretrained_weights_are_checked(
    synthetic_eurosat: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    import huggingface_hub

    monkeypatch.setattr(classifier, "hub_reachable", lambda *a, **k: False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    data = Path(shutil.copytree(synthetic_eurosat / "2750", tmp_path / "data" / "2750"))
    bad = data / "Pasture" / "Pasture_3.jpg"
    bad.write_bytes(bad.read_bytes()[:80])
    assert run.main(["eurosat", "--data-dir", str(data.parent)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad}: unreadable image") and err.count("\n") == 1


def test_remote_without_a_cluster_config_says_how_to_make_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(run, "FLYTE_CONFIG", tmp_path / ".flyte" / "config.yaml")
    assert run.main(["quickstart", "--remote"]) == 2
    assert "flyte create config" in capsys.readouterr().err


def test_print_config_shows_the_resolved_settings(capsys: pytest.CaptureFixture[str]) -> None:
    assert run.main(["eurosat-ms", "--set", "training.epochs=7", "--print-config"]) == 0
    resolved = json.loads(capsys.readouterr().out)
    assert (
        resolved["data"]["bands"] == "ms" and resolved["training"]["epochs"] == 7 and resolved["name"] == "eurosat-ms"
    )


def test_local_source_needs_a_folder(capsys: pytest.CaptureFixture[str]) -> None:
    assert run.main(["quickstart", "--set", "data.source=local"]) == 2
    assert capsys.readouterr().err == "error: data.source=local needs --data-dir PATH\n"


def test_unlabelled_scenes_are_checked_before_any_stage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run.main(["clouds", "--unlabelled-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == "error: --unlabelled-dir applies to the semi preset, not 'clouds'\n"
    assert run.main(["semi", "--unlabelled-dir", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'missing'}: data folder does not exist\n"
    assert run.main(["semi", "--unlabelled-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {tmp_path}: no test patches found (expected test_red/")
    with pytest.raises(config.ConfigError, match="with real data use --unlabelled-dir"):
        config.build_config("semi", ["semi.unlabelled_scenes=2", "data.source=local"])


def test_seeds_help_and_refusal_name_the_presets_that_take_it(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run.parse_args(["--help"])
    assert re.search(r"--seeds N\s+repeat training over N seeds \(presets cloudmask, semi,\s+cloudmask-benchmark,"
                     r"\s+landcover, segment\)", capsys.readouterr().out)  # fmt: skip
    assert run.main(["clouds", "--seeds", "2"]) == 2
    presets = "cloudmask, semi, cloudmask-benchmark, landcover, segment"
    assert capsys.readouterr().err == f"error: --seeds applies to the presets {presets}, not 'clouds'\n"


def test_seeds_and_a_sweep_are_refused_together(isolated_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run.main(["cloudmask", "--seeds", "3", "--sweep", "training.lr=1e-3,3e-3"]) == 2
    assert capsys.readouterr().err == "error: --seeds cannot be combined with --sweep: a trial trains one seed\n"
