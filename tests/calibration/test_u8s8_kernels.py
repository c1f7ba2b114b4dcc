"""u8s8 models in ONNX Runtime's integer kernels: exact on CPUs whose kernels saturate.

ORT's AVX2 (no VNNI) u8s8 kernels add u8 x s8 products in int16 pairs that saturate with 8-bit
weights. The embedder asks ORT for exact products there (fakequant.EXACT_U8S8_CONFIG), and the cpu
QDQ form gives every weight user its own DequantizeLinear so that option can load. The last test
runs ORT's real AVX2 kernels on any x86 host under QEMU's Haswell CPU (no VNNI).
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgereid.benchmarks.conditions import parse_cpu_isa
from edgereid.calibration.fakequant import (
    EXACT_U8S8_CONFIG,
    add_integer_kernel_config,
    fake_quant_session,
    integer_kernel_config,
    ort_session,
)
from edgereid.calibration.qdq import quantize_qdq, unshare_weight_dequantizers
from edgereid.calibration.ranges import TensorRanges

ort = pytest.importorskip("onnxruntime")


def _save(nodes: list, weights: dict, path, channels: int = 16, hw: tuple = (4, 4)) -> None:
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", channels, *hw])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(v, k) for k, v in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def _shared_weight_net(path) -> dict:
    """Two 1x1 convs sharing one weight (as OSNet's channel gate shares its fc over 4 streams), added."""
    rng = np.random.default_rng(0)
    w = {"w": rng.normal(0, 0.5, (16, 16, 1, 1)).astype(np.float32)}
    w["w"][0, 0, 0, 0] = 2.0  # weights need all 8 bits: ORT's exact-products rewrite applies
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("Conv", ["r", "w"], ["a"], name="conv_a"),
        helper.make_node("Neg", ["x"], ["nx"], name="neg"),
        helper.make_node("Relu", ["nx"], ["rn"], name="relu_n"),
        helper.make_node("Conv", ["rn", "w"], ["b"], name="conv_b"),
        helper.make_node("Add", ["a", "b"], ["y"], name="add"),
    ]
    _save(nodes, w, path)
    return {"x": (-3.0, 3.0), "r": (0.0, 3.0), "nx": (-3.0, 3.0), "rn": (0.0, 3.0),
            "a": (-8.0, 8.0), "b": (-8.0, 8.0), "y": (-12.0, 12.0)}


def test_exact_products_are_asked_for_only_where_u8s8_saturates(monkeypatch):
    avx2 = parse_cpu_isa("flags\t\t: fpu sse4_1 avx avx2 fma\n", "x86_64")
    vnni = parse_cpu_isa("flags\t\t: fpu avx2 avx512f avx512_vnni\n", "x86_64")
    arm = parse_cpu_isa("Features\t: fp asimd asimddp\n", "aarch64")
    assert integer_kernel_config(avx2) == EXACT_U8S8_CONFIG == {"session.x64quantprecision": "1"}
    assert integer_kernel_config(vnni) == {} and integer_kernel_config(arm) == {}
    unreadable = parse_cpu_isa("", "")
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    assert integer_kernel_config(unreadable) == EXACT_U8S8_CONFIG  # x86 of unknown ISA: stay exact
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    assert integer_kernel_config(unreadable) == {}
    opts = add_integer_kernel_config(ort.SessionOptions(), avx2)
    assert opts.get_session_config_entry("session.x64quantprecision") == "1"


def test_cpu_form_gives_each_user_of_a_shared_weight_its_own_dequantizer(tmp_path):
    ranges = TensorRanges("minmax", _shared_weight_net(tmp_path / "f.onnx"))
    q = onnx.load(str(quantize_qdq(tmp_path / "f.onnx", tmp_path / "q.onnx", ranges, "cpu")))
    inits = {i.name for i in q.graph.initializer}
    weight_dqs = [n for n in q.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits]
    users = {dq.output[0]: [n.name for n in q.graph.node if dq.output[0] in n.input] for dq in weight_dqs}
    assert sorted(len(u) for u in users.values()) == [1, 1]  # conv_a and conv_b: one DQ each
    assert len({dq.input[0] for dq in weight_dqs}) == 2  # and one weight copy each
    x = np.random.default_rng(1).normal(0, 1.5, (2, 16, 4, 4)).astype(np.float32)
    sim = fake_quant_session(q).run(None, {"x": x})[0]
    # the same math as the shared form: the fake-quant of the float model's one weight
    config = add_integer_kernel_config(ort.SessionOptions(), {"u8s8_saturates": True})
    exact = ort_session(q.SerializeToString(), config, ["CPUExecutionProvider"], ort).run(None, {"x": x})[0]
    assert np.abs(exact - sim).max() <= 2 * 24.0 / 255


def test_shared_weights_break_orts_exact_products_option(tmp_path, monkeypatch):
    """What the unsharing prevents: ORT 1.32's s8->u8 rewrite fails on a weight two convs share."""
    from edgereid.calibration import qdq

    ranges = TensorRanges("minmax", _shared_weight_net(tmp_path / "f.onnx"))
    monkeypatch.setattr(qdq, "unshare_weight_dequantizers", lambda model: 0)  # ORT's own QDQ form
    shared = onnx.load(str(quantize_qdq(tmp_path / "f.onnx", tmp_path / "shared.onnx", ranges, "cpu")))
    monkeypatch.undo()
    config = add_integer_kernel_config(ort.SessionOptions(), {"u8s8_saturates": True})
    try:
        ort_session(shared.SerializeToString(), config, ["CPUExecutionProvider"], ort)
    except Exception as exc:  # noqa: BLE001 - ORT's own exception type
        assert "replace the existing tensor" in str(exc)
    else:
        pytest.skip(f"onnxruntime {ort.__version__} on {platform.machine()} loads shared weights with the option")
    assert unshare_weight_dequantizers(shared) == 1
    ort_session(shared.SerializeToString(), config, ["CPUExecutionProvider"], ort)  # loads now


# -- ORT's AVX2 kernels, emulated -------------------------------------------------------------------

QEMU = shutil.which("qemu-x86_64")

_IN_HASWELL = textwrap.dedent("""
    import json, sys
    import numpy as np, onnxruntime as ort
    from edgereid.calibration.fakequant import EXACT_U8S8_CONFIG, fake_quant_session, ort_session
    x = np.load(sys.argv[1]); out = {}
    for path in sys.argv[2:]:
        sim = fake_quant_session(path).run(None, {"x": x})[0]
        for tag, config in (("plain", {}), ("exact", EXACT_U8S8_CONFIG)):
            opts = ort.SessionOptions()
            for k, v in config.items():
                opts.add_session_config_entry(k, v)
            y = ort_session(path, opts, ["CPUExecutionProvider"], ort).run(None, {"x": x})[0]
            out[path + ":" + tag] = float(np.abs(y - sim).max())
    print(json.dumps(out))
""")


@pytest.mark.skipif(QEMU is None or platform.machine() != "x86_64",
                    reason="needs qemu-x86_64 (apt-get install qemu-user; make test installs it where apt can)")
def test_avx2_kernels_saturate_with_8bit_weights_unless_asked_for_exact_products(tmp_path):
    """Run under QEMU's Haswell CPU (AVX2, no VNNI), whatever this host is. 16 input channels of value
    255 times weights of 127: each int16 pair sum (64770) saturates at 32767 in the u8s8 kernel."""
    w = {"w": np.ones((1, 16, 1, 1), np.float32)}
    _save([helper.make_node("Conv", ["x", "w"], ["y"], name="conv")], w, tmp_path / "f.onnx")
    ranges = TensorRanges("minmax", {"x": (0.0, 1.0), "y": (0.0, 20.0)})
    eight = quantize_qdq(tmp_path / "f.onnx", tmp_path / "q8.onnx", ranges, "cpu", reduce_range=False)
    seven = quantize_qdq(tmp_path / "f.onnx", tmp_path / "q7.onnx", ranges, "cpu", reduce_range=True)
    np.save(tmp_path / "x.npy", np.ones((1, 16, 4, 4), np.float32))
    script = tmp_path / "run.py"
    script.write_text(_IN_HASWELL)
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([QEMU, "-cpu", "Haswell", sys.executable, str(script), str(tmp_path / "x.npy"),
                           str(eight), str(seven)], capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    err = json.loads(proc.stdout.strip().splitlines()[-1])
    step = 20.0 / 255
    assert err[f"{eight}:plain"] > 5.0  # y = 16 computed as ~8: the saturation is real
    assert err[f"{eight}:exact"] <= step  # the embedder's option: exact u8u8 products
    assert err[f"{seven}:plain"] <= step  # 7-bit weights (--cpu-isa avx2): exact in the fast kernel
    assert err[f"{seven}:exact"] <= step  # and the option leaves them there


def test_an_old_bundle_with_shared_weights_still_runs_with_a_warning(tmp_path, monkeypatch, caplog):
    """A model ORT cannot rewrite for exact products (exported before the unsharing) is not refused on a
    CPU that saturates: the embedder runs it in the plain kernels and says why accuracy may suffer."""
    from edgereid.benchmarks import conditions
    from edgereid.calibration import qdq
    from edgereid.preprocess import PreprocessSpec
    from edgereid.runtime.embedder import OnnxruntimeEmbedder

    ranges = TensorRanges("minmax", _shared_weight_net(tmp_path / "f.onnx"))
    monkeypatch.setattr(qdq, "unshare_weight_dequantizers", lambda model: 0)
    shared = quantize_qdq(tmp_path / "f.onnx", tmp_path / "shared.onnx", ranges, "cpu")
    real_host_saturates = conditions.cpu_isa().get("u8s8_saturates")
    monkeypatch.setattr(conditions, "cpu_isa", lambda: {"isa": "avx2", "u8s8_saturates": True})
    try:
        ort_session(str(shared), add_integer_kernel_config(ort.SessionOptions()), ["CPUExecutionProvider"], ort)
        pytest.skip(f"onnxruntime {ort.__version__} on {platform.machine()} applies the option to shared weights")
    except Exception:  # noqa: BLE001 - ORT's own exception type
        pass
    x = np.random.default_rng(2).normal(0, 1.5, (2, 16, 4, 4)).astype(np.float32)
    with caplog.at_level("WARNING"), OnnxruntimeEmbedder(str(shared), PreprocessSpec(4, 4),
                                                         providers=["CPUExecutionProvider"], l2=False) as e:
        y = e.infer(x)
    assert "saturating kernels" in caplog.text and "--cpu-isa avx2" in caplog.text
    assert y.shape == (2, 16 * 16) and np.isfinite(y).all()
    if not real_host_saturates:  # a VNNI / ARM host's kernels: still the right numbers
        sim = fake_quant_session(str(shared)).run(None, {"x": x})[0].reshape(2, -1)
        assert np.abs(y - sim).max() <= 2 * 24.0 / 255


@pytest.mark.parametrize("saturates", [False, True])
def test_a_model_onnxruntime_cannot_load_is_one_backend_error_on_any_cpu(tmp_path, monkeypatch, saturates):
    from edgereid.benchmarks import conditions
    from edgereid.errors import BackendError
    from edgereid.preprocess import PreprocessSpec
    from edgereid.runtime.embedder import OnnxruntimeEmbedder

    monkeypatch.setattr(conditions, "cpu_isa", lambda: {"isa": "avx2" if saturates else "avx512_vnni",
                                                        "u8s8_saturates": saturates})
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx model")
    with pytest.raises(BackendError, match="cannot load"):
        OnnxruntimeEmbedder(str(broken), PreprocessSpec(4, 4), providers=["CPUExecutionProvider"]).activate()
