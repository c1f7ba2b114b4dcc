"""Gallery: bounded, diverse, pluggable similarity, refuses bad vectors."""

from __future__ import annotations

import numpy as np
import pytest

from edgereid.errors import InputError
from edgereid.runtime.gallery import Gallery, get_similarity_by_name, max_cosine, mean_cosine, top2_cosine


def unit(*values):
    v = np.asarray(values, np.float32)
    return v / np.linalg.norm(v)


def test_gallery_is_bounded_and_drops_the_most_redundant_view():
    g = Gallery(max_size=3)
    a, b, c = unit(1, 0, 0), unit(0, 1, 0), unit(0, 0, 1)
    near_a = unit(1, 0.05, 0)
    for v in (a, near_a, b):
        assert g.add(v)
    assert g.add(c)  # full: a or near_a (the redundant pair) makes room for the new view
    assert len(g) == 3
    sims = g.embeddings @ np.stack([a, b, c]).T
    assert np.allclose(sims.max(axis=0), [1.0, 1.0, 1.0], atol=0.01)


def test_a_new_vector_that_is_itself_the_most_redundant_is_not_added():
    g = Gallery(max_size=2)
    g.add(unit(1, 0))
    g.add(unit(0, 1))
    before = g.embeddings
    assert not g.add(unit(1, 0.01))
    assert np.array_equal(g.embeddings, before)


def test_nan_and_zero_vectors_are_refused_and_nan_queries_give_nan():
    g = Gallery(max_size=4)
    assert not g.add(np.array([np.nan, 1.0], np.float32))
    assert not g.add(np.zeros(2, np.float32))
    assert len(g) == 0
    assert np.isnan(g.similarity(np.array([[1.0, 0.0]], np.float32))).all()  # empty gallery
    g.add(unit(1, 0))
    sims = g.similarity(np.array([[1.0, 0.0], [np.nan, np.nan], [0.0, 1.0]], np.float32))
    assert sims[0] == pytest.approx(1.0)
    assert np.isnan(sims[1])
    assert sims[2] == pytest.approx(0.0)


def test_dimension_mismatch_is_a_clear_error():
    g = Gallery()
    g.add(unit(1, 0, 0))
    with pytest.raises(InputError, match="dims"):
        g.add(unit(1, 0))


def test_similarity_functions_on_a_worked_example():
    q = np.array([[1.0, 0.0]], np.float32)
    gal = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], np.float32)
    assert max_cosine(q, gal)[0] == pytest.approx(1.0)
    assert mean_cosine(q, gal)[0] == pytest.approx((1.0 + 0.0 + 0.6) / 3)
    assert top2_cosine(q, gal)[0] == pytest.approx(0.8)


def test_similarity_registry_lists_valid_names_and_accepts_a_callable():
    with pytest.raises(InputError, match="max_cosine"):
        get_similarity_by_name("euclid")
    g = Gallery(similarity=lambda q, gal: np.full(len(q), 0.5, np.float32))
    g.add(unit(1, 0))
    assert g.similarity(np.array([[0.0, 1.0]], np.float32))[0] == pytest.approx(0.5)
