"""Where the follow messages go: ``open_output(spec) -> Output`` with ``send(message)``.

One message per processed frame, a dict with keys ``frame, seq, t, state, target, command,
latency_ms`` (schema in docs/runtime-perception.md). Transports:

    None, "-", "stdout"   JSON lines on stdout (diagnostics go to stderr, never here)
    a file path           JSON lines appended to the file, flushed per line
    udp://host:port       one JSON datagram per message (host resolved once, at open)
    ros2:/cmd_vel         geometry_msgs/Twist set-points (zero unless LOCKED), needs rclpy

plus :class:`Ros2TwistOutput`, a ``geometry_msgs/Twist`` publisher when rclpy is importable.
A running follow loop never crashes on its output: ``send`` logs the failure to stderr and
counts it in ``errors``; the receiver's heartbeat timeout then stops the car.
"""

from __future__ import annotations

import enum
import json
import logging
import math
import os
import socket
import sys
from typing import IO, Any, Dict, Tuple

import numpy as np

from edgereid.errors import InputError
from edgereid.lazy import require

log = logging.getLogger(__name__)

MAX_DATAGRAM = 65507  # largest UDP payload over IPv4


def to_jsonable(value: Any) -> Any:
    """Plain-JSON copy of ``value``: numpy scalars/arrays become numbers/lists, NaN/inf become None."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, enum.Enum):  # lock states
        return value.name
    return value


def to_json_line(message: Dict[str, Any]) -> str:
    """One compact JSON line (no trailing newline); strict JSON (no NaN)."""
    return json.dumps(to_jsonable(message), separators=(",", ":"), allow_nan=False)


class Output:
    """Base class: ``send(message)`` never raises; failures are logged and counted.

    Attributes:
        sent: messages delivered.
        errors: messages that failed.
        last_error: text of the latest failure, or None.
    """

    name = "output"

    def __init__(self) -> None:
        self.sent = 0
        self.errors = 0
        self.last_error: str | None = None
        self.closed = False

    def send(self, message: Dict[str, Any]) -> None:
        """Deliver one message; on any failure log it to stderr and count it."""
        if self.closed:
            self._fail("output is closed")
            return
        try:
            self.send_impl(message)
        except Exception as exc:  # a follow loop must keep running (and stopping) without its output
            self._fail(f"{type(exc).__name__}: {exc}")
        else:
            self.sent += 1

    def _fail(self, why: str) -> None:
        self.errors += 1
        self.last_error = why
        # the first few and then every 100th, so a dead receiver cannot flood stderr
        if self.errors <= 5 or self.errors % 100 == 0:
            log.error("%s: send failed (%d so far): %s", self.name, self.errors, why)

    def send_impl(self, message: Dict[str, Any]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.close_impl()

    def close_impl(self) -> None:
        """Release the transport."""

    def __enter__(self) -> Output:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class JsonLinesOutput(Output):
    """JSON lines to a text stream (stdout) or an appended file, flushed after every line."""

    def __init__(self, stream: IO[str], name: str, owns_stream: bool = False) -> None:
        super().__init__()
        self.stream, self.name, self.owns_stream = stream, name, owns_stream

    def send_impl(self, message: Dict[str, Any]) -> None:
        self.stream.write(to_json_line(message) + "\n")
        self.stream.flush()

    def close_impl(self) -> None:
        if self.owns_stream:
            self.stream.close()
        else:
            self.stream.flush()


class UdpOutput(Output):
    """One JSON datagram per message to ``host:port`` (resolved once, at construction).

    Raises:
        InputError: the host cannot be resolved or the port is invalid.
    """

    def __init__(self, host: str, port: int) -> None:
        super().__init__()
        self.name = f"udp://{host}:{port}"
        if not 0 < int(port) < 65536:
            raise InputError(f"UDP port must be 1..65535, received {port} in {self.name}.")
        try:
            infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_DGRAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise InputError(f"Cannot resolve the UDP output host {host!r} ({exc}). How to fix: use an IP "
                             "address or a name this machine can resolve, e.g. udp://192.168.1.10:5005.") from exc
        family, _, _, _, self.address = infos[0]
        self.sock = socket.socket(family, socket.SOCK_DGRAM)

    def send_impl(self, message: Dict[str, Any]) -> None:
        payload = to_json_line(message).encode("utf-8")
        if len(payload) > MAX_DATAGRAM:
            raise ValueError(f"message of {len(payload)} bytes exceeds one UDP datagram ({MAX_DATAGRAM})")
        self.sock.sendto(payload, self.address)

    def close_impl(self) -> None:
        self.sock.close()


def parse_udp(spec: str) -> Tuple[str, int]:
    """``udp://host:port`` (IPv6 as ``udp://[::1]:port``) -> (host, port)."""
    rest = spec[len("udp://"):]
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise InputError(f"Expected udp://host:port, received {spec!r}.")
    return host.strip("[]"), int(port)


def open_output(spec: str | None) -> Output:
    """The output for ``--output``: None/"-"/"stdout", a file path, ``udp://host:port``, or
    ``ros2:/topic`` (a ``geometry_msgs/Twist`` publisher, ``ros2:`` alone = ``/cmd_vel``).

    Raises:
        InputError: unresolvable UDP host, or a file that cannot be opened for appending.
        MissingDependencyError: ``ros2:`` without rclpy.
    """
    if spec is None or spec in ("-", "stdout"):
        return JsonLinesOutput(sys.stdout, "stdout")
    spec = str(spec)
    if spec.startswith("udp://"):
        host, port = parse_udp(spec)
        return UdpOutput(host, port)
    if spec.startswith("ros2:"):
        return Ros2TwistOutput(spec[len("ros2:"):] or "/cmd_vel")
    if "://" in spec:
        raise InputError(f"Unknown output {spec!r}; expected stdout ('-'), a file path, udp://host:port "
                         "or ros2:/topic.")
    parent = os.path.dirname(os.path.abspath(spec))
    if not os.path.isdir(parent):
        raise InputError(f"Cannot write the output file {spec}: its folder {parent} does not exist.")
    try:
        stream = open(spec, "a", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"Cannot open the output file {spec} for appending: {exc}.") from exc
    return JsonLinesOutput(stream, spec, owns_stream=True)


def twist_setpoints(message: Dict[str, Any]) -> Tuple[float, float]:
    """(linear.x m/s, angular.z rad/s) for a follow message: zero unless LOCKED and not stopped.

    A message with a missing, stopped or non-finite command maps to zero (fail safe).
    """
    state = to_jsonable(message.get("state"))
    command = message.get("command") or {}
    if str(state).upper() != "LOCKED" or command.get("stop", False):
        return 0.0, 0.0
    try:
        linear, angular = float(command["linear_x"]), float(command["angular_z"])
    except (KeyError, TypeError, ValueError):
        return 0.0, 0.0
    if not (math.isfinite(linear) and math.isfinite(angular)):
        return 0.0, 0.0
    return linear, angular


class Ros2TwistOutput(Output):
    """Publishes ``geometry_msgs/Twist`` on ``topic`` for every message (zero unless LOCKED).

    Args:
        topic: e.g. ``/cmd_vel``.
        node_name: ROS 2 node name.

    Raises:
        MissingDependencyError: rclpy / geometry_msgs are not importable (source ROS 2 first).
    """

    def __init__(self, topic: str = "/cmd_vel", node_name: str = "edgereid_follow") -> None:
        super().__init__()
        rclpy = require("rclpy", "the ROS 2 Twist output")
        self._twist_type = require("geometry_msgs.msg", "the ROS 2 Twist output").Twist
        self.name = f"ros2:{topic}"
        self._rclpy = rclpy
        self._owns_context = not rclpy.ok()
        if self._owns_context:
            rclpy.init()
        self.node = rclpy.create_node(node_name)
        self.publisher = self.node.create_publisher(self._twist_type, topic, 10)

    def send_impl(self, message: Dict[str, Any]) -> None:
        linear, angular = twist_setpoints(message)
        twist = self._twist_type()
        twist.linear.x = linear
        twist.angular.z = angular
        self.publisher.publish(twist)

    def close_impl(self) -> None:
        try:  # leave the car stopped on a clean exit
            self.publisher.publish(self._twist_type())
        finally:
            self.node.destroy_node()
            if self._owns_context:
                self._rclpy.shutdown()
