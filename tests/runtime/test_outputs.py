"""Outputs: JSON lines on stdout / file, UDP datagrams, the Twist mapping; send never raises."""

from __future__ import annotations

import enum
import json
import socket

import numpy as np
import pytest

from edgereid.errors import InputError, MissingDependencyError
from edgereid.runtime.outputs import (
    JsonLinesOutput,
    Ros2TwistOutput,
    open_output,
    parse_udp,
    to_json_line,
    twist_setpoints,
)


class State(enum.Enum):
    LOCKED = "locked"


def message(seq=0, state="LOCKED", linear=0.5, angular=-0.2, stop=False):
    return {
        "frame": seq, "seq": seq, "t": 1700000000.25, "state": state,
        "target": {"box": np.array([10.0, 20.0, 110.0, 320.0], np.float32), "similarity": np.float32(0.81),
                   "track_id": np.int64(3)},
        "command": {"linear_x": linear, "angular_z": angular, "stop": stop},
        "latency_ms": {"detect": 12.5, "total": 30.0},
    }


def test_json_line_is_strict_json_with_numpy_and_nan():
    msg = message()
    msg["target"]["similarity"] = float("nan")
    msg["state"] = State.LOCKED
    line = to_json_line(msg)
    assert "\n" not in line and "NaN" not in line
    back = json.loads(line)
    assert back["target"] == {"box": [10.0, 20.0, 110.0, 320.0], "similarity": None, "track_id": 3}
    assert back["state"] == "LOCKED" and back["command"]["stop"] is False


@pytest.mark.parametrize("spec", [None, "-", "stdout"])
def test_stdout_output(capsys, spec):
    with open_output(spec) as out:
        out.send(message(0))
        out.send(message(1))
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(x)["seq"] for x in lines] == [0, 1]
    assert out.sent == 2 and out.errors == 0


def test_file_output_appends_and_flushes_each_line(tmp_path):
    path = tmp_path / "follow.jsonl"
    path.write_text('{"seq":-1}\n')
    out = open_output(str(path))
    out.send(message(0))
    assert json.loads(path.read_text().splitlines()[1])["seq"] == 0  # flushed before close
    out.send(message(1))
    out.close()
    assert [json.loads(x)["seq"] for x in path.read_text().splitlines()] == [-1, 0, 1]


def test_file_output_in_missing_folder(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        open_output(str(tmp_path / "nope" / "follow.jsonl"))


def test_udp_output_one_datagram_per_message():
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(2.0)
    port = rx.getsockname()[1]
    try:
        with open_output(f"udp://127.0.0.1:{port}") as out:
            for i in range(3):
                out.send(message(i))
        got = [json.loads(rx.recv(65536).decode()) for _ in range(3)]
    finally:
        rx.close()
    assert [g["seq"] for g in got] == [0, 1, 2]
    assert got[0]["command"] == {"linear_x": 0.5, "angular_z": -0.2, "stop": False}


@pytest.mark.parametrize("spec, match", [
    ("udp://no-such-host.invalid:5005", "Cannot resolve"),
    ("udp://127.0.0.1", "Expected udp://host:port"),
    ("udp://127.0.0.1:0", "port must be"),
    ("tcp://127.0.0.1:5005", "Unknown output"),
])
def test_bad_output_specs(spec, match):
    with pytest.raises(InputError, match=match):
        open_output(spec)


def test_parse_udp_ipv6():
    assert parse_udp("udp://[::1]:9000") == ("::1", 9000)


def test_send_never_raises_and_counts_errors(caplog):
    class Broken:
        def write(self, text):
            raise OSError("disk full")

        def flush(self):
            pass

    out = JsonLinesOutput(Broken(), "broken")
    for i in range(3):
        out.send(message(i))  # must not raise
    assert out.errors == 3 and out.sent == 0 and "disk full" in out.last_error
    assert "send failed" in caplog.text
    unserialisable = message()
    unserialisable["extra"] = object()
    out2 = JsonLinesOutput(Broken(), "x")
    out2.send(unserialisable)
    assert out2.errors == 1
    out2.close()
    out2.send(message())
    assert out2.errors == 2 and "closed" in out2.last_error


def test_udp_oversize_message_is_counted_not_raised():
    out = open_output("udp://127.0.0.1:9")
    big = message()
    big["blob"] = "x" * 70000
    out.send(big)
    assert out.errors == 1 and "exceeds one UDP datagram" in out.last_error
    out.close()


@pytest.mark.parametrize("msg, expected", [
    (message(), (0.5, -0.2)),
    (message(state="LOST"), (0.0, 0.0)),
    (message(state="SEARCHING", linear=0.0, angular=0.0), (0.0, 0.0)),
    (message(stop=True), (0.0, 0.0)),
    (message(linear=float("nan")), (0.0, 0.0)),
    ({"state": "LOCKED", "command": None}, (0.0, 0.0)),
    ({"state": "LOCKED", "command": {"linear_x": 1.0}}, (0.0, 0.0)),
    ({**message(), "state": State.LOCKED}, (0.5, -0.2)),
])
def test_twist_setpoints_zero_unless_locked(msg, expected):
    assert twist_setpoints(msg) == pytest.approx(expected)


def test_ros2_output_needs_rclpy():
    try:
        import rclpy  # noqa: F401
    except ImportError:
        with pytest.raises(MissingDependencyError, match="rclpy"):
            Ros2TwistOutput()
        with pytest.raises(MissingDependencyError, match="source your ROS 2"):
            open_output("ros2:/cmd_vel")
    else:
        pytest.skip("rclpy is installed here; the publisher is exercised on the car")


def test_ros2_output_publishes_twists_with_a_stand_in_rclpy(monkeypatch):
    """rclpy is not installable here: a stand-in with rclpy's call shapes checks our side."""
    import sys
    import types

    published, events = [], []

    class Vector3:
        def __init__(self):
            self.x = self.y = self.z = 0.0

    class Twist:
        def __init__(self):
            self.linear, self.angular = Vector3(), Vector3()

    class Node:
        def create_publisher(self, msg_type, topic, depth):
            events.append(("publisher", msg_type.__name__, topic, depth))
            return types.SimpleNamespace(publish=published.append)

        def destroy_node(self):
            events.append(("destroy",))

    rclpy = types.ModuleType("rclpy")
    rclpy.ok = lambda: False
    rclpy.init = lambda: events.append(("init",))
    rclpy.shutdown = lambda: events.append(("shutdown",))
    rclpy.create_node = lambda name: events.append(("node", name)) or Node()
    geometry_msgs = types.ModuleType("geometry_msgs")
    msg = types.ModuleType("geometry_msgs.msg")
    msg.Twist = Twist
    geometry_msgs.msg = msg
    monkeypatch.setitem(sys.modules, "rclpy", rclpy)
    monkeypatch.setitem(sys.modules, "geometry_msgs", geometry_msgs)
    monkeypatch.setitem(sys.modules, "geometry_msgs.msg", msg)

    with open_output("ros2:/car/cmd_vel") as out:
        out.send(message(linear=0.7, angular=0.1))
        out.send(message(state="LOST", linear=0.7, angular=0.1))
    assert [(t.linear.x, t.angular.z) for t in published] == [(0.7, 0.1), (0.0, 0.0), (0.0, 0.0)]
    assert ("publisher", "Twist", "/car/cmd_vel", 10) in events
    assert events[0] == ("init",) and events[-2:] == [("destroy",), ("shutdown",)]
