"""Follow command: the set-points the car receives each frame, and how a target box maps to them.

Conventions (ROS REP 103, ``geometry_msgs/Twist``): ``linear_x`` forward speed in m/s,
``angular_z`` yaw rate in rad/s, positive = turn left (counter-clockwise seen from above).

Mapping, while LOCKED:
  * yaw: the target centre's horizontal offset from the image centre, normalised to [-1, 1]
    (right = positive), with a dead band; ``angular_z = -yaw_gain * offset`` (person to the
    right -> turn right), limited to ``max_yaw_rate``.
  * speed: the target's box height against its height at enrollment. A person walking away
    shrinks, ``enroll_height / height - 1 > 0`` -> drive forward; closer than at enrollment ->
    stop (or reverse, only with ``allow_reverse``). ``linear_x = speed_gain * (ratio - 1)``,
    limited to ``max_speed``.
  * smoothing: exponential (``smoothing`` = weight of the previous set-point), then an
    acceleration limit per axis (``max_accel`` m/s², ``max_yaw_accel`` rad/s²) over the time
    since the previous command.

STOP is zero set-points at once, never ramped: whenever not LOCKED, the camera fails, a stage
fails or the frame is too old. The car's own controller brakes; after a STOP the set-points
ramp up again from zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

import numpy as np

from edgereid.runtime.config import CommandConfig


@dataclass
class FollowCommand:
    """Set-points of one frame. ``stop`` True means all set-points are zero; ``reason`` says why."""

    linear_x: float = 0.0
    angular_z: float = 0.0
    stop: bool = True
    reason: Optional[str] = None

    @classmethod
    def stop_command(cls, reason: str) -> FollowCommand:
        return cls(0.0, 0.0, True, reason)

    def to_dict(self) -> Dict[str, Any]:
        return {"linear_x": round(self.linear_x, 4), "angular_z": round(self.angular_z, 4), "stop": self.stop}


class CommandMapper:
    """Target box -> smoothed, limited set-points (knobs: ``follow_defaults.ini`` [command])."""

    def __init__(self, config: CommandConfig | None = None) -> None:
        self.config = config or CommandConfig()
        self._linear = 0.0
        self._angular = 0.0
        self._last_t: Optional[float] = None

    def stop(self, reason: str) -> FollowCommand:
        """Zero set-points now; the next follow command ramps up from zero."""
        self._linear = 0.0
        self._angular = 0.0
        self._last_t = None
        return FollowCommand.stop_command(reason)

    def raw_setpoints(self, box: np.ndarray, frame_width: int, enroll_height: float | None) -> tuple:
        """Unsmoothed, limited (linear_x m/s, angular_z rad/s) for an xyxy box."""
        cfg = self.config
        x1, y1, x2, y2 = (float(v) for v in box)
        half = frame_width / 2.0
        offset = float(np.clip(((x1 + x2) / 2.0 - half) / half, -1.0, 1.0))
        offset = 0.0 if abs(offset) < cfg.yaw_deadband else offset
        angular = float(np.clip(-cfg.yaw_gain * offset, -cfg.max_yaw_rate, cfg.max_yaw_rate))
        height = y2 - y1
        linear = 0.0
        if enroll_height and height > 0:
            error = enroll_height / height - 1.0
            error = 0.0 if abs(error) < cfg.speed_deadband else error
            low = -cfg.max_speed if cfg.allow_reverse else 0.0
            linear = float(np.clip(cfg.speed_gain * error, low, cfg.max_speed))
        return linear, angular

    def follow(self, box: np.ndarray, frame_width: int, enroll_height: float | None, t: float) -> FollowCommand:
        """Set-points toward the target at time ``t`` (seconds, monotonic)."""
        cfg = self.config
        linear, angular = self.raw_setpoints(box, frame_width, enroll_height)
        a = cfg.smoothing
        linear = a * self._linear + (1 - a) * linear
        angular = a * self._angular + (1 - a) * angular
        dt = 0.1 if self._last_t is None else max(t - self._last_t, 0.0)
        linear = _step_toward(self._linear, linear, cfg.max_accel * dt)
        angular = _step_toward(self._angular, angular, cfg.max_yaw_accel * dt)
        self._linear, self._angular, self._last_t = linear, angular, t
        return FollowCommand(linear, angular, False, None)


def _step_toward(current: float, target: float, max_step: float) -> float:
    return current + float(np.clip(target - current, -max_step, max_step))
