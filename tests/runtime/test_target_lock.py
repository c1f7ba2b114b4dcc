"""Target lock state machine on constructed embeddings (no model needed)."""

from __future__ import annotations

import numpy as np
import pytest

from edgereid.detections import Detections
from edgereid.runtime.config import GalleryConfig, LockConfig
from edgereid.runtime.target_lock import LockState, TargetLock

SIZE = (640, 480)
D = 8
# A similarity scale as a manifest carries it: thresholds derived by thresholds.derive_thresholds give
# accept 0.65, anchor/update 0.55, reject 0.30, u = 0.25 (margins 0.05-0.25, jump 0.425).
SCALE = {"impostor": {"p50": 0.30, "p99": 0.55, "p999": 0.65}}


def Lock(config=None, gallery=None, **kw):  # noqa: N802 - reads like the class
    return TargetLock(config or LockConfig(), gallery, similarity_scale=SCALE, **kw)


def unit(v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


TARGET = unit(np.eye(D)[0])
STRANGER = unit(np.eye(D)[1])  # cos 0 with the target
LOOKALIKE = unit(np.eye(D)[0] * 0.66 + np.eye(D)[2] * 0.75)  # cos ~0.66 with the target


def view(base, rng, noise=0.05):
    """A nearby view of ``base`` (cos ~0.99)."""
    return unit(base + rng.normal(0, noise, D))


def frame(people):
    """people: list of (track_id, box, embedding or None)."""
    if not people:
        return Detections(np.zeros((0, 4)), np.zeros(0), track_ids=np.zeros(0), embeddings=None)
    emb = np.stack([np.full(D, np.nan, np.float32) if e is None else e for _, _, e in people])
    return Detections(np.array([b for _, b, _ in people], np.float32), np.full(len(people), 0.9),
                      track_ids=np.array([t for t, _, _ in people]), embeddings=emb)


CENTRE = [270, 100, 370, 400]  # 300 px tall, centred
SIDE = [20, 200, 80, 350]
LEFT = [100, 100, 200, 400]


def enrolled_lock(rng, config=None, frames=5):
    lock = Lock(config or LockConfig(enroll_frames=frames), GalleryConfig(update_interval=1))
    for _ in range(frames):
        result = lock.update(frame([(1, CENTRE, view(TARGET, rng)), (2, SIDE, None)]), SIZE)
    assert result.state is LockState.LOCKED
    return lock


def test_enrollment_takes_the_largest_centred_person_after_k_stable_frames(rng):
    lock = Lock(LockConfig(enroll_frames=4))
    assert lock.update(frame([]), SIZE).state is LockState.SEARCHING
    big_at_edge = [0, 0, 150, 470]  # larger but outside the central band
    states = []
    for _ in range(4):
        people = [(1, CENTRE, view(TARGET, rng)), (2, SIDE, None), (3, big_at_edge, None)]
        states.append(lock.update(frame(people), SIZE))
    assert [r.state for r in states] == [LockState.ENROLLING] * 3 + [LockState.LOCKED]
    assert states[-1].track_id == 1
    assert lock.enroll_height == pytest.approx(300)
    assert 1 <= len(lock.gallery) <= 4


def test_searching_asks_only_for_the_candidate_and_locked_only_for_the_target(rng):
    lock = Lock(LockConfig(enroll_frames=2))
    people = frame([(1, CENTRE, None), (2, SIDE, None), (3, LEFT, None)])
    assert lock.needs_embedding(people, SIZE).tolist() == [True, False, False]
    enrolled = enrolled_lock(rng)
    far_apart = frame([(1, CENTRE, None), (2, SIDE, None), (3, LEFT, None)])
    # the target, and one bystander per frame (stranger_checks_per_frame) to learn as a known stranger
    assert enrolled.needs_embedding(far_apart, SIZE).tolist() == [True, True, False]
    enrolled.update(frame([(1, CENTRE, view(TARGET, rng)), (2, SIDE, view(STRANGER, rng)), (3, LEFT, None)]), SIZE)
    assert len(enrolled.strangers) == 1
    assert enrolled.needs_embedding(far_apart, SIZE).tolist() == [True, False, True]  # the next unknown one
    quiet = Lock(LockConfig(enroll_frames=2, stranger_checks_per_frame=0))
    for _ in range(2):
        quiet.update(frame([(1, CENTRE, view(TARGET, rng))]), SIZE)
    assert quiet.needs_embedding(far_apart, SIZE).tolist() == [True, False, False]


def test_enrollment_survives_a_missed_detection_and_restarts_for_a_new_candidate(rng):
    lock = Lock(LockConfig(enroll_frames=3, coast_frames=2))
    lock.update(frame([(1, CENTRE, view(TARGET, rng))]), SIZE)
    assert lock.update(frame([]), SIZE).state is LockState.ENROLLING  # one miss is tolerated
    lock.update(frame([(1, CENTRE, view(TARGET, rng))]), SIZE)
    bigger = [220, 50, 420, 470]
    result = lock.update(frame([(1, LEFT, view(TARGET, rng)), (5, bigger, view(STRANGER, rng))]), SIZE)
    assert result.state is LockState.ENROLLING and result.track_id == 5  # someone else stepped in front


def test_gallery_updates_only_when_confident_and_unoccluded(rng):
    lock = enrolled_lock(rng)
    n0 = len(lock.gallery)
    overlapping = [300, 120, 400, 420]
    lock.update(frame([(1, CENTRE, view(TARGET, rng)), (2, overlapping, None)]), SIZE)
    assert len(lock.gallery) == n0  # occluded: no update
    side_view = unit(TARGET + 0.3 * np.eye(D)[3])  # cos ~0.96, a new view
    assert lock.update(frame([(1, CENTRE, side_view)]), SIZE).state is LockState.LOCKED
    assert len(lock.gallery) > n0
    assert len(lock.gallery.anchors) == n0  # the enrollment anchors never change


def test_occlusion_coasts_then_lost_then_relock_only_after_n_frames_with_margin(rng):
    cfg = LockConfig(enroll_frames=3, coast_frames=2, accept_frames=3, accept_margin=0.1)
    lock = enrolled_lock(rng, cfg, frames=3)
    for _ in range(5):
        lock.update(frame([(1, CENTRE, view(TARGET, rng))]), SIZE)
    coast = [lock.update(frame([]), SIZE, predicted={1: np.array(CENTRE, np.float32)}) for _ in range(2)]
    assert all(r.state is LockState.LOCKED and r.coasting for r in coast)
    assert np.allclose(coast[0].box, CENTRE)
    assert lock.update(frame([]), SIZE).state is LockState.LOST
    # the target reappears with a new track id next to a look-alike that is too close to call
    twin = unit(TARGET * 0.99 + 0.14 * np.eye(D)[4])
    people = frame([(7, CENTRE, view(TARGET, rng, 0.01)), (8, LEFT, twin)])
    assert lock.needs_embedding(people, SIZE).all()
    for _ in range(4):
        assert lock.update(people, SIZE).state is LockState.LOST  # margin not met: never locks
    clear = [lock.update(frame([(7, CENTRE, view(TARGET, rng)), (8, LEFT, view(STRANGER, rng))]), SIZE)
             for _ in range(3)]
    assert [r.state for r in clear] == [LockState.LOST, LockState.LOST, LockState.LOCKED]
    assert clear[-1].track_id == 7


def test_a_gap_in_the_n_frames_resets_the_count(rng):
    lock = enrolled_lock(rng, LockConfig(enroll_frames=3, coast_frames=0, accept_frames=3), frames=3)
    lock.update(frame([]), SIZE)
    assert lock.state is LockState.LOST
    seq = [view(TARGET, rng), view(TARGET, rng), view(STRANGER, rng), view(TARGET, rng), view(TARGET, rng)]
    states = [lock.update(frame([(4, CENTRE, e)]), SIZE).state for e in seq]
    assert LockState.LOCKED not in states
    assert lock.update(frame([(4, CENTRE, view(TARGET, rng))]), SIZE).state is LockState.LOCKED


def test_track_handed_to_a_stranger_goes_lost_and_the_stranger_is_never_adopted(rng):
    lock = enrolled_lock(rng)
    for _ in range(5):
        lock.update(frame([(1, CENTRE, view(TARGET, rng))]), SIZE)
    # the tracker swapped: track 1 is now a look-alike who walked in front (cos ~0.66 > accept_threshold):
    # far below the target's own level, held for evidence_frames checks
    results = [lock.update(frame([(1, CENTRE, view(LOOKALIKE, rng, 0.01))]), SIZE) for _ in range(3)]
    assert [r.state for r in results] == [LockState.LOCKED, LockState.LOCKED, LockState.LOST]
    assert "below the target's typical" in results[-1].event
    for _ in range(20):  # alone in view, above the absolute threshold, yet never adopted
        assert lock.update(frame([(1, CENTRE, view(LOOKALIKE, rng, 0.01))]), SIZE).state is LockState.LOST
        assert lock.update(frame([(9, LEFT, view(LOOKALIKE, rng, 0.01))]), SIZE).state is LockState.LOST


def test_stranger_with_low_similarity_is_rejected_at_once(rng):
    lock = enrolled_lock(rng)
    result = lock.update(frame([(1, CENTRE, view(STRANGER, rng))]), SIZE)
    assert result.state is LockState.LOST


def test_nan_embedding_is_no_evidence_either_way(rng):
    lock = enrolled_lock(rng)
    n0 = len(lock.gallery)
    result = lock.update(frame([(1, CENTRE, np.full(D, np.nan, np.float32))]), SIZE)
    assert result.state is LockState.LOCKED and len(lock.gallery) == n0


def test_lost_leaves_only_by_explicit_enrollment_or_opt_in_timeout(rng):
    lock = enrolled_lock(rng, LockConfig(enroll_frames=2, coast_frames=0), frames=2)
    lock.update(frame([]), SIZE, now=10.0)
    for t in range(30):
        assert lock.update(frame([(3, CENTRE, view(STRANGER, rng))]), SIZE, now=10.0 + t).state is LockState.LOST
    lock.request_enrollment()
    assert lock.state is LockState.SEARCHING and len(lock.gallery) == 0
    timed = enrolled_lock(rng, LockConfig(enroll_frames=2, coast_frames=0, reenroll_timeout_s=5.0), frames=2)
    timed.update(frame([]), SIZE, now=0.0)
    assert timed.update(frame([]), SIZE, now=4.0).state is LockState.LOST
    assert timed.update(frame([]), SIZE, now=5.0).state is LockState.SEARCHING


def test_pre_enrolled_gallery_starts_lost_and_acquires_only_that_person(rng):
    lock = Lock(LockConfig(accept_frames=2))
    lock.enroll_embeddings(np.stack([view(TARGET, rng) for _ in range(4)]))
    assert lock.state is LockState.LOST
    states = [lock.update(frame([(1, LEFT, view(STRANGER, rng)), (2, CENTRE, view(TARGET, rng))]), SIZE)
              for _ in range(2)]
    assert states[-1].state is LockState.LOCKED and states[-1].track_id == 2
    assert lock.enroll_height == pytest.approx(300)


def test_similarity_is_pluggable(rng):
    calls = []

    def never_alike(queries, gallery):
        calls.append(len(queries))
        return np.zeros(len(queries), np.float32)

    lock = Lock(LockConfig(enroll_frames=2), similarity=never_alike)
    for _ in range(2):
        lock.update(frame([(1, CENTRE, view(TARGET, rng))]), SIZE)
    assert lock.state is LockState.LOCKED
    assert lock.update(frame([(1, CENTRE, view(TARGET, rng))]), SIZE).state is LockState.LOST
    assert calls
