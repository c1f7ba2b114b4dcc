"""FollowLoop with fake parts: message schema, STOP on every fault, no crash, flat memory."""

from __future__ import annotations

import time
import tracemalloc
from dataclasses import dataclass

import numpy as np
import pytest

from edgereid.detections import Detections
from edgereid.runtime.config import FollowConfig
from edgereid.runtime.loop import FollowLoop

W, H = 320, 240
RED, BLUE = (0, 0, 255), (255, 0, 0)
TARGET_BOX = [130, 40, 190, 220]
OTHER_BOX = [10, 120, 40, 200]


@dataclass
class FakeFrame:
    image: np.ndarray
    index: int
    t_capture: float
    t_wall: float


class FakeSource:
    """Frames with a red person in front and a blue one at the side; ``gaps`` = indices that time out."""

    def __init__(self, n, gaps=(), empty=(), age_s=0.0, raise_at=()):
        self.n, self.gaps, self.empty, self.age_s, self.raise_at = n, set(gaps), set(empty), age_s, set(raise_at)
        self.i = 0
        self.calls = 0
        self.is_streaming = True
        self.last_error = None

    def capture(self, timeout=1.0):
        self.calls += 1
        if self.calls in self.raise_at:
            raise OSError("device unplugged")
        if self.i >= self.n:
            self.is_streaming = False
            return None
        i = self.i
        self.i += 1
        if i in self.gaps:
            self.last_error = "camera timeout"
            return None
        image = np.full((H, W, 3), 90, np.uint8)
        if i in self.empty:
            image = np.zeros((0, 0, 3), np.uint8)
        else:
            image[TARGET_BOX[1]:TARGET_BOX[3], TARGET_BOX[0]:TARGET_BOX[2]] = RED
            image[OTHER_BOX[1]:OTHER_BOX[3], OTHER_BOX[0]:OTHER_BOX[2]] = BLUE
        return FakeFrame(image, i, time.monotonic() - self.age_s, time.time())


class FakeDetector:
    def __init__(self, fail_at=()):
        self.fail_at = set(fail_at)
        self.calls = 0

    def detect(self, image):
        self.calls += 1
        if self.calls - 1 in self.fail_at:
            raise RuntimeError("detector exploded")
        return Detections(np.array([TARGET_BOX, OTHER_BOX], np.float32), np.array([0.9, 0.9], np.float32))


class FakeEmbedder:
    """Mean colour of the crop as an 8-d unit vector; NaN or an exception on chosen calls."""

    def __init__(self, nan_at=(), fail_at=()):
        self.nan_at, self.fail_at = set(nan_at), set(fail_at)
        self.calls = 0
        self.crops_seen = []
        self.is_active = False

    def activate(self):
        self.is_active = True

    def deactivate(self):
        self.is_active = False

    def embed(self, crops):
        self.calls += 1
        self.crops_seen.append(len(crops))
        if self.calls - 1 in self.fail_at:
            raise RuntimeError("embedder exploded")
        feats = np.zeros((len(crops), 8), np.float32)
        for i, c in enumerate(crops):
            feats[i, :3] = c.reshape(-1, 3).mean(axis=0) + 1.0
        feats /= np.linalg.norm(feats, axis=1, keepdims=True)
        if self.calls - 1 in self.nan_at:
            feats[:] = np.nan
        return feats


class ListOutput:
    def __init__(self, fail=False):
        self.messages, self.fail = [], fail

    def send(self, message):
        if self.fail:
            raise OSError("network down")
        self.messages.append(message)


class NullOutput:
    def send(self, message):
        pass


def run(source, detector=None, embedder=None, output=None, config=None, realtime=False):
    out = output or ListOutput()
    loop = FollowLoop(source, detector or FakeDetector(), embedder or FakeEmbedder(), out, config, realtime=realtime)
    summary = loop.run()
    return loop, summary, out.messages


def test_enrolls_locks_and_messages_follow_the_schema():
    loop, summary, messages = run(FakeSource(20))
    assert len(messages) == 20 == summary.frames
    first = messages[0]
    assert set(first) >= {"frame", "seq", "t", "state", "target", "command", "latency_ms", "fps"}
    assert [m["seq"] for m in messages] == list(range(20))
    assert [m["frame"] for m in messages] == list(range(20))
    assert set(first["latency_ms"]) >= {"capture", "detect", "track", "embed", "lock", "total"}
    locked = [m for m in messages if m["state"] == "LOCKED"]
    assert len(locked) >= 12
    assert all(not m["command"]["stop"] and "reason" not in m for m in locked)
    assert locked[0]["target"]["box"] == TARGET_BOX
    for m in messages:
        if m["state"] != "LOCKED":
            assert m["command"] == {"linear_x": 0.0, "angular_z": 0.0, "stop": True} and m["reason"]
    assert summary.first_locked_frame == locked[0]["frame"]
    assert summary.latency_ms["total"]["max"] >= summary.latency_ms["total"]["mean"] > 0


def test_only_the_crops_that_need_a_check_are_embedded():
    embedder = FakeEmbedder()
    run(FakeSource(20), embedder=embedder)
    # the enrollment candidate alone while enrolling; then the target and at most one bystander per
    # frame (stranger_checks_per_frame: people beside the target are learnt as known strangers)
    assert embedder.crops_seen[:4] == [1, 1, 1, 1]
    assert max(embedder.crops_seen) == 2
    quiet = FakeEmbedder()
    config = FollowConfig().with_overrides({"lock": {"stranger_checks_per_frame": 0}})
    run(FakeSource(20), embedder=quiet, config=config)
    assert max(quiet.crops_seen) == 1  # never the bystander


def _stops(messages, fragment):
    return [m for m in messages if m["command"]["stop"] and fragment in m.get("reason", "")]


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"detector": FakeDetector(fail_at=[12])}, "detect failed"),
        ({"embedder": FakeEmbedder(fail_at=[12])}, "embed failed"),
        ({"embedder": FakeEmbedder(nan_at=[12])}, "embed failed"),
        ({"source": FakeSource(20, empty=[12])}, "empty frame"),
        ({"source": FakeSource(20, gaps=[12])}, "no frame from the source"),
        ({"source": FakeSource(20, raise_at=[13])}, "no frame from the source"),
    ],
)
def test_each_fault_gives_one_stop_with_its_reason_and_the_run_goes_on(kwargs, fragment):
    source = kwargs.pop("source", FakeSource(20))
    loop, summary, messages = run(source, **kwargs)
    stops = _stops(messages, fragment)
    assert len(stops) == 1
    assert stops[0]["command"] == {"linear_x": 0.0, "angular_z": 0.0, "stop": True}
    after = messages[messages.index(stops[0]) + 1:]
    assert after and all(m["state"] == "LOCKED" and not m["command"]["stop"] for m in after[-3:])


def test_stale_frames_stop_when_the_budget_is_enforced_only():
    config = FollowConfig()
    config.loop.latency_budget_s = 0.05
    _, _, live = run(FakeSource(15, age_s=0.5), config=config, realtime=True)
    assert all(m["command"]["stop"] for m in live)
    assert len(_stops(live, "stale frame")) >= 5
    _, _, offline = run(FakeSource(15, age_s=0.5), config=config, realtime=False)
    assert any(not m["command"]["stop"] for m in offline)


def test_a_failing_output_never_stops_the_loop():
    _, summary, _ = run(FakeSource(10), output=ListOutput(fail=True))
    assert summary.frames == 10


def test_memory_stays_flat_over_a_long_run():
    source = FakeSource(10**9)
    loop = FollowLoop(source, FakeDetector(), FakeEmbedder(), NullOutput())
    loop.embedder.activate()
    for _ in range(1100):  # fill every bounded window first
        loop.step()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for _ in range(1000):
        loop.step()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    growth = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert growth < 64 * 1024, growth
    assert len(loop.lock.gallery) <= loop.config.gallery.max_size + loop.config.gallery.max_anchors
    assert len(loop.lock.strangers) <= loop.config.lock.max_strangers


def test_udp_enroll_command_restarts_enrollment_and_garbage_is_ignored():
    import socket

    from edgereid.runtime.control import UdpControl

    control = UdpControl(0, "127.0.0.1")
    try:
        loop = FollowLoop(FakeSource(40), FakeDetector(), FakeEmbedder(), NullOutput(), control=control)
        loop.embedder.activate()
        for _ in range(10):
            loop.step()
        assert loop.lock.state.value == "LOCKED"
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sender.sendto(b"dance", ("127.0.0.1", control.port))
        sender.sendto(b"enroll\n", ("127.0.0.1", control.port))
        sender.close()
        time.sleep(0.05)
        message = loop.step()
        assert message["state"] in ("SEARCHING", "ENROLLING") and message["command"]["stop"]
    finally:
        control.close()


def test_control_port_in_use_is_an_input_error():
    from edgereid.errors import InputError
    from edgereid.runtime.control import UdpControl

    first = UdpControl(0, "127.0.0.1")
    try:
        with pytest.raises(InputError, match="cannot listen"):
            UdpControl(first.port, "127.0.0.1")
    finally:
        first.close()
