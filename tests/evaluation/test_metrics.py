from __future__ import annotations

import numpy as np
import pytest

from edgereid.errors import InputError
from edgereid.evaluation import average_precision, cosine_distmat, evaluate


def _ranked(hit_ranks: list[int], length: int = 12) -> np.ndarray:
    v = np.zeros(length, bool)
    v[np.asarray(hit_ranks) - 1] = True
    return v


def test_worked_example_average_precisions():
    ap1 = average_precision(_ranked([1, 3, 6, 9, 10]))
    ap2 = average_precision(_ranked([2, 5, 7]))
    assert ap1 == pytest.approx((1 + 2 / 3 + 3 / 6 + 4 / 9 + 5 / 10) / 5)
    assert round(ap1, 3) == 0.622
    assert round(ap2, 3) == 0.443
    assert round((ap1 + ap2) / 2, 2) == 0.53


def _worked_example_distmat():
    """Two queries (ids 1 and 2, camera 1) over a 12-item gallery of camera 2 whose ranking puts
    the correct matches at ranks 1,3,6,9,10 and 2,5,7 respectively."""
    g = 12
    g_ids = np.full(g, 99)
    q1_hits, q2_hits = [1, 3, 6, 9, 10], [2, 5, 7]
    # distance = rank position, so gallery index r-1 sits at rank r for both queries
    distmat = np.tile(np.arange(g, dtype=float), (2, 1))
    g_ids[np.asarray(q1_hits) - 1] = 1
    g_ids[np.asarray(q2_hits) - 1] = 2
    return distmat, np.array([1, 2]), g_ids, np.array([1, 1]), np.full(g, 2)


def test_worked_example_through_evaluate():
    res = evaluate(*_worked_example_distmat())
    assert round(res["mAP"], 2) == 0.53
    assert res["rank1"] == pytest.approx(0.5)  # query 1 hits at rank 1, query 2 at rank 2
    assert res["cmc"][1] == pytest.approx(1.0)
    assert res["num_valid_queries"] == 2


def test_same_camera_same_id_is_excluded():
    distmat, q_ids, g_ids, q_cams, g_cams = _worked_example_distmat()
    g_cams = g_cams.copy()
    g_cams[0] = 1  # query 1's rank-1 match now comes from its own camera: junk
    res = evaluate(distmat, q_ids, g_ids, q_cams, g_cams)
    # query 1's remaining hits are at original ranks 3,6,9,10 -> ranks 2,5,8,9 after removal
    ap1 = (1 / 2 + 2 / 5 + 3 / 8 + 4 / 9) / 4
    # query 2 is untouched: item 0 has another id, and exclusion needs same id AND same camera
    ap2 = (1 / 2 + 2 / 5 + 3 / 7) / 3
    assert res["mAP"] == pytest.approx((ap1 + ap2) / 2)
    assert res["rank1"] == 0.0


def test_queries_without_valid_match_are_skipped():
    distmat, q_ids, g_ids, q_cams, g_cams = _worked_example_distmat()
    distmat = np.vstack([distmat, np.zeros(12)])
    res = evaluate(distmat, np.append(q_ids, 7), g_ids, np.append(q_cams, 1), g_cams)
    assert res["num_valid_queries"] == 2
    assert round(res["mAP"], 2) == 0.53


def test_no_valid_query_is_an_error():
    with pytest.raises(InputError, match="no query has a valid match"):
        evaluate(np.zeros((1, 2)), [1], [1, 2], [1], [1, 1])


def test_shape_mismatch_is_an_error():
    with pytest.raises(InputError, match="distmat must be"):
        evaluate(np.zeros((2, 2)), [1], [1, 2], [1], [2, 2])


def test_cosine_distmat_values():
    q = np.array([[1.0, 0.0], [0.0, 2.0]])
    g = np.array([[3.0, 0.0], [1.0, 1.0]])
    d = cosine_distmat(q, g)
    np.testing.assert_allclose(d, [[0.0, 1 - 1 / np.sqrt(2)], [1.0, 1 - 1 / np.sqrt(2)]], atol=1e-12)


def test_rowwise_cosine():
    from edgereid.evaluation.metrics import rowwise_cosine

    np.testing.assert_allclose(rowwise_cosine([[1, 0], [1, 1]], [[2, 0], [-1, 1]]), [1.0, 0.0], atol=1e-12)


def test_labelled_retrieval_each_camera_in_turn_is_the_query():
    from edgereid.evaluation.metrics import labelled_evaluation, labelled_retrieval

    feats = np.array([[1, 0], [0, 1], [0.9, 0.1], [0.1, 0.9]], np.float32)
    labels = [(1, 1), (2, 1), (1, 2), (2, 2)]
    r = labelled_retrieval(feats, labels)
    assert r["rank1"] == 1.0 and r["mAP"] == 1.0 and (r["queries"], r["gallery"]) == (4, 4)  # both directions
    # swap the gallery rows' identities: every query now ranks the wrong person first
    swapped = labelled_retrieval(feats, [(1, 1), (2, 1), (2, 2), (1, 2)])
    assert swapped["rank1"] == 0.0 and swapped["mAP"] == 0.5
    # one direction wrong, the other right: pooled over the 4 queries, per query
    feats3 = np.array([[1, 0], [0, 1], [0.9, 0.1], [0.1, 0.9], [0.6, 0.4]], np.float32)
    res = labelled_evaluation(feats3, [(1, 1), (2, 1), (1, 2), (2, 2), (2, 3)])
    # camera 3's crop (id 2) is nearer id 1's crops: its query misses, the others hit
    assert res["num_valid_queries"] == 5 and res["query_ids"].tolist() == [1, 2, 1, 2, 2]
    assert res["rank1_hits"].tolist() == [True, True, True, True, False] and res["rank1"] == 0.8
    assert labelled_retrieval(feats, [(1, 1)] * 4) is None  # one camera: no protocol
    assert labelled_retrieval(feats, [(1, 1), (2, 1), (3, 2), (4, 2)]) is None  # no valid match


def test_rank1_hits_are_the_queries_whose_first_valid_match_is_correct():
    from edgereid.evaluation.metrics import evaluate

    # 3 queries (ids 1, 2, 3, camera 1) against 4 gallery items (camera 2); rows are distances
    d = np.array([[0.1, 0.5, 0.9, 0.9], [0.1, 0.5, 0.9, 0.9], [0.9, 0.9, 0.9, 0.1]])
    res = evaluate(d, np.array([1, 2, 3]), np.array([1, 2, 3, 3]), np.array([1, 1, 1]), np.array([2, 2, 2, 2]))
    assert res["rank1_hits"].tolist() == [True, False, True]
    assert res["query_ids"].tolist() == [1, 2, 3]
    assert res["rank1"] == pytest.approx(res["rank1_hits"].mean())


def test_paired_bootstrap_interval_matches_the_binomial_spread():
    from edgereid.evaluation.metrics import paired_bootstrap_ci

    rng = np.random.default_rng(5)
    ref = np.ones(400, bool)
    other = ref.copy()
    other[rng.choice(400, 40, replace=False)] = False  # 40 of 400 queries lost: loss 0.10
    lo, hi = paired_bootstrap_ci(ref, other)
    sd = np.sqrt(0.1 * 0.9 / 400)  # normal approximation of the loss's spread
    assert lo < 0.1 < hi and lo > 0  # a real loss is told apart from none
    assert hi - lo == pytest.approx(2 * 1.96 * sd, rel=0.15)
    # losses and gains that cancel: the interval straddles 0
    other = ref.astype(float)
    other[:20] = 0
    base = other.copy()
    base[:20], base[20:40] = 1, 0
    lo, hi = paired_bootstrap_ci(base, other)
    assert lo < 0 < hi
    assert paired_bootstrap_ci(ref, other) == paired_bootstrap_ci(ref, other)  # fixed seed: reproducible
    with pytest.raises(InputError):
        paired_bootstrap_ci(np.ones(3), np.ones((3, 1)))


def test_identity_bootstrap_widens_the_interval_for_views_that_fail_together():
    from edgereid.evaluation.metrics import paired_bootstrap_ci

    # 50 identities x 8 views; 5 identities lose all 8 views: loss 0.10, carried by 5 clusters
    ids = np.repeat(np.arange(50), 8)
    ref = np.ones(400, bool)
    other = ref.copy()
    other[ids < 5] = False
    plain = paired_bootstrap_ci(ref, other)
    clustered = paired_bootstrap_ci(ref, other, groups=ids)
    sd = np.sqrt(0.1 * 0.9 / 50)  # what 50 independent draws (identities) allow
    assert clustered[1] - clustered[0] == pytest.approx(2 * 1.96 * sd, rel=0.2)
    assert clustered[1] - clustered[0] > 2 * (plain[1] - plain[0])  # ~sqrt(8) wider
    # one query per group: exactly the plain bootstrap (same draws)
    assert paired_bootstrap_ci(ref, other, groups=np.arange(400)) == plain
    with pytest.raises(InputError):
        paired_bootstrap_ci(ref, other, groups=ids[:10])
