"""Frame sources: folders, video files (every frame / realtime), live sources with reopen."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from edgereid.errors import InputError
from edgereid.runtime.sources import (
    Frame,
    LiveSource,
    csi_pipeline,
    gstreamer_available,
    open_source,
)

cv2 = pytest.importorskip("cv2")


def _image(value: int, hw=(48, 64)) -> np.ndarray:
    return np.full(hw + (3,), value, np.uint8)


@pytest.fixture
def frame_folder(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in (3, 1, 0, 2, 10):  # written out of order; read in sorted name order
        cv2.imwrite(str(folder / f"f{i:03d}.png"), _image(i * 20))
    (folder / "notes.txt").write_text("not an image")
    return folder


@pytest.fixture
def small_video(tmp_path):
    """12 frames of 64x48 MJPG, frame k has grey level 20*k; 10 fps."""
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    assert writer.isOpened()
    for k in range(12):
        writer.write(_image(20 * k))
    writer.release()
    return path


def _drain(src, timeout=1.0):
    frames = []
    while src.is_streaming:
        frame = src.capture(timeout)
        if frame is not None:
            frames.append(frame)
    return frames


def test_folder_yields_sorted_images_then_ends(frame_folder):
    with open_source(str(frame_folder)) as src:
        frames = _drain(src)
        assert src.capture() is None and not src.is_streaming
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]
    assert [int(f.image[0, 0, 0]) for f in frames] == [0, 20, 40, 60, 200]
    assert all(isinstance(f, Frame) and f.image.shape == (48, 64, 3) for f in frames)
    assert frames[0].t_capture <= frames[-1].t_capture and frames[0].t_wall > 1e9


def test_folder_unreadable_image_is_none_with_error(frame_folder):
    (frame_folder / "f001.png").write_bytes(b"broken")
    with open_source(str(frame_folder)) as src:
        got = [src.capture() for _ in range(5)]
        assert not src.is_streaming
    assert got[1] is None and [g.index for g in got if g is not None] == [0, 2, 3, 4]


def test_video_file_every_frame_in_order(small_video):
    with open_source(str(small_video)) as src:
        assert src.fps == pytest.approx(10.0)
        frames = _drain(src)
    assert [f.index for f in frames] == list(range(12))
    levels = [int(np.median(f.image)) for f in frames]
    assert all(abs(a - 20 * k) <= 3 for k, a in enumerate(levels))  # MJPG is lossy


def test_video_file_realtime_drops_frames_for_a_slow_reader(small_video):
    with open_source(str(small_video), fps=50, realtime=True) as src:  # 20 ms per frame
        indices = []
        while src.is_streaming:
            frame = src.capture()
            if frame is not None:
                indices.append(frame.index)
                time.sleep(0.06)  # a reader 3x slower than the stream
    assert indices == sorted(set(indices))
    assert len(indices) < 12 and indices[0] == 0
    assert max(np.diff(indices)) >= 2


def test_video_file_realtime_paces_a_fast_reader(small_video):
    with open_source(str(small_video), fps=25, realtime=True) as src:  # 40 ms per frame
        start = time.monotonic()
        got = [src.capture().index for _ in range(5)]
        elapsed = time.monotonic() - start
    assert got == [0, 1, 2, 3, 4]
    assert elapsed >= 4 * 0.04 * 0.9  # never ahead of the stream's clock


@pytest.mark.parametrize("uri, match", [
    ("/nonexistent/clip.mp4", "No such source"),
    ("/dev/video99", "No camera at /dev/video99"),
    ("rtsp_typo", "No such source"),
])
def test_nothing_to_open(uri, match):
    with pytest.raises(InputError, match=match):
        open_source(uri)


def test_unreadable_video_and_empty_folder(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 1000)
    with pytest.raises(InputError, match="cannot open the video|no frame can be decoded"):
        open_source(str(bad))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no images"):
        open_source(str(tmp_path / "empty"))


def test_gstreamer_pipeline_needs_gstreamer():
    pipeline = "videotestsrc num-buffers=3 ! videoconvert ! appsink"
    if gstreamer_available():
        with open_source(pipeline) as src:
            assert src.capture(2.0) is not None
    else:
        with pytest.raises(InputError, match="without GStreamer"):
            open_source(pipeline)


def test_csi_pipeline_text():
    text = csi_pipeline(1, 1920, 1080, 30)
    assert text.startswith("nvarguscamerasrc sensor-id=1 !")
    assert "width=1920, height=1080, framerate=30/1" in text
    assert text.endswith("appsink drop=true max-buffers=1 sync=false")


class FakeCamera:
    """cv2.VideoCapture stand-in: ``frames`` good reads, then reads fail (unplugged)."""

    def __init__(self, frames: int, image=None, opened=True, period=0.002):
        self.left, self.opened, self.period = frames, opened, period
        self.image = _image(50) if image is None else image
        self.released = False

    def isOpened(self):
        return self.opened

    def read(self):
        time.sleep(self.period)
        if self.left <= 0:
            return False, None
        self.left -= 1
        return True, self.image.copy()

    def release(self):
        self.released = True


class Opener:
    """Hands out the given cameras in turn, recording when it was called."""

    def __init__(self, cameras):
        self.cameras, self.calls = list(cameras), []

    def __call__(self):
        self.calls.append(time.monotonic())
        return self.cameras.pop(0) if self.cameras else FakeCamera(0, opened=False)


def _wait_for(predicate, timeout=10.0):  # generous: the suite runs two workers on two cores
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.005)
    return False


def test_live_source_reopens_with_backoff_and_reports_why():
    first = FakeCamera(frames=3)
    opener = Opener([first, FakeCamera(0, opened=False), FakeCamera(0, opened=False),
                     FakeCamera(10_000, period=0.01)])
    src = LiveSource("/dev/video0", opener, backoff=0.05, backoff_max=0.1)
    try:
        assert src.capture(5.0) is not None
        assert _wait_for(lambda: src.last_error is not None)  # unplugged
        assert "stopped delivering" in src.last_error or "reopen failed" in src.last_error
        assert src.is_streaming
        assert _wait_for(lambda: src.reopen_count == 1)
        frame = src.capture(5.0)
        assert frame is not None and frame.index >= 4  # indices go on counting across reopen
        assert src.last_error is None or src.capture(5.0) is not None
    finally:
        src.close()
    assert first.released
    gaps = np.diff(opener.calls)  # open, fail, fail, success: waits 0.05, 0.1 (capped), 0.1
    assert len(gaps) == 3
    assert gaps[0] >= 0.045 and gaps[1] >= 0.09 and gaps[2] >= 0.09


def test_live_source_zero_size_frames_are_not_passed_on():
    cam = FakeCamera(frames=10_000, image=np.zeros((0, 0, 3), np.uint8))
    with LiveSource("/dev/video0", Opener([cam])) as src:
        assert src.capture(0.2) is None
        assert _wait_for(lambda: src.last_error is not None and "empty" in src.last_error)


def test_live_source_hands_out_the_newest_frame():
    with LiveSource("cam", Opener([FakeCamera(frames=10_000, period=0.002)])) as src:
        first = src.capture(1.0)
        time.sleep(0.1)
        second = src.capture(1.0)
        assert second.index - first.index >= 5
        assert src.frames_dropped >= 3


def test_live_source_timeout_returns_none():
    with LiveSource("slow", Opener([FakeCamera(frames=10, period=0.3)])) as src:
        start = time.monotonic()
        assert src.capture(0.05) is None
        assert time.monotonic() - start < 0.5


def test_live_source_that_cannot_open_fails_at_open():
    with pytest.raises(InputError, match="Cannot open the live source"):
        LiveSource("/dev/video0", Opener([FakeCamera(0, opened=False)]))


def test_close_stops_the_reader_thread():
    src = LiveSource("cam", Opener([FakeCamera(frames=10_000)]))
    src.close()
    assert not src.is_streaming and src.capture() is None
    assert not any(t.name == "source:cam" and t.is_alive() for t in threading.enumerate())
