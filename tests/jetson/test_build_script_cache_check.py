"""build_engine.sh run for real (bash) with a fake trtexec: the calib.cache header must match its TensorRT."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from edgereid.jetson.plan import BatchProfile, build_script, plan_engine

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
FILES = {"onnx": "model.onnx", "calib_cache": "calib.cache"}


def _bundle(tmp_path, header: str, trt_line: str):
    plans = [plan_engine(m, "images", (3, 256, 128), BatchProfile(1, 1, 1), FILES) for m in ("dla0", "fp16")]
    script = tmp_path / "build_engine.sh"
    script.write_text(build_script(plans, "8.5.2"))
    script.chmod(0o755)
    (tmp_path / "calib.cache").write_text(f"{header}\nimages: 3c010204\n")
    fake = tmp_path / "fake_trtexec"
    # the first line trtexec prints (samples/common/logging.h reportTestStart), then record the arguments
    fake.write_text(f'#!/usr/bin/env bash\necho "{trt_line}"\n'
                    '[ "$1" = "--help" ] && exit 0\necho "$@" >> "$(dirname "$0")/calls.txt"\n')
    fake.chmod(0o755)
    return script, fake


def _run(script, fake, *modes):
    env = dict(os.environ, TRTEXEC=str(fake))
    return subprocess.run([str(script), *modes], env=env, capture_output=True, text=True, timeout=60)


def test_matching_header_builds(tmp_path):
    script, fake = _bundle(tmp_path, "TRT-8502-EntropyCalibration2",
                           "&&&& RUNNING TensorRT.trtexec [TensorRT v8502] # trtexec --help")
    res = _run(script, fake, "dla0")
    assert res.returncode == 0, res.stderr
    (call,) = (tmp_path / "calls.txt").read_text().splitlines()
    assert "--calib=calib.cache" in call and "--exportLayerInfo=model.dla0.layers.json" in call


def test_jetpack_502_refuses_an_8502_cache(tmp_path):
    script, fake = _bundle(tmp_path, "TRT-8502-EntropyCalibration2",
                           "&&&& RUNNING TensorRT.trtexec [TensorRT v8401] # trtexec --help")
    res = _run(script, fake, "dla0")
    assert res.returncode == 2
    assert "starts with 'TRT-8502-EntropyCalibration2' but this TensorRT is 8.4.1" in res.stderr
    assert "--trt-version 8.4.1" in res.stderr
    assert not (tmp_path / "calls.txt").exists()  # trtexec never built anything
    assert _run(script, fake, "fp16").returncode == 0  # a mode without the cache is not affected


def test_unreadable_trtexec_version_refuses(tmp_path):
    script, fake = _bundle(tmp_path, "TRT-8502-EntropyCalibration2", "some other tool")
    res = _run(script, fake, "dla0")
    assert res.returncode == 2 and "cannot read the TensorRT version" in res.stderr
