import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from satpipe.evaluation.engine import BLEND_MODES, ArraySink, axis_weights, predict_scene, window_starts, windows_in
from satpipe.io.rasters import ArraySource


def identity(x: torch.Tensor) -> torch.Tensor:
    return x  # every band stands in for a class probability


@st.composite
def layouts(draw: st.DrawFn) -> tuple[int, int, int, int, int]:
    window = draw(st.sampled_from([8, 16, 32, 48]))
    overlap = draw(st.integers(0, window - 1))
    height, width = draw(st.integers(1, 130)), draw(st.integers(1, 130))
    return height, width, window, overlap, draw(st.sampled_from([1, 3, 16]))


@pytest.mark.parametrize("blend", BLEND_MODES)
@settings(max_examples=40, deadline=None)
@given(layout=layouts(), seed=st.integers(0, 2**16))
def test_identity_model_reconstructs_the_scene_exactly(blend: str, layout, seed: int) -> None:
    height, width, window, overlap, batch = layout
    scene = np.random.default_rng(seed).uniform(0.01, 1.0, size=(2, height, width)).astype(np.float32)
    sink = ArraySink(2, height, width)
    stats = predict_scene(
        ArraySource(scene), identity, sink, channels=2, window=window, overlap=overlap, blend=blend, batch_size=batch
    )
    assert not np.isnan(sink.prob).any()
    np.testing.assert_allclose(sink.prob, scene, rtol=0, atol=2e-7)  # every channel exact to float32 rounding
    assert stats.windows_run == windows_in(height, width, window, overlap) and stats.windows_skipped == 0


def test_window_starts_cover_every_pixel_with_the_last_shifted_inward() -> None:
    assert window_starts(100, 32, 24) == [0, 24, 48, 68]
    assert window_starts(32, 32, 24) == [0] and window_starts(10, 32, 24) == [0]
    for size in range(33, 300):
        starts = window_starts(size, 32, 20)
        covered = np.zeros(size, bool)
        for s in starts:
            covered[s : s + 32] = True
        assert covered.all() and starts[-1] == size - 32 and all(b - a <= 20 for a, b in itertools.pairwise(starts))


def test_cosine_ramps_of_neighbours_sum_to_one() -> None:
    window, overlap = 64, 16
    left = axis_weights(1000, 0, window, overlap, "cosine")
    right = axis_weights(1000, window - overlap, window, overlap, "cosine")
    np.testing.assert_allclose(left[-overlap:] + right[:overlap], 1.0, atol=1e-6)
    assert left[0] == 1 and left.min() > 0  # no ramp against the scene border


def test_center_crop_keeps_the_central_part_and_the_scene_border() -> None:
    inner = axis_weights(1000, 96, 64, 16, "center")
    assert inner[:8].sum() == 0 and inner[-8:].sum() == 0 and inner[8:56].min() == 1
    assert axis_weights(1000, 0, 64, 16, "center")[:8].min() == 1  # first window reaches the border


def test_nodata_windows_are_skipped_and_written_as_nodata() -> None:
    scene = np.full((1, 96, 96), 0.5, np.float32)
    scene[:, :64, :64] = 0  # nodata block: the top-left window sees nothing else
    calls: list[int] = []

    def counting(x: torch.Tensor) -> torch.Tensor:
        calls.append(len(x))
        return identity(x)

    sink = ArraySink(1, 96, 96)
    stats = predict_scene(
        ArraySource(scene), counting, sink, channels=1, window=32, overlap=0, blend="none", batch_size=4
    )
    assert stats.windows_skipped == 4 and stats.windows_run == 5 and sum(calls) == 5
    assert np.isnan(sink.prob[0, :64, :64]).all() and (sink.prob[0, 64:, :] == 0.5).all()


def test_rows_reach_the_sink_once_and_in_order() -> None:
    class Recorder:
        def __init__(self) -> None:
            self.rows: list[int] = []

        def write(self, row: int, prob: np.ndarray) -> None:
            self.rows.extend(range(row, row + prob.shape[1]))

    recorder = Recorder()
    scene = np.ones((1, 250, 70), np.float32)
    predict_scene(ArraySource(scene), identity, recorder, channels=1, window=64, overlap=16, blend="cosine")
    assert recorder.rows == list(range(250))


def test_bad_geometry_is_refused() -> None:
    with pytest.raises(ValueError, match="overlap"):
        predict_scene(ArraySource(np.ones((1, 8, 8))), identity, ArraySink(1, 8, 8), channels=1, window=8, overlap=8)
    with pytest.raises(ValueError, match="blend"):
        predict_scene(
            ArraySource(np.ones((1, 8, 8))),
            identity,
            ArraySink(1, 8, 8),
            channels=1,
            window=8,
            overlap=2,
            blend="magic",
        )
    with pytest.raises(ValueError, match="3 channels, expected 1"):
        predict_scene(ArraySource(np.ones((3, 8, 8))), identity, ArraySink(1, 8, 8), channels=1, window=8, overlap=2)
