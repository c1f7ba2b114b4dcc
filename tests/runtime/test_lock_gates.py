"""Each gate of the target lock on a constructed case, and thresholds that follow the model's scale."""

from __future__ import annotations

import numpy as np
import pytest

from edgereid.runtime.config import FollowConfig, GalleryConfig, LockConfig
from edgereid.runtime.quality import crop_quality
from edgereid.runtime.target_lock import LockState, TargetLock
from edgereid.runtime.thresholds import derive_thresholds, resolve_thresholds
from tests.runtime.test_target_lock import CENTRE, LEFT, SCALE, SIZE, STRANGER, TARGET, D, frame, unit, view

BOTTOM_CUT = [270, 330, 370, 480]  # head and shoulders, cut by the bottom edge (h/w 1.5)


def lost_with_gallery(rng, **cfg):
    lock = TargetLock(LockConfig(accept_frames=2, **cfg), similarity_scale=SCALE)
    lock.enroll_embeddings(np.stack([view(TARGET, rng) for _ in range(4)]))
    assert lock.state is LockState.LOST
    return lock


@pytest.mark.parametrize("box, reason", [
    ([270, 330, 370, 480], "cut by the image border"),
    ([0, 100, 100, 400], "cut by the image border"),
    ([300, 200, 308, 218], "too small"),
    ([200, 200, 320, 280], "implausible aspect"),
    ([270, 100, 370, 400], ""),
])
def test_crop_quality_names_the_first_failed_gate(box, reason):
    good, reasons = crop_quality(frame([(1, box, None)]), SIZE)
    assert reasons == [reason] and bool(good[0]) == (reason == "")


def test_border_cut_crop_never_reacquires_even_when_it_matches(rng):
    lock = lost_with_gallery(rng)
    for _ in range(6):  # her exact appearance, but only head and shoulders in view
        assert lock.update(frame([(5, BOTTOM_CUT, view(TARGET, rng, 0.01))]), SIZE).state is LockState.LOST
    states = [lock.update(frame([(5, CENTRE, view(TARGET, rng, 0.01))]), SIZE).state for _ in range(2)]
    assert states == [LockState.LOST, LockState.LOCKED]  # the whole person: accepted


def test_overlapping_crops_do_not_enroll(rng):
    lock = TargetLock(LockConfig(enroll_frames=3), similarity_scale=SCALE)
    touching = [300, 120, 400, 420]
    for _ in range(5):
        lock.update(frame([(1, CENTRE, view(TARGET, rng)), (2, touching, view(STRANGER, rng))]), SIZE)
    assert lock.state is LockState.ENROLLING and len(lock.gallery) == 0  # no clean view yet


def test_anchor_drift_is_blocked(rng):
    """A locked track whose look drifts step by step toward a stranger: each step is close to the last
    learnt view, but views are learnt only against the anchors, so the gallery never moves to her."""
    lock = TargetLock(LockConfig(enroll_frames=3), GalleryConfig(update_interval=1), similarity_scale=SCALE)
    for _ in range(3):
        lock.update(frame([(1, CENTRE, view(TARGET, rng, 0.01))]), SIZE)
    learnt = []
    for t in np.linspace(0.0, 1.0, 41):
        emb = unit((1 - t) * TARGET + t * STRANGER)
        result = lock.update(frame([(1, CENTRE, emb)]), SIZE)
        learnt.append(len(lock.gallery))
        if result.state is LockState.LOST:
            break
    assert lock.state is LockState.LOST and t < 1.0  # ended before reaching the stranger
    assert max(learnt) > 3  # views were learnt on the way ...
    assert (lock.gallery.embeddings @ TARGET).min() >= 0.55 - 1e-3  # ... each matching the anchors (update)
    for _ in range(6):  # the stranger is never re-acquired: re-acquisition is judged against the anchors
        assert lock.update(frame([(1, CENTRE, view(STRANGER, rng, 0.01))]), SIZE).state is LockState.LOST


def test_track_swap_is_caught_by_the_jump_between_consecutive_crops(rng):
    lock = TargetLock(LockConfig(enroll_frames=3), similarity_scale=SCALE)
    for _ in range(8):
        lock.update(frame([(1, CENTRE, view(TARGET, rng, 0.01))]), SIZE)
    # the track now holds someone whose crop is still above the floor (cos 0.38 > 0.30) but unlike the last crop
    other = unit(TARGET * 0.38 + np.eye(D)[5] * 0.925)
    result = lock.update(frame([(1, CENTRE, other)]), SIZE)
    assert result.state is LockState.LOST and "jumped" in result.event


def test_known_stranger_beside_the_target_catches_a_later_swap(rng):
    lock = TargetLock(LockConfig(enroll_frames=3), similarity_scale=SCALE)
    look = unit(TARGET * 0.7 + np.eye(D)[2] * 0.714)  # cos 0.70 with the target: above accept 0.65
    for _ in range(3):
        lock.update(frame([(1, CENTRE, view(TARGET, rng, 0.01))]), SIZE)
    for _ in range(4):  # she walks beside the target: learnt as a known stranger
        lock.update(frame([(1, CENTRE, view(TARGET, rng, 0.01)), (2, LEFT, view(look, rng, 0.01))]), SIZE)
    assert len(lock.strangers) >= 1
    # the tracker hands track 1 to her after a one-frame gap: jump-free (0.70 > 0.425), but she is known
    lock.update(frame([]), SIZE, predicted={1: np.array(CENTRE, np.float32)})
    states = [lock.update(frame([(1, CENTRE, view(look, rng, 0.01))]), SIZE) for _ in range(3)]
    assert states[-1].state is LockState.LOST
    for _ in range(10):  # alone in view, above accept_threshold, never adopted
        assert lock.update(frame([(9, CENTRE, view(look, rng, 0.01))]), SIZE).state is LockState.LOST


def test_stranger_margin_applies_to_reacquisition(rng):
    lock = lost_with_gallery(rng)
    twin = unit(TARGET * 0.95 + np.eye(D)[6] * 0.31)  # cos 0.95 with the target
    for _ in range(3):  # seen rejected while LOST? no: near-misses are not banked; bank her explicitly
        lock.strangers.add(42, view(twin, rng, 0.001))
    for _ in range(5):  # the target's own look-alike cannot be told from a known stranger: wait
        assert lock.update(frame([(3, CENTRE, view(twin, rng, 0.001))]), SIZE).state is LockState.LOST
    states = [lock.update(frame([(4, CENTRE, unit(TARGET - 0.2 * np.eye(D)[6]))]), SIZE).state for _ in range(2)]
    assert states[-1] is LockState.LOCKED  # the target herself is nearer the anchors than the stranger by the margin


def test_someone_entering_from_the_bottom_edge_is_not_the_target_who_walked_away(rng):
    lock = TargetLock(LockConfig(enroll_frames=2, coast_frames=0, accept_frames=2), similarity_scale=SCALE)
    for _ in range(2):
        lock.update(frame([(1, CENTRE, view(TARGET, rng, 0.01))]), SIZE)
    lock.update(frame([]), SIZE)
    assert lock.state is LockState.LOST
    lock.update(frame([(7, BOTTOM_CUT, None)]), SIZE)  # born at the bottom edge
    for _ in range(4):  # walks up into full view, looking exactly like her
        assert lock.update(frame([(7, CENTRE, view(TARGET, rng, 0.01))]), SIZE).state is LockState.LOST
    off = TargetLock(LockConfig(enroll_frames=2, coast_frames=0, accept_frames=2, block_bottom_entry=False),
                     similarity_scale=SCALE)
    for _ in range(2):
        off.update(frame([(1, CENTRE, view(TARGET, rng, 0.01))]), SIZE)
    off.update(frame([]), SIZE)
    off.update(frame([(7, BOTTOM_CUT, None)]), SIZE)
    states = [off.update(frame([(7, CENTRE, view(TARGET, rng, 0.01))]), SIZE).state for _ in range(2)]
    assert states[-1] is LockState.LOCKED  # documented knob: a static camera turns it off


def test_thresholds_follow_the_scale_and_the_ini_wins():
    osnet = {"impostor": {"p50": 0.44, "p99": 0.68, "p999": 0.76}}
    t = derive_thresholds(osnet)
    assert (t["accept_threshold"], t["anchor_threshold"], t["reject_threshold"]) == (0.76, 0.68, 0.44)
    assert t["accept_margin"] == pytest.approx(0.4 * 0.24, abs=1e-4)
    # an affine map of the cosines (x -> (x + 1) / 2) maps every level and halves every spread
    squeezed = {"impostor": {k: (v + 1) / 2 for k, v in osnet["impostor"].items()}}
    s = derive_thresholds(squeezed)
    for name in ("accept_threshold", "anchor_threshold", "reject_threshold", "jump_threshold"):
        assert s[name] == pytest.approx((t[name] + 1) / 2, abs=1e-4)
    for name in ("accept_margin", "reject_drop", "stranger_margin", "sustained_drop"):
        assert s[name] == pytest.approx(t[name] / 2, abs=1e-4)
    pinned = FollowConfig().with_overrides({"lock": {"accept_threshold": "0.9"}})
    resolved = resolve_thresholds(pinned, osnet)
    assert resolved.lock.accept_threshold == 0.9 and resolved.lock.reject_threshold == 0.44


def test_a_bundle_without_a_scale_gets_strict_thresholds_and_a_warning(caplog):
    with caplog.at_level("WARNING", logger="edgereid.follow"):
        lock = TargetLock(LockConfig())
    assert "no measured similarity scale" in caplog.text
    assert lock.config.accept_threshold == 0.9 and lock.config.reject_threshold == 0.5


def squeeze(emb, c=1.0):
    """The embedding behind a wrapper that appends a constant: cos' = (cos + c^2) / (1 + c^2)."""
    emb = np.asarray(emb, np.float32)
    return unit(np.concatenate([emb / np.linalg.norm(emb), [c]]))


def test_two_scales_make_the_same_decisions(rng):
    """The same scene through an embedder and the same embedder behind a cosine-squeezing wrapper:
    different thresholds, identical states frame by frame."""
    squeezed_scale = {"impostor": {k: (v + 1) / 2 for k, v in SCALE["impostor"].items()}}
    look = unit(TARGET * 0.7 + np.eye(D)[2] * 0.714)
    script = ([[(1, CENTRE, view(TARGET, rng, 0.02))]] * 1 + [[(1, CENTRE, view(TARGET, rng, 0.02))] for _ in range(6)]
              + [[(1, CENTRE, view(TARGET, rng, 0.02)), (2, LEFT, view(look, rng, 0.02))] for _ in range(4)]
              + [[]] + [[(1, CENTRE, view(look, rng, 0.02))] for _ in range(4)]
              + [[(5, CENTRE, view(TARGET, rng, 0.02)), (6, LEFT, view(STRANGER, rng, 0.02))] for _ in range(5)])
    a = TargetLock(LockConfig(enroll_frames=3), similarity_scale=SCALE)
    b = TargetLock(LockConfig(enroll_frames=3), similarity_scale=squeezed_scale)
    assert a.config.accept_threshold != b.config.accept_threshold
    states_a, states_b = [], []
    for people in script:
        states_a.append(a.update(frame(people), SIZE).state)
        wrapped = [(t, box, None if e is None else squeeze(e)) for t, box, e in people]
        states_b.append(b.update(_frame_dim(wrapped), SIZE).state)
    assert states_a == states_b
    assert {LockState.LOCKED, LockState.LOST} <= set(states_a)


def _frame_dim(people):
    from edgereid.detections import Detections

    if not people:
        return Detections(np.zeros((0, 4)), np.zeros(0), track_ids=np.zeros(0), embeddings=None)
    return Detections(np.array([b for _, b, _ in people], np.float32), np.full(len(people), 0.9),
                      track_ids=np.array([t for t, _, _ in people]), embeddings=np.stack([e for _, _, e in people]))
