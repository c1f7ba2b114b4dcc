"""Synthetic follow scenes: real person crops composited onto a background, with ground truth.

A :class:`Scene` is a list of :class:`Actor` (the target and distractors) moving along
piecewise-linear paths, plus static occluders (a pillar, a parked van). Each actor is drawn as
its crop scaled to its height; nearer (taller) actors are drawn over farther ones, occluders
over everyone. The camera is the car's: a person walking away shrinks. ``scene.render(i)``
returns the frame and its :class:`GroundTruth` (full box and visible fraction per actor).
Frames are made on demand, so a scene costs no memory until rendered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np

from edgereid.lazy import require

# (frame, centre x as a fraction of the width, box height as a fraction of the image height)
Waypoint = Tuple[int, float, float]


@dataclass
class Actor:
    """One person in the scene.

    Attributes:
        name: unique name; the followed person must be called ``"target"``.
        views: (first frame, BGR crop) pairs; the crop in use is the last one whose first frame
            is <= the current frame (a person turning, or seen again in another camera's look).
        path: waypoints, linearly interpolated; the actor is absent before the first and after
            the last waypoint.
        identity: the dataset identity of the crops (for reports).
    """

    name: str
    views: List[Tuple[int, np.ndarray]]
    path: List[Waypoint]
    identity: str = ""

    def at(self, frame: int) -> Optional[Tuple[float, float]]:
        """(centre x fraction, height fraction) at ``frame``, or None when absent."""
        frames = [p[0] for p in self.path]
        if frame < frames[0] or frame > frames[-1]:
            return None
        cx = float(np.interp(frame, frames, [p[1] for p in self.path]))
        h = float(np.interp(frame, frames, [p[2] for p in self.path]))
        return cx, h

    def view(self, frame: int) -> np.ndarray:
        crop = self.views[0][1]
        for first, image in self.views:
            if first <= frame:
                crop = image
        return crop


@dataclass
class GroundTruth:
    """Per-frame truth. ``boxes`` (k, 4) xyxy pixels of the full (unoccluded) person, clipped to
    the image; ``visible`` (k,) fraction of that box not covered; ``names`` the actors."""

    frame: int
    names: List[str]
    boxes: np.ndarray
    visible: np.ndarray

    def box_of(self, name: str) -> Optional[np.ndarray]:
        return self.boxes[self.names.index(name)] if name in self.names else None

    def visibility_of(self, name: str) -> float:
        return float(self.visible[self.names.index(name)]) if name in self.names else 0.0


@dataclass
class Scene:
    """A scenario: actors, occluders and frame geometry.

    Attributes:
        name: short id used in reports.
        actors: people; ``actors[i].name == "target"`` for the followed one.
        frames: number of frames.
        width, height: frame size in pixels.
        occluders: static rectangles as fractions (x1, y1, x2, y2) of the frame, drawn in front.
        seed: background texture seed.
        description: one line for reports.
    """

    name: str
    actors: List[Actor]
    frames: int
    width: int = 640
    height: int = 360
    occluders: List[Tuple[float, float, float, float]] = field(default_factory=list)
    seed: int = 0
    description: str = ""

    def __post_init__(self) -> None:
        self._background: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return self.frames

    def box(self, actor: Actor, frame: int) -> Optional[np.ndarray]:
        """Full xyxy box of ``actor`` at ``frame`` (may extend past the image), or None."""
        pos = actor.at(frame)
        if pos is None:
            return None
        cx, h_frac = pos
        crop = actor.view(frame)
        h = h_frac * self.height
        w = h * crop.shape[1] / crop.shape[0]
        foot = (0.42 + 0.55 * h_frac) * self.height  # perspective: nearer = lower and taller
        x = cx * self.width
        return np.array([x - w / 2, foot - h, x + w / 2, foot], np.float32)

    def render(self, frame: int) -> Tuple[np.ndarray, GroundTruth]:
        """(H, W, 3) uint8 BGR frame and its ground truth."""
        cv2 = require("cv2", "rendering follow scenes")
        image = self.background().copy()
        owner = np.full((self.height, self.width), -1, np.int16)
        present = [(i, a, self.box(a, frame)) for i, a in enumerate(self.actors)]
        present = [(i, a, b) for i, a, b in present if b is not None]
        present.sort(key=lambda item: item[2][3] - item[2][1])  # far (short) first
        for i, actor, box in present:
            x1, y1, x2, y2 = (int(round(float(v))) for v in box)
            if x2 - x1 < 2 or y2 - y1 < 2:
                continue
            patch = cv2.resize(actor.view(frame), (x2 - x1, y2 - y1), interpolation=cv2.INTER_LINEAR)
            cx1, cy1, cx2, cy2 = max(x1, 0), max(y1, 0), min(x2, self.width), min(y2, self.height)
            if cx2 <= cx1 or cy2 <= cy1:
                continue
            image[cy1:cy2, cx1:cx2] = patch[cy1 - y1 : cy2 - y1, cx1 - x1 : cx2 - x1]
            owner[cy1:cy2, cx1:cx2] = i
        for fx1, fy1, fx2, fy2 in self.occluders:
            x1, y1 = int(fx1 * self.width), int(fy1 * self.height)
            x2, y2 = int(fx2 * self.width), int(fy2 * self.height)
            image[y1:y2, x1:x2] = (70, 80, 90)
            cv2.rectangle(image, (x1, y1), (x2 - 1, y2 - 1), (40, 45, 50), 2)
            owner[y1:y2, x1:x2] = -2
        names, boxes, visible = [], [], []
        for i, actor, box in present:
            clipped = np.clip(box, [0, 0, 0, 0], [self.width, self.height, self.width, self.height])
            x1, y1, x2, y2 = (int(round(float(v))) for v in clipped)
            area = max(x2 - x1, 0) * max(y2 - y1, 0)
            if area == 0:
                continue
            names.append(actor.name)
            boxes.append(clipped)
            visible.append(float((owner[y1:y2, x1:x2] == i).sum()) / area)
        truth = GroundTruth(frame, names, np.asarray(boxes, np.float32).reshape(-1, 4),
                            np.asarray(visible, np.float32))
        return image, truth

    def __iter__(self) -> Iterator[Tuple[np.ndarray, GroundTruth]]:
        for i in range(self.frames):
            yield self.render(i)

    def background(self) -> np.ndarray:
        """A fixed street-like background: sky, façades, pavement with joints, mild noise."""
        if self._background is None:
            self._background = make_background(self.width, self.height, self.seed)
        return self._background


def make_background(width: int, height: int, seed: int = 0) -> np.ndarray:
    """(H, W, 3) uint8 BGR procedural background, deterministic for ``seed``."""
    rng = np.random.default_rng(seed)
    image = np.zeros((height, width, 3), np.uint8)
    horizon = int(0.42 * height)
    sky = np.linspace(235, 190, horizon)[:, None, None] * np.array([1.0, 0.95, 0.85])
    image[:horizon] = sky.astype(np.uint8)
    x = 0
    while x < width:  # façades
        w = int(rng.integers(width // 12, width // 5))
        top = int(rng.integers(int(0.05 * height), horizon - 10))
        colour = rng.integers(90, 200, 3)
        image[top:horizon, x : x + w] = colour
        for wy in range(top + 8, horizon - 8, 18):  # windows
            for wx in range(x + 6, x + w - 10, 16):
                image[wy : wy + 9, wx : wx + 8] = colour // 2
        x += w
    ground = np.linspace(150, 110, height - horizon)[:, None, None] * np.array([1.0, 1.0, 1.02])
    image[horizon:] = ground.astype(np.uint8)
    for row in range(horizon + 6, height, 14):  # pavement joints, denser near the horizon
        image[row : row + 1, :] = 95
    noise = rng.normal(0, 4, image.shape)
    return np.clip(image.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def sway(frames: Sequence[int], cx: Sequence[float], amplitude: float = 0.02, period: int = 30) -> List[float]:
    """Add a gentle side-to-side walk to centre-x waypoints (fractions)."""
    return [c + amplitude * float(np.sin(2 * np.pi * f / period)) for f, c in zip(frames, cx)]
