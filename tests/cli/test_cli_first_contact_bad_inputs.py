"""Bad input found in the first-contact review (issue 11): each gives one message, exit 2, nothing written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.assets


def _exit2(capsys, main, argv, *fragments):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and lines[-1].split(":")[0].startswith("reid-"), err
    assert not any(line.startswith("WARNING") for line in lines), err  # the error is the one message
    for fragment in fragments:
        assert fragment in lines[-1], err
    return lines[-1]


@pytest.fixture
def bundle(tmp_path, osnet_onnx, onnx_bundle) -> Path:
    return onnx_bundle(tmp_path / "osnet", {"onnx": osnet_onnx})


def test_bench_truncated_model(tmp_path, osnet_onnx, onnx_bundle, capsys):
    from edgereid.cli.bench import main

    data = osnet_onnx.read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: len(data) // 3])
    b = onnx_bundle(tmp_path / "b", {"onnx": cut})
    _exit2(capsys, main, ["--bundle", str(b), "--iters", "1", "--warmup", "0", "--no-progress"],
           "is not a readable ONNX model", "truncated or corrupt")


@pytest.mark.parametrize("record, message", [("DIR", "is a directory"), ("missing/x.mp4", "does not exist"),
                                             ("x.txt", "expected a .mp4 file")])
def test_follow_record_refused_before_anything_opens(bundle, walking_video, tmp_path, capsys, record, message):
    from edgereid.cli.follow import main

    (tmp_path / "DIR").mkdir()
    log = tmp_path / "follow.jsonl"
    _exit2(capsys, main, ["--source", str(walking_video), "--bundle", str(bundle), "--max-frames", "2",
                          "--record", str(tmp_path / record), "--output", str(log)], "--record", message)
    assert not log.exists()


def test_follow_enroll_with_a_corrupt_crop(bundle, walking_video, pku_dir, tmp_path, capsys):
    from edgereid.cli.follow import main

    enroll = tmp_path / "enroll"
    enroll.mkdir()
    for p in sorted(pku_dir.glob("*/*.png"))[:3]:
        shutil.copy(p, enroll / p.name)
    (enroll / "zz_broken.png").write_bytes(b"\x89PNG not really")
    log = tmp_path / "follow.jsonl"
    _exit2(capsys, main, ["--source", str(walking_video), "--bundle", str(bundle), "--max-frames", "2",
                          "--enroll", str(enroll), "--output", str(log)], "zz_broken.png", "cannot be read")
    assert not log.exists()


def test_export_onnx_is_a_directory(tmp_path, capsys):
    from edgereid.cli.export import main

    _exit2(capsys, main, ["--onnx", str(tmp_path), "--out", str(tmp_path / "out"), "--no-progress"],
           "is a directory", "expected an ONNX model file")
    assert not (tmp_path / "out").exists()


def test_eval_data_is_a_file(bundle, tmp_path, capsys):
    from edgereid.cli.eval import main

    f = tmp_path / "data.txt"
    f.write_text("x")
    _exit2(capsys, main, ["--bundle", str(bundle), "--data", str(f)], "is a file", "expected the dataset folder")


def test_export_empty_calibration_video_before_the_detector(osnet_onnx, tmp_path, capsys):
    from edgereid.cli.export import main

    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    _exit2(capsys, main, ["--onnx", str(osnet_onnx), "--target", "cpu", "--int8", "--calib-data", str(empty),
                          "--out", str(tmp_path / "out"), "--no-progress"], "--calib-data", "cannot open the video")
    assert not (tmp_path / "out").exists()
