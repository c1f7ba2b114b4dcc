"""Command mapping: yaw from offset, speed from height, limits, smoothing, STOP."""

from __future__ import annotations

import pytest

from edgereid.runtime.command import CommandMapper, FollowCommand
from edgereid.runtime.config import CommandConfig

W = 640
RAW = CommandConfig(smoothing=0.0, max_accel=100.0, max_yaw_accel=100.0)


def box(cx, h, bottom=400):
    return [cx - h / 6, bottom - h, cx + h / 6, bottom]


@pytest.mark.parametrize(
    "cx, expected_sign",
    [(W / 2, 0), (W / 2 + 10, 0), (W * 0.75, -1), (W * 0.25, +1)],  # centre, dead band, right, left
)
def test_yaw_turns_toward_the_target(cx, expected_sign):
    linear, angular = CommandMapper(RAW).raw_setpoints(box(cx, 200), W, 200)
    assert linear == 0.0
    assert (angular > 0) - (angular < 0) == expected_sign
    if expected_sign:
        assert abs(angular) == pytest.approx(0.5 * RAW.yaw_gain)


def test_speed_from_height_against_enrollment_height_with_limits():
    mapper = CommandMapper(RAW)
    assert mapper.raw_setpoints(box(W / 2, 160), W, 200)[0] == pytest.approx(1.5 * (200 / 160 - 1))
    assert mapper.raw_setpoints(box(W / 2, 50), W, 200)[0] == pytest.approx(RAW.max_speed)  # clipped
    assert mapper.raw_setpoints(box(W / 2, 260), W, 200)[0] == 0.0  # closer: stop, no reverse
    reverse = CommandMapper(CommandConfig(smoothing=0.0, allow_reverse=True))
    assert reverse.raw_setpoints(box(W / 2, 260), W, 200)[0] < 0
    assert mapper.raw_setpoints(box(W / 2, 160), W, None)[0] == 0.0  # no reference height yet


def test_yaw_rate_is_limited():
    cfg = CommandConfig(yaw_gain=5.0, max_yaw_rate=0.3, smoothing=0.0)
    assert CommandMapper(cfg).raw_setpoints(box(W, 200), W, 200)[1] == pytest.approx(-0.3)


def test_acceleration_limit_and_smoothing_ramp_up_and_stop_is_immediate():
    cfg = CommandConfig(max_accel=0.5, smoothing=0.0, max_speed=1.0)
    mapper = CommandMapper(cfg)
    speeds = [mapper.follow(box(W / 2, 50), W, 200, t=0.1 * i).linear_x for i in range(1, 40)]
    steps = [b - a for a, b in zip(speeds, speeds[1:])]
    assert max(steps) <= 0.5 * 0.1 + 1e-6  # 0.5 m/s^2 at 10 Hz
    assert speeds[-1] == pytest.approx(1.0)
    stop = mapper.stop("target lost")
    assert (stop.linear_x, stop.angular_z, stop.stop, stop.reason) == (0.0, 0.0, True, "target lost")
    after = mapper.follow(box(W / 2, 50), W, 200, t=10.0)
    assert 0 < after.linear_x <= 0.05 + 1e-6  # ramps up again from zero
    smooth = CommandMapper(CommandConfig(smoothing=0.5, max_accel=100.0, max_yaw_accel=100.0))
    first = smooth.follow(box(W / 2, 100), W, 200, t=0.0).linear_x
    assert first == pytest.approx(0.5 * 1.0)  # half of the (clipped) raw 1.0 m/s


def test_command_dict_is_the_documented_shape():
    d = FollowCommand(0.123456, -0.5, False).to_dict()
    assert d == {"linear_x": 0.1235, "angular_z": -0.5, "stop": False}
    assert FollowCommand.stop_command("x").to_dict() == {"linear_x": 0.0, "angular_z": 0.0, "stop": True}
