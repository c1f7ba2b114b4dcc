"""Operator commands to the running follow loop over UDP (``--control-port``).

A follow-car never adopts a new person on its own; a new enrollment is an explicit command.
Send one datagram with the text ``enroll`` (e.g. ``echo -n enroll | nc -u -w0 car 5601``): the
lock forgets its target and enrolls whoever stands in front of the car next. The socket is
non-blocking and polled once per frame; unknown text is logged and ignored.
"""

from __future__ import annotations

import socket
from typing import List

from edgereid.errors import InputError

KNOWN_COMMANDS = ("enroll",)


class UdpControl:
    """Non-blocking UDP listener; ``poll()`` returns the commands received since the last call.

    Args:
        port: UDP port to listen on (0 = any free port; see :attr:`port`).
        host: interface address; ``0.0.0.0`` = all.
    """

    def __init__(self, port: int, host: str = "0.0.0.0") -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self._sock.bind((host, int(port)))
        except (OSError, OverflowError, ValueError) as exc:
            self._sock.close()
            raise InputError(f"--control-port {port}: cannot listen on udp://{host}:{port} ({exc}). "
                             "Choose a free port between 1024 and 65535.") from exc
        self._sock.setblocking(False)
        self.port = self._sock.getsockname()[1]

    def poll(self, max_commands: int = 16) -> List[str]:
        commands: List[str] = []
        for _ in range(max_commands):  # bounded: a flood cannot stall the loop
            try:
                data = self._sock.recv(256)
            except (BlockingIOError, InterruptedError):
                break
            commands.append(data.decode("utf-8", "replace").strip().lower())
        return commands

    def close(self) -> None:
        self._sock.close()
