"""build_engine.sh lines of static and dynamic bundles, run through trtexec 8.5's own option rules."""

from __future__ import annotations

import warnings

import onnx
import pytest
from trtexec85 import TrtexecRefused, check_shapes, layer_precisions, parse, script_lines

from edgereid.jetson.plan import MODES, BatchProfile, plan_engine, trtexec_line

FILES = {"onnx": "model.onnx", "onnx_int8_qdq": "model.int8.qdq.onnx", "calib_cache": "calib.cache"}
CHW = (3, 256, 128)


def test_oracle_refuses_what_trtexec_refuses():
    """The stand-in must fail on the line the old build_engine.sh wrote for a static bundle."""
    old_static = '"$TRTEXEC" --onnx=model.onnx --saveEngine=m.engine --fp16 --shapes=images:2x3x256x128'
    with pytest.raises(TrtexecRefused, match="Static model does not take explicit shapes"):
        check_shapes(parse(old_static), {"images": [2, 3, 256, 128]})
    with pytest.raises(TrtexecRefused, match="Unknown option"):
        parse('"$TRTEXEC" --onnx=m.onnx --workspaceSize=10')
    with pytest.raises(TrtexecRefused, match="Unknown memory pool"):
        parse('"$TRTEXEC" --memPoolSize=gpu:10')
    with pytest.raises(TrtexecRefused, match="Cannot find input"):
        check_shapes(parse('"$TRTEXEC" --minShapes=input:1x3 --optShapes=input:1x3 --maxShapes=input:1x3'),
                     {"images": [-1, 3]})


@pytest.mark.parametrize("mode", MODES)
def test_static_plan_lines_pass_trtexec_85(mode):
    line = trtexec_line(plan_engine(mode, "images", CHW, BatchProfile(2, 2, 2), FILES))
    args = parse(line)
    assert not set(args) & {"--shapes", "--minShapes", "--optShapes", "--maxShapes"}
    assert check_shapes(args, {"images": [2, *CHW]}) == []


@pytest.mark.parametrize("mode", ["fp16", "int8-cache", "int8-qdq"])
def test_dynamic_plan_lines_pass_trtexec_85(mode):
    args = parse(trtexec_line(plan_engine(mode, "images", CHW, BatchProfile(1, 4, 8), FILES)))
    assert (args["--minShapes"], args["--optShapes"], args["--maxShapes"]) == (
        "images:1x3x256x128", "images:4x3x256x128", "images:8x3x256x128")
    assert check_shapes(args, {"images": [-1, *CHW]}) == []  # no "overriding shape to 1" warning


def test_dynamic_onnx_with_a_fixed_profile_still_gets_shapes():
    plan = plan_engine("dla0", "images", CHW, BatchProfile(2, 2, 2), FILES, dynamic=True)
    args = parse(trtexec_line(plan))
    assert args["--optShapes"] == "images:2x3x256x128"
    assert check_shapes(args, {"images": [-1, *CHW]}) == []


FLOAT_LAYERS = ["/conv1/conv/Conv", "/fc/fc.0/Gemm", "bad:name"]


@pytest.mark.parametrize("mode, constraint", [("int8-cache", "obey"), ("dla0", "prefer"), ("dla1", "prefer")])
def test_float_layers_are_pinned_to_fp16_in_implicit_int8_builds(mode, constraint):
    """The layers the INT8 search kept float have no Q/DQ; an implicit-INT8 engine gets them as FP16."""
    plan = plan_engine(mode, "images", CHW, BatchProfile(1, 1, 1), FILES, float_layers=FLOAT_LAYERS)
    args = parse(trtexec_line(plan))
    assert args["--precisionConstraints"] == constraint
    assert layer_precisions(args) == {"/conv1/conv/Conv": "fp16", "/fc/fc.0/Gemm": "fp16"}
    assert f"{constraint.upper()}_PRECISION_CONSTRAINTS" in plan.builder_flags
    assert len(plan.notes) == 1 and "bad:name" in plan.notes[0]  # trtexec would split it at ':'


@pytest.mark.parametrize("mode", ["fp16", "int8-qdq"])
def test_modes_without_a_calibration_cache_take_no_layer_precisions(mode):
    plan = plan_engine(mode, "images", CHW, BatchProfile(1, 1, 1), FILES, float_layers=FLOAT_LAYERS)
    args = parse(trtexec_line(plan))
    assert "--layerPrecisions" not in args and "--precisionConstraints" not in args
    assert plan.fp16_layers == () and not any("PRECISION" in f for f in plan.builder_flags)


def test_oracle_refuses_bad_layer_precisions():
    with pytest.raises(TrtexecRefused, match="no effect"):
        layer_precisions(parse('"$TRTEXEC" --layerPrecisions=a:fp16'))
    with pytest.raises(TrtexecRefused, match="Invalid layer precision"):
        layer_precisions(parse('"$TRTEXEC" --precisionConstraints=obey --layerPrecisions=a:half'))
    with pytest.raises(TrtexecRefused, match="precisionConstraints"):
        parse('"$TRTEXEC" --precisionConstraints=strict')


def _onnx_inputs(path):
    model = onnx.load(str(path))
    return {vi.name: [d.dim_value if d.HasField("dim_value") else -1 for d in vi.type.tensor_type.shape.dim]
            for vi in model.graph.input}


@pytest.mark.assets
@pytest.mark.parametrize("kwargs, dynamic", [({"batch": 2, "dla": True}, False),
                                             ({"dynamic_batch": "1:2:4"}, True)])
def test_exported_build_engine_sh_passes_trtexec_85(tmp_path, osnet_onnx, kwargs, dynamic):
    """Real bundles: the ONNX input trtexec will parse, and every line of their build_engine.sh."""
    pytest.importorskip("onnxslim", reason="exporting needs the export extra (not on the car)")
    from edgereid.export import export_bundle

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bundle = export_bundle(tmp_path / "b", onnx=str(osnet_onnx), target="xavier", precision="fp16",
                               progress=False, **kwargs)
    inputs = _onnx_inputs(bundle.path("onnx"))
    assert (inputs[next(iter(inputs))][0] == -1) is dynamic
    lines = script_lines(bundle.path("trtexec_script").read_text())
    assert len(lines) == (3 if not dynamic else 1)  # fp16 (+ dla0, dla1)
    for line in lines:
        args = parse(line)
        assert check_shapes(args, inputs) == []
        assert ("--minShapes" in args) is dynamic
