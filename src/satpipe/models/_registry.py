"""A small registry of segmentation architectures: ``@register_model`` and ``create_model(name, **kwargs)``."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from satpipe.errors import ConfigError

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register an entrypoint under its function name."""
    if fn.__name__ in _MODELS:
        raise ValueError(f"model {fn.__name__!r} registered twice ({_MODELS[fn.__name__].__module__}, {fn.__module__})")
    _MODELS[fn.__name__] = fn
    return fn


def list_models() -> list[str]:
    """Names of every registered architecture."""
    return sorted(_MODELS)


def create_model(name: str, **kwargs: object) -> nn.Module:
    """Build a registered architecture.

    Raises:
        ConfigError: If no architecture has that name.
    """
    if name not in _MODELS:
        raise ConfigError(f"model.arch: unknown architecture {name!r}; choose one of {', '.join(list_models())}")
    return _MODELS[name](**kwargs)
