"""Lock metrics on hand-made worked examples."""

from __future__ import annotations

import numpy as np
import pytest

from edgereid.scenario.metrics import classify_lock, lock_metrics
from edgereid.scenario.scene import GroundTruth

T_BOX = [100, 100, 150, 250]
D_BOX = [300, 100, 350, 250]


def truth(i, target_visible=1.0, distractor=True):
    names, boxes, vis = ["target"], [T_BOX], [target_visible]
    if distractor:
        names.append("d")
        boxes.append(D_BOX)
        vis.append(1.0)
    return GroundTruth(i, names, np.array(boxes, np.float32), np.array(vis, np.float32))


def msg(state, box=None):
    return {"state": state, "target": None if box is None else {"box": box}}


def test_classify_lock():
    t = truth(0)
    assert classify_lock(msg("LOCKED", T_BOX), t) == "target"
    assert classify_lock(msg("LOCKED", D_BOX), t) == "distractor"
    assert classify_lock(msg("LOCKED", [500, 0, 520, 20]), t) == "nobody"
    assert classify_lock(msg("LOST"), t) == "none"


def test_worked_example_precision_share_switches_and_relock():
    # frames: 0-1 searching, 2-5 locked on target, 6-8 target hidden (lock coasts 1 frame then LOST),
    # 9 reappears, 9-10 LOST, 11 locked again, 12-13 switched onto the distractor, 14 back to target
    visible = [1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1]
    states = [msg("SEARCHING"), msg("ENROLLING", T_BOX)] + [msg("LOCKED", T_BOX)] * 4 + \
        [msg("LOCKED", T_BOX), msg("LOST"), msg("LOST"), msg("LOST"), msg("LOST"), msg("LOCKED", T_BOX),
         msg("LOCKED", D_BOX), msg("LOCKED", D_BOX), msg("LOCKED", T_BOX)]
    truths = [truth(i, v) for i, v in enumerate(visible)]
    m = lock_metrics(truths, states)
    assert m.locked_frames == 9
    assert m.lock_precision == pytest.approx(7 / 9)
    assert m.locked_visible == pytest.approx(6 / 12)
    assert m.switches == 1 and m.distractor_frames == 2
    assert m.relock_frames == [2]
    assert m.enrolled_frame == 2
    assert m.max_relock == 2


def test_never_relocked_counts_as_infinite_and_never_locked_has_precision_one():
    truths = [truth(i, v) for i, v in enumerate([1, 1, 0, 0, 0, 1, 1])]
    msgs = [msg("LOCKED", T_BOX), msg("LOCKED", T_BOX)] + [msg("LOST")] * 5
    m = lock_metrics(truths, msgs)
    assert m.relock_frames == [None] and m.max_relock == float("inf")
    empty = lock_metrics(truths, [msg("SEARCHING")] * 7)
    assert empty.lock_precision == 1.0 and empty.locked_visible == 0.0 and empty.max_relock is None


def test_mismatched_lengths_are_an_error():
    with pytest.raises(ValueError, match="one message per frame"):
        lock_metrics([truth(0)], [])
