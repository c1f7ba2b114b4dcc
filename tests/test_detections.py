from __future__ import annotations

import numpy as np
import pytest

from edgereid.detections import Detections, box_iou_batch
from edgereid.errors import InputError


def test_mask_and_index_selection_keep_fields_parallel():
    d = Detections(
        xyxy=[[0, 0, 10, 20], [5, 5, 15, 25], [100, 100, 110, 130]],
        scores=[0.9, 0.3, 0.8],
        class_ids=[0, 0, 0],
        track_ids=[4, 5, 6],
    )
    kept = d[d.scores > 0.5]
    assert len(kept) == 2 and kept.track_ids.tolist() == [4, 6]
    assert d[1].xyxy.tolist() == [[5, 5, 15, 25]]
    np.testing.assert_allclose(d.area, [200, 200, 300])
    np.testing.assert_allclose(d.centers[0], [5, 10])


def test_length_mismatch_is_refused():
    with pytest.raises(InputError, match="scores must have one entry per box"):
        Detections(xyxy=[[0, 0, 1, 1]], scores=[0.1, 0.2])


def test_clip_drops_boxes_outside_the_image():
    d = Detections(xyxy=[[-5, -5, 10, 10], [200, 200, 300, 300]], scores=[1, 1]).clip(100, 100)
    assert d.xyxy.tolist() == [[0, 0, 10, 10]]


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ([[0, 0, 10, 10]], [[0, 0, 10, 10]], [[1.0]]),
        ([[0, 0, 10, 10]], [[5, 0, 15, 10]], [[50 / 150]]),
        ([[0, 0, 10, 10]], [[20, 20, 30, 30]], [[0.0]]),
    ],
)
def test_iou_on_worked_examples(a, b, expected):
    np.testing.assert_allclose(box_iou_batch(a, b), expected, rtol=1e-6)


def test_iou_empty_sides():
    assert box_iou_batch(np.zeros((0, 4)), [[0, 0, 1, 1]]).shape == (0, 1)
    assert box_iou_batch([[0, 0, 1, 1]], np.zeros((0, 4))).shape == (1, 0)
