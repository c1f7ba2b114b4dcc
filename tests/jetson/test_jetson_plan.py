from __future__ import annotations

import pytest

from edgereid.errors import InputError
from edgereid.jetson.plan import BatchProfile, build_script, plan_engine, trtexec_line

FILES = {"onnx": "model.onnx", "onnx_int8_qdq": "model.int8.qdq.onnx", "calib_cache": "calib.cache"}
CHW = (3, 256, 128)
DYN = BatchProfile(1, 4, 8)
STATIC = BatchProfile(2, 2, 2)
TAIL = "--memPoolSize=workspace:1024 --timingCacheFile=timing.cache --profilingVerbosity=detailed"

DYN_SHAPES = ("--minShapes=images:1x3x256x128 --optShapes=images:4x3x256x128 "
              "--maxShapes=images:8x3x256x128")


@pytest.mark.parametrize(
    "mode, profile, line",
    [
        ("fp16", DYN, f'"$TRTEXEC" --onnx=model.onnx --saveEngine=model.fp16.engine --fp16 {DYN_SHAPES} {TAIL} '
                      "--exportLayerInfo=model.fp16.layers.json --exportProfile=model.fp16.profile.json"),
        ("int8-cache", DYN, '"$TRTEXEC" --onnx=model.onnx --saveEngine=model.int8.engine --fp16 --int8 '
                            f"--calib=calib.cache {DYN_SHAPES} {TAIL} "
                            "--exportLayerInfo=model.int8.layers.json --exportProfile=model.int8.profile.json"),
        ("int8-qdq", DYN, '"$TRTEXEC" --onnx=model.int8.qdq.onnx --saveEngine=model.int8qdq.engine --fp16 '
                          f"--int8 {DYN_SHAPES} {TAIL} "
                            "--exportLayerInfo=model.int8qdq.layers.json --exportProfile=model.int8qdq.profile.json"),
        ("dla0", STATIC, '"$TRTEXEC" --onnx=model.onnx --saveEngine=model.dla0.engine --fp16 --int8 '
                         "--calib=calib.cache --useDLACore=0 --allowGPUFallback "
                         f"{TAIL} --exportLayerInfo=model.dla0.layers.json --exportProfile=model.dla0.profile.json"),
        ("dla1", STATIC, '"$TRTEXEC" --onnx=model.onnx --saveEngine=model.dla1.engine --fp16 --int8 '
                         "--calib=calib.cache --useDLACore=1 --allowGPUFallback "
                         f"{TAIL} --exportLayerInfo=model.dla1.layers.json --exportProfile=model.dla1.profile.json"),
    ],
)
def test_trtexec_lines_exact(mode, profile, line):
    assert trtexec_line(plan_engine(mode, "images", CHW, profile, FILES)) == line


def test_dla_fp16_without_cache():
    plan = plan_engine("dla0", "images", CHW, BatchProfile(1, 1, 1), {"onnx": "model.onnx"})
    assert plan.builder_flags == ["FP16", "GPU_FALLBACK"] and plan.calib_cache is None
    assert trtexec_line(plan) == (
        '"$TRTEXEC" --onnx=model.onnx --saveEngine=model.dla0.engine --fp16 --useDLACore=0 '
        f"--allowGPUFallback {TAIL} --exportLayerInfo=model.dla0.layers.json --exportProfile=model.dla0.profile.json"
    )


def test_plan_decisions():
    p = plan_engine("int8-cache", "images", CHW, DYN, FILES)
    assert p.builder_flags == ["FP16", "INT8"]
    assert p.profile_shapes == ((1, 3, 256, 128), (4, 3, 256, 128), (8, 3, 256, 128))
    assert p.needs_calibration_profile  # dynamic batch + implicit INT8
    assert not plan_engine("int8-cache", "images", CHW, STATIC, FILES).needs_calibration_profile
    assert not plan_engine("int8-qdq", "images", CHW, DYN, FILES).needs_calibration_profile


def test_plan_errors():
    with pytest.raises(InputError, match="static batch"):
        plan_engine("dla0", "images", CHW, DYN, FILES)
    with pytest.raises(InputError, match="--int8"):
        plan_engine("int8-cache", "images", CHW, DYN, {"onnx": "model.onnx"})
    with pytest.raises(InputError, match="unknown engine mode"):
        plan_engine("fp8", "images", CHW, DYN, FILES)


@pytest.mark.parametrize("text, ok", [("1:4:8", True), ("2:2:2", True), ("4:1:8", False), ("0:1:2", False),
                                      ("1:4", False), ("a:b:c", False)])
def test_batch_profile_parse(text, ok):
    if ok:
        assert BatchProfile.parse(text) == BatchProfile(*map(int, text.split(":")))
    else:
        with pytest.raises(InputError, match="MIN:OPT:MAX"):
            BatchProfile.parse(text)


def test_build_script_runs_the_same_lines():
    plans = [plan_engine(m, "images", CHW, DYN, FILES) for m in ("int8-qdq", "fp16")]
    script = build_script(plans, "8.5.2")
    assert script.startswith("#!/usr/bin/env bash\n")
    assert 'TRTEXEC="${TRTEXEC:-/usr/src/tensorrt/bin/trtexec}"' in script
    for p in plans:
        assert f"  {trtexec_line(p)}\n" in script
    assert 'modes=("${@:-int8-qdq}")' in script
    assert "    fp16) build_fp16 ;;" in script and "    int8-qdq) build_int8_qdq ;;" in script
