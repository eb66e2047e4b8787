"""Experiment-tracking policy: which W&B mode a run uses, decided once and stated plainly."""

from __future__ import annotations

import os
from collections.abc import Mapping


def resolve_wandb_mode(requested: str, environ: Mapping[str, str] | None = None) -> tuple[str, str | None]:
    """Choose the W&B mode for a run.

    Online needs both a request and an API key: without a key W&B fails at once, and with a key but no
    network it hangs for minutes, so offline is the default and the safe fallback.

    Args:
        requested: ``"online"``, ``"offline"`` or ``"disabled"``.
        environ: Where to look for ``WANDB_API_KEY`` (the process environment by default).

    Returns:
        The mode to use and, when it differs from the request, why.
    """
    environ = os.environ if environ is None else environ
    if requested == "online" and not environ.get("WANDB_API_KEY"):
        return "offline", "tracking.mode=online but WANDB_API_KEY is not set; logging offline (wandb sync later)"
    return requested, None
