"""Device-faithful INT8 simulation: a QDQ model run as float fake-quantization, on any host.

Why: with its default graph optimizations ONNX Runtime fuses ``DequantizeLinear -> Conv ->
QuantizeLinear`` into its integer kernels (QLinearConv, u8s8 / s8s8 GEMM). On x86 CPUs without
VNNI those kernels compute u8 x s8 products in int16 pairs that saturate (ONNX Runtime's
quantization guide, "reduce_range"; OpenVINO's "saturation issue" note), so the same QDQ model
gives a host-dependent figure (OSNet on an AVX2-only host: cosine 0.64 vs 0.99). TensorRT and
the X3 BPU accumulate in int32 and never saturate: what they compute is exactly
``DQ(Q(x)) -> float op``, i.e. fake-quantization. Keeping the Q and DQ nodes as separate float
ops (``session.disable_quant_qdq``, measured equal to a numpy reference in
tests/calibration/test_calib_fakequant.py) gives that figure on every x86 and ARM host.

This module is Python-3.8 compatible and needs only numpy (onnxruntime is imported lazily).
"""

from __future__ import annotations

from typing import Any, Dict, Sequence

# ORT's kOrtSessionOptionsDisableQuantQDQ (onnxruntime_session_options_config_keys.h):
# "1" = do not fuse or move QuantizeLinear/DequantizeLinear nodes.
FAKE_QUANT_CONFIG: Dict[str, str] = {"session.disable_quant_qdq": "1"}
FAKE_QUANT_LEVEL = "ORT_ENABLE_BASIC"  # no layout/NCHWc rewrites: same float graph on every host

# ONNX Runtime's WeightBiasQuantization graph transformer (onnxruntime/core/optimizer/qdq_transformer/
# weight_bias_quantization.cc; in 1.32, not in 1.19) quantizes the float weight of any Conv/Gemm whose
# input comes from a DequantizeLinear and whose output reaches a QuantizeLinear (through Relu/Clip at
# most) to per-tensor int8, and its bias to int32. Those are exactly the layers an accuracy-aware u8s8
# model keeps in float, so without this the "float" layers ran in per-tensor INT8 in ORT's kernels
# (OSNet on unseen PKU ids: cosine between the simulation and the kernels 0.9976 -> 0.9992).
KEEP_FLOAT_LAYERS_DISABLED_OPTIMIZERS = ("WeightBiasQuantization",)

# ONNX Runtime's kOrtSessionOptionsAvx2PrecisionMode (onnxruntime_session_options_config_keys.h):
# "1" = on CPUs whose u8s8 kernels saturate (MlasPlatformU8S8Overflow: x86 without VNNI), its
# Avx2WeightS8ToU8Transformer (onnxruntime/core/optimizer/qdq_transformer/avx2_weight_s8_to_u8.cc)
# converts the int8 weights of QLinearConv / QLinearMatMul / QGemm to uint8 when any value lies outside
# [-64, 64], so they run in the slower but exact u8u8 kernels. 7-bit weights (reduce_range) never
# qualify and keep the fast u8s8 path. Measured with ORT 1.32 in AVX2 kernels (QEMU -cpu Haswell on a
# VNNI host): an 8-bit-weight OSNet bundle gave cosine 0.94-1.0 to the exact integers without it,
# bit-exact with it; the 7-bit bundle bit-exact either way. Set only where the kernels saturate: on
# the VNNI host it also converts (MLAS reports its u8u8 and u8s8 kernels differ) and costs speed.
EXACT_U8S8_CONFIG: Dict[str, str] = {"session.x64quantprecision": "1"}

SIMULATED = "simulated INT8: the QDQ model as float fake-quantization (int32-exact, as TensorRT / the BPU)"
ORT_KERNELS = "ONNX Runtime integer kernels on this host (what a --target cpu bundle really runs)"


def fake_quant_options(ort: Any = None, threads: int | None = None) -> Any:
    """``onnxruntime.SessionOptions`` that run a QDQ model as float fake-quantization."""
    if ort is None:
        from edgereid.lazy import require

        ort = require("onnxruntime", "the INT8 simulation")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, FAKE_QUANT_LEVEL)
    for key, value in FAKE_QUANT_CONFIG.items():
        opts.add_session_config_entry(key, value)
    if threads:
        opts.intra_op_num_threads = int(threads)
    return opts


def integer_kernel_config(host_isa: Dict[str, Any] | None = None) -> Dict[str, str]:
    """Session config entries for running a u8s8 model in ORT's integer kernels on this host.

    ``host_isa``: :func:`edgereid.benchmarks.conditions.cpu_isa` (None = read this host's). Only
    where u8s8 saturates (x86 without VNNI) ORT is asked for exact products (see
    :data:`EXACT_U8S8_CONFIG`): a bundle built for a VNNI CPU (8-bit weights) then runs exactly on
    an AVX2 car computer, slower, instead of fast and wrong.
    """
    if host_isa is None:
        from edgereid.benchmarks.conditions import cpu_isa

        host_isa = cpu_isa()
    saturates = host_isa.get("u8s8_saturates")
    if saturates is None:  # ISA unreadable: exact on x86 (a VNNI CPU only loses speed), nothing elsewhere
        import platform

        saturates = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")
    return dict(EXACT_U8S8_CONFIG) if saturates else {}


def add_integer_kernel_config(opts: Any, host_isa: Dict[str, Any] | None = None) -> Any:
    """``opts`` with :func:`integer_kernel_config`'s entries added (returned for chaining)."""
    for key, value in integer_kernel_config(host_isa).items():
        opts.add_session_config_entry(key, value)
    return opts


def ort_session(model: Any, opts: Any, providers: Sequence[str], ort: Any = None) -> Any:
    """``onnxruntime.InferenceSession`` that keeps a QDQ model's float layers float.

    ``disabled_optimizers`` names a transformer the running ORT may not have; ORT ignores unknown
    names (checked on 1.19 and 1.32).
    """
    if ort is None:
        from edgereid.lazy import require

        ort = require("onnxruntime", "ONNX Runtime sessions")
    return ort.InferenceSession(model, opts, providers=list(providers),
                                disabled_optimizers=list(KEEP_FLOAT_LAYERS_DISABLED_OPTIMIZERS))


def fake_quant_session(model: Any, threads: int | None = None) -> Any:
    """An ORT CPU session of ``model`` (path, bytes or ModelProto) in fake-quant mode."""
    from edgereid.lazy import require

    ort = require("onnxruntime", "the INT8 simulation")
    if hasattr(model, "SerializeToString"):
        model = model.SerializeToString()
    return ort.InferenceSession(model if isinstance(model, bytes) else str(model),
                                fake_quant_options(ort, threads), providers=["CPUExecutionProvider"])


def fake_quant_session_with_outputs(model: Any, names: Sequence[str], threads: int | None = None) -> Any:
    """A fake-quant session of a copy of ModelProto ``model`` that also outputs the tensors ``names``.

    For per-layer measurements (the sensitivity report, bias correction): the QDQ model keeps the
    float model's tensor names, so the same names read both.
    """
    copy = type(model)()
    copy.CopyFrom(model)
    present = {o.name for o in copy.graph.output}
    for name in names:
        if name not in present:
            copy.graph.output.add().name = name
    return fake_quant_session(copy, threads)
