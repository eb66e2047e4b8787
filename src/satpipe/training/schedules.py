"""Learning-rate schedules as pure functions of the optimizer step.

A schedule that depends only on the step survives a restart from a checkpoint unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


def cosine(step: int, total: int) -> float:
    """Cosine decay from 1 at ``step = 0`` to 0 at ``step = total`` (and after)."""
    if total <= 0:
        return 1.0
    return 0.5 * (1 + math.cos(math.pi * min(step, total) / total))


@dataclass(frozen=True)
class TwoPhaseSchedule:
    """Learning rates of two-phase fine-tuning.

    Phase 1 (the first ``phase1_steps`` steps) trains only the head at ``phase1_lr`` with a linear
    warm-up of ``warmup_steps`` then cosine decay. Phase 2 starts a fresh cosine over the remaining
    steps with the head at ``phase2_lr`` and the backbone at ``phase2_lr * backbone_lr_ratio``; the
    backbone's rate is zero throughout phase 1.
    """

    phase1_steps: int
    total_steps: int
    warmup_steps: int
    phase1_lr: float
    phase2_lr: float
    backbone_lr_ratio: float

    @property
    def backbone_base_lr(self) -> float:
        """Peak learning rate of the backbone groups."""
        return self.phase2_lr * self.backbone_lr_ratio

    def head_lr(self, step: int) -> float:
        """Head learning rate at ``step``."""
        if step < self.phase1_steps:
            warmup = min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps > 0 else 1.0
            return self.phase1_lr * warmup * cosine(step, self.phase1_steps)
        return self.phase2_lr * cosine(step - self.phase1_steps, self.total_steps - self.phase1_steps)

    def backbone_lr(self, step: int) -> float:
        """Backbone learning rate at ``step``."""
        if step < self.phase1_steps:
            return 0.0
        return self.backbone_base_lr * cosine(step - self.phase1_steps, self.total_steps - self.phase1_steps)

    def lambdas(self, head_groups: int, backbone_groups: int) -> list[Callable[[int], float]]:
        """Multipliers for ``torch.optim.lr_scheduler.LambdaLR``, head groups first.

        Head groups must start at ``phase1_lr`` and backbone groups at ``backbone_base_lr``.
        """
        head = lambda step: self.head_lr(step) / self.phase1_lr  # noqa: E731
        backbone = lambda step: self.backbone_lr(step) / self.backbone_base_lr  # noqa: E731
        return [head] * head_groups + [backbone] * backbone_groups
