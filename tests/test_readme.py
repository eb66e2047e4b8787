"""The README stays true: its commands, presets, settings and paths exist in the code."""

import re

import config
from tests.conftest import PROJECT_ROOT

README = (PROJECT_ROOT / "README.md").read_text()


def quick_start() -> list[str]:
    block = README.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [line.split("#")[0].strip() for line in block.strip().splitlines()]


def test_quick_start_is_install_then_exactly_two_commands() -> None:
    assert quick_start() == ["pip install uv", "uv run run.py", "uv run pytest"]


def test_ci_runs_the_readme_test_command() -> None:
    assert "uv run pytest" in (PROJECT_ROOT / ".ci" / "run").read_text()


def test_presets_in_the_readme_are_the_presets_in_config() -> None:
    table = README.split("## Presets", 1)[1].split("##", 1)[0]
    assert set(re.findall(r"^\| `([\w-]+)`", table, re.M)) == set(config.PRESETS)


def test_every_setting_mentioned_parses_for_some_preset() -> None:
    def parses(preset: str, setting: str) -> bool:
        try:
            config.build_config(preset, [setting])
        except config.ConfigError:
            return False
        return True

    for setting in re.findall(r"--set ([\w.]+=[^\s`]+)", README):
        if "section.key" not in setting:
            assert any(parses(preset, setting) for preset in config.PRESETS), setting


def test_paths_mentioned_exist() -> None:
    for path in (
        "config.py",
        "envs/",
        "tasks/",
        "workflows/",
        "src/satpipe",
        "bench/data_loading.py",
        "bench/cached_rerun.py",
        "bench/cloudmask_io.py",
        "bench/cloudmask_inference.py",
        "bench/cloudmask_epoch.py",
        "Dockerfile",
        "pyproject.toml",
        "uv.lock",
    ):
        assert path in README and (PROJECT_ROOT / path).exists(), path


def test_dockerfile_installs_from_the_same_lock() -> None:
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    assert "uv.lock" in dockerfile and dockerfile.count("uv sync --frozen") == 2 and "USER 1000" in dockerfile


def test_satpipe_predict_and_export_commands_parse() -> None:
    import shlex

    from satpipe import export, predict

    lines = re.findall(r"^uv run satpipe (predict|export) ((?:.*\\\n)*.*)$", README, re.M)
    commands = [(name, shlex.split(rest.replace("\\\n", " "), comments=True)) for name, rest in lines]
    assert {name for name, _ in commands} == {"predict", "export"}
    for name, argv in commands:
        if argv != ["--help"]:
            (predict if name == "predict" else export).build_parser().parse_args(argv)  # exits on a bad option
