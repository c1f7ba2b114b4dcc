"""The benchmark's scenarios, built from PKU-Reid crops (``<pid>/<cam>_<orientation>.png``).

PKU-Reid has 8 orientations per camera; 2-4 are back views (the followed person walks away
from the car), 1 and 5 side views (people crossing), 6-8 front views. The target is drawn
with camera-1 back views; in the ``pillar_new_look`` stress case it comes back from behind the
pillar in camera-2 back views (another camera, other light). Distractors use other
identities; "alike" distractors are chosen by the caller (e.g. the identity whose embedding is
nearest the target's).
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from edgereid.errors import InputError
from edgereid.lazy import require
from edgereid.scenario.scene import Actor, Scene, sway

BACK = (3, 2, 4)
SIDE_RIGHT = (1, 5)


def load_views(pku_dir: str | Path, identity: str, camera: int, orientations: Sequence[int]) -> List[np.ndarray]:
    """BGR crops of one identity, one camera, the given orientations (in that order)."""
    cv2 = require("cv2", "reading PKU-Reid crops")
    crops = []
    for o in orientations:
        path = Path(pku_dir) / identity / f"{camera:02d}_{o}.png"
        image = cv2.imread(str(path))
        if image is None:
            raise InputError(f"cannot read PKU-Reid crop {path} (expected <pku_dir>/<pid>/<cam>_<orientation>.png).")
        crops.append(image)
    return crops


def identities(pku_dir: str | Path) -> List[str]:
    return sorted(p.name for p in Path(pku_dir).iterdir() if p.is_dir())


def _target(pku_dir: Path, pid: str, frames: int, path: List[Tuple[int, float, float]],
            second_look_from: int | None = None, period: int = 15) -> Actor:
    """The followed person: cycling through camera-1 back views, camera 2 after ``second_look_from``."""
    cam1 = load_views(pku_dir, pid, 1, BACK)
    views = [(f, cam1[(f // period) % len(cam1)]) for f in range(0, frames, period)]
    if second_look_from is not None:
        cam2 = load_views(pku_dir, pid, 2, BACK)
        views = [v for v in views if v[0] < second_look_from]
        views += [(f, cam2[(i % len(cam2))]) for i, f in enumerate(range(second_look_from, frames, period))]
    frames_ = [p[0] for p in path]
    cx = sway(frames_, [p[1] for p in path])
    return Actor("target", views, [(f, c, p[2]) for f, c, p in zip(frames_, cx, path)], pid)


def _walker(pku_dir: Path, name: str, pid: str, path: List[Tuple[int, float, float]],
            orientations: Sequence[int] = SIDE_RIGHT, camera: int = 1) -> Actor:
    crops = load_views(pku_dir, pid, camera, orientations)
    return Actor(name, [(0, crops[0])] + [(path[0][0] + 6 * (i + 1), c) for i, c in enumerate(crops[1:])],
                 path, pid)


def _walk_away(frames: int, start_h: float = 0.75, end_h: float = 0.45, cx0: float = 0.5,
               cx1: float = 0.55) -> List[Tuple[int, float, float]]:
    return [(0, cx0, start_h), (frames - 1, cx1, end_h)]


def build_scenarios(pku_dir: str | Path, target: str, different: Sequence[str], alike: str,
                    frames: int = 120) -> Dict[str, Scene]:
    """The benchmark set, keyed by name.

    Args:
        pku_dir: PKU-Reid root.
        target: identity followed.
        different: at least two identities that look different from the target.
        alike: an identity that looks like the target (the hardest distractor).
        frames: frames per scenario (10 fps: 120 frames = 12 s).
    """
    pku_dir = Path(pku_dir)
    if len(different) < 2:
        raise InputError(f"need two 'different' distractor identities, received {list(different)}.")
    d1, d2 = different[0], different[1]
    n = frames
    scenes: Dict[str, Scene] = {}

    scenes["walk_away"] = Scene("walk_away", [_target(pku_dir, target, n, _walk_away(n))], n,
                                description="target alone walks away (shrinks); baseline")

    def crossing(name: str, near: str, far: str, desc: str) -> Scene:
        actors = [
            _target(pku_dir, target, n, _walk_away(n)),
            _walker(pku_dir, "near", near, [(n // 3, -0.2, 0.85), (n // 3 + 40, 1.2, 0.85)]),
            _walker(pku_dir, "far", far, [(n // 2, 1.15, 0.42), (n // 2 + 50, -0.15, 0.42)], (5, 1)),
        ]
        return Scene(name, actors, n, seed=1, description=desc)

    scenes["cross_different"] = crossing("cross_different", d1, d2,
                                         "two different-looking people cross, one in front (brief full occlusion)")
    scenes["cross_alike"] = crossing("cross_alike", alike, d2, "a look-alike crosses in front, another behind")

    def standing_occluder(name: str, other: str, desc: str) -> Scene:
        t0 = n // 3
        actors = [
            _target(pku_dir, target, n, _walk_away(n)),
            _walker(pku_dir, "blocker", other,
                    [(t0, -0.2, 0.9), (t0 + 12, 0.51, 0.9), (t0 + 28, 0.53, 0.9), (t0 + 45, 1.25, 0.9)]),
        ]
        return Scene(name, actors, n, seed=2, description=desc)

    scenes["occlusion_different"] = standing_occluder(
        "occlusion_different", d1, "a different-looking person stops in front of the target (~1.5 s hidden)")
    scenes["occlusion_alike"] = standing_occluder(
        "occlusion_alike", alike, "a look-alike stops in front of the target (~1.5 s hidden)")

    t_in = n // 4

    def pillar(name: str, new_look: bool, desc: str) -> Scene:
        path = [(0, 0.3, 0.7), (t_in, 0.33, 0.62), (t_in + 60, 0.8, 0.5), (n - 1, 0.65, 0.45)]
        actors = [
            _target(pku_dir, target, n, path, second_look_from=t_in + 25 if new_look else None),
            _walker(pku_dir, "passer", d2, [(t_in + 10, 1.2, 0.55), (t_in + 70, -0.2, 0.55)], (5, 1)),
        ]
        return Scene(name, actors, n, occluders=[(0.43, 0.05, 0.62, 1.0)], seed=3, description=desc)

    # What real footage showed (issue: the lock drove after strangers once the target had left):
    # the target walks away and leaves at the side; then a stranger walks in from the bottom edge
    # (from behind the car: first only head and shoulders, cut by the image border) and walks away
    # in front, and a look-alike enters at the left edge.
    t_out = n // 2
    leave = [(0, 0.5, 0.7), (t_out - 20, 0.62, 0.5), (t_out, 1.25, 0.45)]
    scenes["left_then_strangers"] = Scene("left_then_strangers", [
        _target(pku_dir, target, n, leave),
        _walker(pku_dir, "from_behind", d1, [(t_out + 5, 0.5, 1.5), (t_out + 15, 0.48, 0.95), (n - 1, 0.45, 0.5)],
                BACK),
        _walker(pku_dir, "edge_alike", alike, [(t_out + 20, -0.15, 0.55), (n - 1, 0.35, 0.5)], BACK),
    ], n, seed=4, description="target leaves at the side; a stranger walks in from the bottom edge (cut-off "
                              "crops) and away in front, a look-alike enters at the left edge")
    # One track handed between two people: a look-alike walks right beside the target (boxes
    # overlapping), then carries on along the target's path while the target turns off behind.
    side = [(0, 0.58, 0.7), (n // 3, 0.52, 0.62), (n // 3 + 30, 0.5, 0.55), (n - 1, 0.45, 0.45)]
    turn = [(0, 0.5, 0.72), (n // 3, 0.5, 0.62), (n // 3 + 20, 0.7, 0.56), (n // 3 + 45, 1.25, 0.5)]
    scenes["handoff_alike"] = Scene("handoff_alike", [
        _target(pku_dir, target, n, turn),
        _walker(pku_dir, "beside_alike", alike, side, BACK),
    ], n, seed=5, description="a look-alike walks beside the target and carries on along its path while the "
                              "target turns off: the tracker may hand the target's track to them")

    scenes["pillar"] = pillar("pillar", False, "target walks behind a pillar (~2 s hidden) while a different "
                              "person passes")
    scenes["pillar_new_look"] = pillar("pillar_new_look", True, "stress: as pillar, but the target comes back "
                                       "in camera-2 crops (other camera, other light)")
    return scenes


def rank_by_likeness(pku_dir: str | Path, embedder: object, target: str,
                     candidates: Sequence[str] | None = None) -> List[Tuple[str, float]]:
    """Other identities sorted from most to least alike the target (mean cosine of back views).

    Uses ``embedder.embed(crops) -> (N, D)`` L2-normalised (an activated ``EmbedderRunner``).
    """
    pku_dir = Path(pku_dir)
    ids = [i for i in (candidates or identities(pku_dir)) if i != target]
    ref = embedder.embed(load_views(pku_dir, target, 1, BACK)).mean(axis=0)  # type: ignore[attr-defined]
    ref = ref / np.linalg.norm(ref)
    scored = []
    for pid in ids:
        feats = embedder.embed(load_views(pku_dir, pid, 1, BACK + SIDE_RIGHT))  # type: ignore[attr-defined]
        scored.append((pid, float((feats @ ref).mean())))
    return sorted(scored, key=lambda item: -item[1])
