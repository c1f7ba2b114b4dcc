"""Ground-truth scoring of follow runs (MOT labels) on worked examples."""

from __future__ import annotations

import numpy as np
import pytest

from edgereid.errors import InputError
from edgereid.evaluation.follow_gt import (
    parse_frame_range,
    read_mot_gt,
    relock_delays,
    score_follow,
    visible_fraction,
    write_mot_gt,
)


def msg(frame, state, box=None, stop=None, sim=None):
    stop = state != "LOCKED" if stop is None else stop
    target = None if box is None else {"box": box, "similarity": sim, "track_id": 1, "coasting": False}
    return {"frame": frame, "state": state, "target": target, "command": {"stop": stop}}


def test_mot_round_trip_is_zero_based_and_skips_ignored_rows(tmp_path):
    path = tmp_path / "gt.txt"
    path.write_text("1,4,10,20,30,60,1,-1,-1,-1\n2,4,12,20,30,60,1,-1,-1,-1\n2,5,100,20,30,60,0,-1,-1,-1\n")
    gt = read_mot_gt(path)
    assert sorted(gt) == [0, 1] and list(gt[1]) == [4]  # id 5 has consider flag 0
    assert gt[0][4].tolist() == [10, 20, 40, 80]
    write_mot_gt(tmp_path / "again.txt", gt)
    assert read_mot_gt(tmp_path / "again.txt")[1][4].tolist() == [12, 20, 42, 80]


@pytest.mark.parametrize("text, fragment", [("1,4,a,b\n", "expected"), ("0,4,1,1,5,5\n", ">= 1"), ("", "no boxes")])
def test_bad_gt_is_an_input_error(tmp_path, text, fragment):
    path = tmp_path / "gt.txt"
    path.write_text(text)
    with pytest.raises(InputError, match=fragment):
        read_mot_gt(path)


def test_visible_fraction_counts_only_nearer_people():
    boxes = {1: np.array([0, 0, 10, 40.0]), 2: np.array([0, 20, 10, 50.0]), 3: np.array([0, 0, 10, 10.0])}
    assert visible_fraction(boxes, 1) == pytest.approx(0.5, abs=0.05)  # lower half hidden by person 2
    assert visible_fraction(boxes, 2) == 1.0  # nearest: nobody in front
    assert visible_fraction(boxes, 9) == 0.0


def test_score_follow_on_a_worked_example():
    her, him = [0, 0, 10, 40.0], [50, 0, 60, 40.0]
    gt = {f: {4: np.array(her), 7: np.array(him)} for f in range(6)}
    messages = [
        msg(0, "SEARCHING"),
        msg(1, "LOCKED", [1, 0, 11, 40]),  # on her
        msg(2, "LOCKED", [50, 0, 60, 40]),  # driving toward him: the safety failure
        msg(3, "LOCKED", [200, 0, 210, 40]),  # toward nobody
        msg(4, "LOST"),
        msg(5, "LOCKED", [0, 0, 10, 40], stop=True),  # LOCKED but stopped (stale frame): on target, not driving
    ]
    report = score_follow(messages, gt, target_id=4)
    assert report.target_frames == 6 and report.locked_on_target == pytest.approx(2 / 6, abs=1e-4)
    assert report.toward_other_frames == 1 and report.toward_other_ids == [7]
    assert report.toward_nobody_frames == 1 and report.commanded_frames == 3
    assert report.first_lock_frame == 1
    assert score_follow(messages, gt, 4, frames=(2, 3)).toward_other_frames == 1
    with pytest.raises(InputError, match="not in the ground truth"):
        score_follow(messages, gt, target_id=99)


def test_relock_delays_count_from_reappearance():
    visible = [1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1]
    on = [1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]
    assert relock_delays([bool(v) for v in visible], [bool(o) for o in on], min_hidden=3) == [2, None]


def test_frame_ranges():
    assert list(parse_frame_range("506-527:3")) == [506, 509, 512, 515, 518, 521, 524, 527]
    with pytest.raises(InputError, match="A-B"):
        parse_frame_range("five")
