"""Constant-velocity Kalman filter over (cx, cy, aspect, height), as in ByteTrack / SORT.

State x = [cx, cy, a, h, vcx, vcy, va, vh] (pixels, pixels/frame; a = w / h). Process and
measurement noise scale with the box height so near (large) and far (small) people are
treated alike. Plain numpy, no filterpy (which pulls scipy and matplotlib onto the car).
"""

from __future__ import annotations

import numpy as np

_STD_POS = 1.0 / 20.0
_STD_VEL = 1.0 / 160.0


class KalmanXYAH:
    """One filter per track; ``mean`` (8,) and ``covariance`` (8, 8) live on the instance."""

    def __init__(self, xyah: np.ndarray) -> None:
        self._motion = np.eye(8)
        self._motion[:4, 4:] = np.eye(4)
        self._observe = np.eye(4, 8)
        h = float(xyah[3])
        self.mean = np.r_[np.asarray(xyah, np.float64), np.zeros(4)]
        std = [2 * _STD_POS * h, 2 * _STD_POS * h, 1e-2, 2 * _STD_POS * h,
               10 * _STD_VEL * h, 10 * _STD_VEL * h, 1e-5, 10 * _STD_VEL * h]
        self.covariance = np.diag(np.square(std))

    def predict(self) -> np.ndarray:
        """Advance one frame; returns the predicted (cx, cy, a, h)."""
        h = float(self.mean[3])
        std = [_STD_POS * h, _STD_POS * h, 1e-2, _STD_POS * h, _STD_VEL * h, _STD_VEL * h, 1e-5, _STD_VEL * h]
        self.mean = self._motion @ self.mean
        self.covariance = self._motion @ self.covariance @ self._motion.T + np.diag(np.square(std))
        self.mean[3] = max(self.mean[3], 1.0)
        return self.mean[:4].copy()

    def update(self, xyah: np.ndarray) -> np.ndarray:
        """Correct with a measured (cx, cy, a, h); returns the corrected (cx, cy, a, h)."""
        h = float(self.mean[3])
        r = np.diag(np.square([_STD_POS * h, _STD_POS * h, 1e-1, _STD_POS * h]))
        s = self._observe @ self.covariance @ self._observe.T + r
        gain = np.linalg.solve(s, (self.covariance @ self._observe.T).T).T
        innovation = np.asarray(xyah, np.float64) - self._observe @ self.mean
        self.mean = self.mean + gain @ innovation
        self.covariance = self.covariance - gain @ s @ gain.T
        return self.mean[:4].copy()


def xyxy_to_xyah(box: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = (float(v) for v in box)
    h = max(y2 - y1, 1e-6)
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / h, h])


def xyah_to_xyxy(xyah: np.ndarray) -> np.ndarray:
    cx, cy, a, h = (float(v) for v in xyah)
    w = a * h
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], np.float32)
