from satpipe.tracking import resolve_wandb_mode


def test_online_needs_a_key() -> None:
    assert resolve_wandb_mode("online", {"WANDB_API_KEY": "k"}) == ("online", None)
    mode, note = resolve_wandb_mode("online", {})
    assert mode == "offline" and note is not None and "WANDB_API_KEY" in note


def test_offline_and_disabled_are_kept() -> None:
    assert resolve_wandb_mode("offline", {"WANDB_API_KEY": "k"}) == ("offline", None)
    assert resolve_wandb_mode("disabled", {}) == ("disabled", None)
