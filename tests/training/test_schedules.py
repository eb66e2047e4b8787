import math

import pytest

from satpipe.training.schedules import TwoPhaseSchedule, cosine

S = TwoPhaseSchedule(
    phase1_steps=100, total_steps=300, warmup_steps=10, phase1_lr=2e-3, phase2_lr=2e-4, backbone_lr_ratio=0.1
)


def test_phase1_warms_up_then_decays_with_a_frozen_backbone() -> None:
    assert S.head_lr(0) == pytest.approx(2e-3 * 0.1 * cosine(0, 100))
    assert S.head_lr(9) == pytest.approx(2e-3 * cosine(9, 100))  # warm-up done
    assert S.head_lr(50) == pytest.approx(1e-3)  # half-way down the phase-1 cosine
    assert all(S.backbone_lr(step) == 0 for step in range(100))


def test_phase2_is_a_fresh_cosine_at_the_phase2_rates() -> None:
    assert S.head_lr(100) == pytest.approx(2e-4)
    assert S.backbone_lr(100) == pytest.approx(2e-5)  # 0.1 x phase2_lr
    assert S.head_lr(200) == pytest.approx(1e-4) and S.backbone_lr(200) == pytest.approx(1e-5)
    assert S.head_lr(300) == pytest.approx(0, abs=1e-12) and S.backbone_lr(299) < 1e-8


def test_lambdas_scale_each_group_base_rate() -> None:
    lambdas = S.lambdas(head_groups=2, backbone_groups=2)
    assert len(lambdas) == 4
    for step in (0, 50, 100, 250):
        assert S.phase1_lr * lambdas[0](step) == pytest.approx(S.head_lr(step))
        assert S.backbone_base_lr * lambdas[3](step) == pytest.approx(S.backbone_lr(step))


def test_cosine_bounds() -> None:
    assert cosine(0, 10) == 1 and cosine(10, 10) == pytest.approx(0, abs=1e-12) and cosine(5, 10) == pytest.approx(0.5)
    assert cosine(20, 10) == pytest.approx(0, abs=1e-12) and math.isclose(cosine(3, 0), 1)
