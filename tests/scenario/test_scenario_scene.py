"""Scene rendering: geometry, drawing order, visibility, determinism (solid-colour crops, no assets)."""

from __future__ import annotations

import numpy as np
import pytest

from edgereid.scenario.scene import Actor, Scene


def crop(colour, h=128, w=48):
    return np.full((h, w, 3), colour, np.uint8)


def test_actor_box_follows_its_path_and_keeps_the_crop_aspect():
    a = Actor("target", [(0, crop((0, 0, 255)))], [(0, 0.5, 0.5), (10, 0.7, 0.25)])
    scene = Scene("s", [a], 11, width=640, height=360)
    box = scene.box(a, 0)
    assert box[3] - box[1] == pytest.approx(180)
    assert box[2] - box[0] == pytest.approx(180 * 48 / 128)
    assert (box[0] + box[2]) / 2 == pytest.approx(320)
    mid = scene.box(a, 5)
    assert (mid[0] + mid[2]) / 2 == pytest.approx(0.6 * 640)
    assert mid[3] - mid[1] == pytest.approx(0.375 * 360)
    assert scene.box(a, 11) is None


def test_nearer_person_is_drawn_over_and_hides_the_farther_one():
    far = Actor("target", [(0, crop((0, 0, 255)))], [(0, 0.5, 0.4), (5, 0.5, 0.4)])
    near = Actor("near", [(0, crop((255, 0, 0)))], [(0, 0.5, 0.9), (5, 0.5, 0.9)])
    image, truth = Scene("s", [far, near], 6).render(2)
    assert truth.visibility_of("target") == pytest.approx(0.0)
    assert truth.visibility_of("near") == pytest.approx(1.0)
    x1, y1, x2, y2 = (int(v) for v in truth.box_of("near"))
    assert (image[(y1 + y2) // 2, (x1 + x2) // 2] == (255, 0, 0)).all()


def test_pillar_occludes_and_views_switch_by_frame():
    a = Actor("target", [(0, crop((0, 0, 255))), (3, crop((0, 255, 0)))], [(0, 0.2, 0.5), (10, 0.8, 0.5)])
    scene = Scene("s", [a], 11, occluders=[(0.4, 0.0, 0.6, 1.0)])
    _, first = scene.render(0)
    _, middle = scene.render(5)
    assert first.visibility_of("target") == pytest.approx(1.0)
    assert middle.visibility_of("target") == pytest.approx(0.0)
    image, truth = scene.render(9)
    x1, y1, x2, y2 = (int(v) for v in truth.box_of("target"))
    assert (image[(y1 + y2) // 2, (x1 + x2) // 2] == (0, 255, 0)).all()
    assert truth.visibility_of("nobody") == 0.0


def test_rendering_is_deterministic():
    a = Actor("target", [(0, crop((10, 20, 30)))], [(0, 0.5, 0.6), (4, 0.5, 0.6)])
    one, _ = Scene("s", [a], 5, seed=4).render(1)
    two, _ = Scene("s", [a], 5, seed=4).render(1)
    three, _ = Scene("s", [a], 5, seed=5).render(1)
    assert np.array_equal(one, two)
    assert not np.array_equal(one, three)
