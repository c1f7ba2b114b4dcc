"""Which ONNX operators the Horizon X3 (march ``bernoulli2``) runs on its BPU, which on its CPU.

The rules are DATA: one :class:`OpRule` per operator type, each with its limits (named checks
from :mod:`edgereid.x3.placement`) and the source it was taken from. Change a limit here, never
in code. An operator on neither list cannot run on the X3 at all.

Sources (checked 2026-11 against what could be read here; see docs/export-x3.md):
- ``HORIZON_X3_OPS``: Horizon OpenExplorer X3 toolchain (hb_mapper for bernoulli2), "supported
  ONNX operator list" for RDK X3, as summarised in edgereid issue 4 ("Facts of the X3
  toolchain"): Conv (kernel <= 7x7, C <= 2048), Gemm as conv, GlobalAveragePool (H*W <= 8192),
  MaxPool, Add/Mul only in 4-D broadcast forms (C <= 2048), Concat (C <= 2048), Sigmoid
  (C*H*W <= 8192), ReduceMean only over axes [2, 3], MatMul only in listed forms; Reshape,
  Flatten, Transpose, ReduceSum/L2, LpNormalization, Sub, Gather, Expand run on the CPU.
- ``HORIZON_X3_MODEL_ZOO``: operators that D-Robotics' rdk_model_zoo X3 (bernoulli2) models
  compile onto the BPU (ResNet/MobileNet/YOLOv5 samples: Relu, Clip/ReLU6, AveragePool, Resize,
  Split, Slice of feature maps); limits as for Conv where they touch channels.
The ``note`` of a rule says where our reading is an assumption (e.g. MatMul's "listed forms").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Tuple

HORIZON_X3_OPS = "Horizon OpenExplorer X3 (bernoulli2) supported ONNX operator list (issue 4 Facts)"
HORIZON_X3_MODEL_ZOO = "D-Robotics rdk_model_zoo bernoulli2 models (ops seen compiled on the X3 BPU)"
HORIZON_X3_TOOLCHAIN = "Horizon OpenExplorer X3 hb_mapper model conversion guide (issue 4 Facts)"

BPU = "bpu"
CPU = "cpu"
UNSUPPORTED = "unsupported"

# Graph-level limits of the X3 toolchain (hb_mapper checker), source HORIZON_X3_TOOLCHAIN.
ALLOWED_OPSETS = (10, 11)
MAX_IR_VERSION = 7
MAX_OUTPUTS = 32
MAX_CHANNELS = 2048


@dataclass(frozen=True)
class OpRule:
    """Where one operator type runs and under which limits.

    Attributes:
        op_type: ONNX operator type.
        device: ``"bpu"`` or ``"cpu"``.
        limits: (check name, value) pairs, all must pass for the BPU; a BPU rule whose limit
            fails sends the node to the CPU (hb_mapper's fallback), named in the report.
        source: where the rule comes from.
        note: what is assumed beyond the source.
    """

    op_type: str
    device: str
    limits: Tuple[Tuple[str, object], ...] = ()
    source: str = HORIZON_X3_OPS
    note: str = ""

    def describe(self) -> str:
        lim = ", ".join(f"{k}={v}" for k, v in self.limits)
        return f"{self.op_type}->{self.device}" + (f" [{lim}]" if lim else "")


def _bpu(op: str, *limits: Tuple[str, object], source: str = HORIZON_X3_OPS, note: str = "") -> OpRule:
    return OpRule(op, BPU, tuple(limits), source, note)


def _cpu(op: str, source: str = HORIZON_X3_OPS, note: str = "") -> OpRule:
    return OpRule(op, CPU, (), source, note)


_CH = ("channels_max", MAX_CHANNELS)

BPU_RULES: Dict[str, OpRule] = {
    r.op_type: r
    for r in (
        _bpu("Conv", ("rank", 4), ("kernel_max", 7), _CH),
        _bpu("Gemm", ("gemm_as_conv", True), _CH, note="mapped to a 1x1 conv; B must be a constant"),
        _bpu("GlobalAveragePool", ("rank", 4), ("hw_max", 8192), _CH),
        _bpu("MaxPool", ("rank", 4), _CH),
        _bpu("Add", ("broadcast_4d", True), _CH),
        _bpu("Mul", ("broadcast_4d", True), _CH),
        _bpu("Concat", ("rank", 4), ("concat_axis", 1), _CH, note="channel concat of 4-D maps assumed"),
        _bpu("Sigmoid", ("rank", 4), ("chw_max", 8192)),
        _bpu("ReduceMean", ("rank", 4), ("reduce_axes", (2, 3))),
        _bpu(
            "MatMul",
            ("matmul_form", True),
            _CH,
            note="'listed forms' read as: 4-D x 4-D with equal leading dims, or a constant right side",
        ),
        _bpu("BatchNormalization", ("rank", 4), _CH, note="folded into the preceding conv by hb_mapper"),
        _bpu("Relu", ("rank", 4), source=HORIZON_X3_MODEL_ZOO),
        _bpu("Clip", ("rank", 4), source=HORIZON_X3_MODEL_ZOO),
        _bpu("LeakyRelu", ("rank", 4), source=HORIZON_X3_MODEL_ZOO),
        _bpu("PRelu", ("rank", 4), source=HORIZON_X3_MODEL_ZOO),
        _bpu("AveragePool", ("rank", 4), ("kernel_max", 7), _CH, source=HORIZON_X3_MODEL_ZOO),
        _bpu("GlobalMaxPool", ("rank", 4), ("hw_max", 8192), _CH, source=HORIZON_X3_MODEL_ZOO),
        _bpu("Resize", ("rank", 4), source=HORIZON_X3_MODEL_ZOO),
        _bpu("Upsample", ("rank", 4), source=HORIZON_X3_MODEL_ZOO),
        _bpu("Split", ("rank", 4), source=HORIZON_X3_MODEL_ZOO),
        _bpu("Slice", ("rank", 4), source=HORIZON_X3_MODEL_ZOO),
    )
}

CPU_RULES: Dict[str, OpRule] = {
    r.op_type: r
    for r in (
        _cpu("Reshape"),
        _cpu("Flatten"),
        _cpu("Transpose"),
        _cpu("ReduceSum"),
        _cpu("ReduceL2"),
        _cpu("LpNormalization"),
        _cpu("Sub"),
        _cpu("Gather"),
        _cpu("Expand"),
        _cpu("Div", note="assumed CPU like Sub"),
        _cpu("Sqrt", note="assumed CPU"),
        _cpu("Pow", note="assumed CPU"),
        _cpu("Exp", note="assumed CPU"),
        _cpu("Softmax", note="assumed CPU on bernoulli2"),
        _cpu("ReduceMax", note="assumed CPU"),
        _cpu("Squeeze", note="a reshape; assumed CPU"),
        _cpu("Unsqueeze", note="a reshape; assumed CPU"),
        _cpu("Shape", note="folded away for static shapes"),
        _cpu("Cast", note="assumed CPU"),
        _cpu("Tile", note="assumed CPU"),
        _cpu("Pad", note="assumed CPU"),
        _cpu("Identity", note="removed by simplification"),
        _cpu("Dropout", note="removed by simplification"),
        _cpu("Constant", note="folded into initializers"),
    )
}

# Nodes that carry no work and never split the graph.
FREE_OPS = frozenset({"Constant", "Identity", "Dropout"})


@dataclass(frozen=True)
class RuleTable:
    """The BPU and CPU lists together, so a caller can swap in another chip's table in tests."""

    bpu: Dict[str, OpRule] = field(default_factory=lambda: dict(BPU_RULES))
    cpu: Dict[str, OpRule] = field(default_factory=lambda: dict(CPU_RULES))

    def known(self, op_type: str) -> bool:
        return op_type in self.bpu or op_type in self.cpu

    def op_types(self) -> frozenset:
        return frozenset(self.bpu) | frozenset(self.cpu)


X3_RULES = RuleTable()
