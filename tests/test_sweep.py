import pytest

from satpipe.errors import ConfigError
from satpipe.sweep import Axis, command, expand, parse_axis


def test_grid_is_every_combination_in_the_order_given() -> None:
    trials = expand(["training.lr=1e-4,1e-3", "model.arch=unet,satunet,unet_small"])
    assert len(trials) == 6 and trials[0] == ["training.lr=1e-4", "model.arch=unet"]
    assert trials[-1] == ["training.lr=1e-3", "model.arch=unet_small"]
    assert len({tuple(t) for t in trials}) == 6


def test_random_draws_are_seeded_in_range_and_grow_by_appending() -> None:
    specs = ["training.lr=log:1e-5:1e-2", "training.batch_size=int:8:64", "model.arch=unet,satunet"]
    ten = expand(specs, "random", trials=10, seed=3)
    assert ten == expand(specs, "random", trials=10, seed=3) and ten != expand(specs, "random", trials=10, seed=4)
    assert expand(specs, "random", trials=12, seed=3)[:10] == ten  # more trials keep the ones drawn
    for trial in ten:
        values = dict(o.split("=") for o in trial)
        assert 1e-5 <= float(values["training.lr"]) <= 1e-2 and 8 <= int(values["training.batch_size"]) <= 64
        assert values["model.arch"] in ("unet", "satunet")
    lrs = sorted(float(dict(o.split("=") for o in t)["training.lr"]) for t in expand(specs, "random", 200, 0))
    assert lrs[100] == pytest.approx(10**-3.5, rel=0.6)  # log-uniform: the median sits mid-way in decades


def test_axis_parsing() -> None:
    assert parse_axis("a.b=1,2") == Axis("a.b", choices=("1", "2"))
    assert parse_axis("a.b=uniform:0:0.5") == Axis("a.b", distribution=("uniform", 0.0, 0.5))


@pytest.mark.parametrize(
    ("specs", "mode", "message"),
    [
        (["lr"], "grid", "--sweep expects key=v1,v2"),
        (["a=1,1"], "grid", "values must be distinct"),
        (["a=1,", "b=2"], "grid", "values must be distinct and non-empty"),
        (["a=log:0:1"], "random", "log range needs low < high and low > 0"),
        (["a=log:x:1"], "random", "needs numbers"),
        (["a=log:1e-4:1e-2"], "grid", "a range needs --sweep-mode random"),
        (["a=1,2", "a=3"], "grid", "names a setting twice: a"),
    ],
)
def test_bad_specifications_are_one_line(specs: list[str], mode: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        expand(specs, mode)


def test_the_reproducing_command_lets_the_trial_win() -> None:
    line = command("clouds", ["training.epochs=2", "training.lr=1e-4"], ["training.lr=1e-3"])
    assert line == "uv run run.py clouds --set training.epochs=2 --set training.lr=1e-3"


def test_every_preset_can_be_swept() -> None:
    import config
    from workflows.sweep import STAGES

    assert {type(config.build_config(preset, [])) for preset in config.PRESETS} <= set(STAGES)
