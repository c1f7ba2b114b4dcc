"""reid-bench end to end on the real OSNet ONNX (few iterations: behaviour, not speed), plus bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgereid.cli.bench import main
from edgereid.lazy import available

pytestmark = pytest.mark.assets


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, osnet_onnx, onnx_bundle) -> Path:
    return onnx_bundle(tmp_path_factory.mktemp("bench") / "osnet", {"onnx": osnet_onnx})


def test_single_bundle_report(bundle, tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["--bundle", str(bundle), "--batch", "1,2", "--warmup", "1", "--iters", "3", "--threads", "1",
                 "--out", str(out), "--no-progress"]) == 0
    assert "| osnet:ort | 2 |" in capsys.readouterr().out
    rep = json.loads(out.read_text())
    assert rep["schema"] == "edgereid.reid_bench/1" and rep["mode"] == "single"
    lat = rep["latency"]["osnet:ort"]
    assert set(lat) == {"1", "2"}
    for s in lat.values():
        assert s["n"] == 3 and s["min_ms"] <= s["p50_ms"] <= s["p90_ms"] <= s["p99_ms"] <= s["max_ms"]
        assert s["limit"]["floor_ms"] > 0
    assert len(rep["samples_ms"]["osnet:ort"]["2"]) == 3
    target = rep["targets"][0]
    assert target["macs_per_crop"] == pytest.approx(82_249_344)  # OSNet x0.25 at 256x128, counted from the graph
    assert target["backend"] == "ort" and target["threads"] == 1
    assert target["providers"] == ["CPUExecutionProvider"]
    assert rep["memory"]["peak_rss_mb"] > 10
    assert rep["fp32_limit"]["peak_gflops"] > 0 and rep["fp32_limit"]["threads"] == 1
    assert rep["tegrastats"]["available"] is False  # not a Jetson
    assert rep["conditions"]["libraries"]["onnxruntime"]
    assert (tmp_path / "bench.md").read_text().startswith("| target |")
    if available("matplotlib"):
        assert (tmp_path / "bench.png").stat().st_size > 1000
    else:
        assert not (tmp_path / "bench.png").exists()


def test_compare_two_backends_interleaved(bundle, tmp_path):
    out = tmp_path / "cmp.json"
    assert main(["--compare", f"{bundle}:ort", f"{bundle}:ort", "--iters", "4", "--warmup", "0", "--threads", "1",
                 "--out", str(out), "--no-progress", "--no-plot", "--no-peak-probe"]) == 0
    rep = json.loads(out.read_text())
    assert rep["mode"] == "compare" and rep["fp32_limit"] is None
    r = rep["compare"]["by_batch"]["1"]
    assert r["n_pairs"] == 4 and r["time_ratio_q1"] <= r["time_ratio_median"] <= r["time_ratio_q3"]
    assert not (tmp_path / "cmp.png").exists()


def _expect_exit2(capsys, argv, *fragments):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own usage errors exit from parse_args
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and "error:" in err.splitlines()[-1], err
    for fragment in fragments:
        assert fragment in err, err


def test_bad_inputs_exit_2(bundle, tmp_path, capsys):
    fast = ["--iters", "1", "--warmup", "0", "--no-progress", "--no-peak-probe"]
    _expect_exit2(capsys, ["--bundle", str(tmp_path / "nope"), *fast], "does not exist")
    _expect_exit2(capsys, ["--bundle", str(bundle), "--backend", "nosuch", *fast], "unknown embedder backend")
    _expect_exit2(capsys, ["--bundle", str(bundle), "--backend", "ort-int8", *fast], "onnx_int8_qdq")
    _expect_exit2(capsys, ["--bundle", str(bundle), "--batch", "0", *fast], "--batch")
    _expect_exit2(capsys, ["--bundle", str(bundle), "--out", str(tmp_path / "x" / "r.json"), *fast],
                  "not an existing directory")
    _expect_exit2(capsys, ["--compare", str(bundle), *fast], "--compare")
    _expect_exit2(capsys, ["follow", "--source", str(tmp_path / "none.mp4"), "--bundle", str(bundle)],
                  "No such source")


def test_follow_per_stage_latency(bundle, walking_video, yolox_onnx, tmp_path):
    out = tmp_path / "follow.json"
    assert main(["follow", "--source", str(walking_video), "--bundle", str(bundle), "--detector", str(yolox_onnx),
                 "--frames", "8", "--warmup-frames", "2", "--threads", "1", "--out", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert rep["mode"] == "follow" and rep["frames"] == 8
    assert set(rep["stages_ms"]) >= {"capture", "detect", "track", "lock", "total"}
    assert rep["stages_ms"]["total"]["n"] == 6
    assert rep["stages_ms"]["total"]["p50_ms"] >= rep["stages_ms"]["detect"]["p50_ms"] * 0.5
    assert rep["fps_end_to_end"] > 0
    assert (tmp_path / "follow.md").exists()


@pytest.mark.parametrize("extra, fragment", [
    (["--gt", "{tmp}/none.txt", "--target-id", "4"], "does not exist"),
    (["--gt", "{gt}", "--target-id", "99"], "its ids are [4, 7]"),
    (["--gt", "{gt}", "--target-id", "4", "--gt-frames", "five"], "A-B or A-B:STEP"),
    (["--gt-frames", "1-5"], "--gt and --target-id go together"),
])
def test_follow_ground_truth_inputs_are_checked_before_the_run(bundle, tmp_path, capsys, extra, fragment):
    gt = tmp_path / "gt.txt"
    gt.write_text("1,4,10,20,30,60,1,-1,-1,-1\n1,7,100,20,30,60,1,-1,-1,-1\n")
    argv = ["follow", "--source", str(tmp_path / "never_opened.mp4"), "--bundle", str(bundle),
            "--out", str(tmp_path / "r.json")] + [a.format(tmp=tmp_path, gt=gt) for a in extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err
    assert not (tmp_path / "r.json").exists()
