"""Which ONNX operators the Horizon X3 (march ``bernoulli2``) runs on its BPU, which on its CPU.

The rules are DATA: one :class:`OpRule` per operator type, each with its limits (named checks
from :mod:`edgereid.x3.placement`) and the row of Horizon's document it was taken from. Change a
limit here, never in code. An operator on neither list cannot run on the X3 at all.

Source of every rule: :data:`HORIZON_X3_OPS`, HorizonRDK/rdk_x3_doc
``docs/toolchain_development/intermediate/supported_op_list.md``, section "RDK X3支持的ONNX算子列表"
(one row per operator: "BPU加速" with its "X3 BPU支持约束", or "CPU计算"; "CPU计算※" = not
integrated, i.e. unsupported here). A BPU operator whose constraint fails falls back to the CPU
("如果不满足约束条件，则会在CPU进行计算", same document, "术语概念"). ``doc`` quotes the constraint
(translated); ``note`` says where our reading goes beyond the words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Tuple

HORIZON_X3_OPS = (
    "HorizonRDK/rdk_x3_doc docs/toolchain_development/intermediate/supported_op_list.md "
    "(RDK X3支持的ONNX算子列表)"
)
HORIZON_X3_TOOLCHAIN = "Horizon OpenExplorer X3 hb_mapper model conversion guide (issue 4 Facts)"

BPU = "bpu"
CPU = "cpu"
UNSUPPORTED = "unsupported"

# Graph-level limits. Opsets: supported_op_list.md "其他注意事项" (opset10 and opset11); the rest
# from HORIZON_X3_TOOLCHAIN.
ALLOWED_OPSETS = (10, 11)
MAX_IR_VERSION = 7
MAX_OUTPUTS = 32
MAX_CHANNELS = 2048  # Add / Mul / Concat / Conv (one group) "C <= 2048"
MAX_CHANNELS_PLAIN_CONV = 4096  # Conv: "普通卷积，可以放宽至<=4096"
MAX_CHW_ELEMENTWISE = 8192  # Cos / Sin / Sqrt / Tanh / Softplus / Sigmoid: "<= 8192"


@dataclass(frozen=True)
class OpRule:
    """Where one operator type runs and under which limits.

    Attributes:
        op_type: ONNX operator type.
        device: ``"bpu"`` or ``"cpu"``.
        limits: (check name, value) pairs, all must pass for the BPU; a BPU rule whose limit
            fails sends the node to the CPU (hb_mapper's fallback), named in the report.
        doc: the document's constraint for this row, translated (what the limits encode).
        source: where the rule comes from.
        note: what is assumed beyond the source.
    """

    op_type: str
    device: str
    limits: Tuple[Tuple[str, object], ...] = ()
    doc: str = ""
    source: str = HORIZON_X3_OPS
    note: str = ""

    def describe(self) -> str:
        lim = ", ".join(f"{k}={'<listed forms>' if isinstance(v, dict) else v}" for k, v in self.limits)
        return f"{self.op_type}->{self.device}" + (f" [{lim}]" if lim else "")

    def citation(self) -> str:
        """'<document> row <op>: <constraint>' for reports."""
        return f"{self.source} row {self.op_type}" + (f": {self.doc}" if self.doc else "")


def _bpu(op: str, *limits: Tuple[str, object], doc: str = "", note: str = "") -> OpRule:
    return OpRule(op, BPU, tuple(limits), doc, HORIZON_X3_OPS, note)


def _cpu(op: str, doc: str = "CPU计算", note: str = "") -> OpRule:
    return OpRule(op, CPU, (), doc, HORIZON_X3_OPS, note)


# MatMul forms the document lists, in its notation: (first input, second input) per kind of
# operands. "weight": feature map x constant; "weight_first": constant x feature map;
# "features": two feature maps. BxMxK x KxN (B>=1) and 1xBxMxK x KxN (B>=1) include B = 1.
MATMUL_FORMS = {
    "weight": (
        ("K", "KxN"), ("K", "1xKxN"), ("K", "1x1xKxN"),
        ("MxK", "K"), ("MxK", "KxN"), ("MxK", "1x1xKxN"),
        ("1xMxK", "K"), ("1xMxK", "1xKxN"), ("1xMxK", "KxN"), ("BxMxK", "KxN"),
        ("1x1xMxK", "K"), ("1x1xMxK", "1xKxN"), ("1x1xMxK", "1x1xKxN"), ("1x1xMxK", "KxN"),
        ("1xBxMxK", "KxN"), ("AxBxMxK", "KxN"),
    ),
    "weight_first": (("1xBxMxK", "1x1xKxN"),),
    "features": (("1x1xMxK", "1x1xKxN"), ("1xBxMxK", "1x1xKxN")),
}

_CH = ("channels_max", MAX_CHANNELS)
_CHW = ("chw_max", MAX_CHW_ELEMENTWISE)
_CHW_DOC = "for a 1xCxHxW input only C*H*W <= 8192"

BPU_RULES: Dict[str, OpRule] = {
    r.op_type: r
    for r in (
        _bpu("Conv", ("rank", 4), ("kernel_max", 7), ("conv_channels", (MAX_CHANNELS, MAX_CHANNELS_PLAIN_CONV)),
             ("kernel_volume_max", 32768),
             doc="kernel HxW in [1,7]x[1,7]; channels per group <= 2048 (<= 4096 for plain convs); "
                 "one kernel HxWxC <= 32768",
             note="C of the kernel read as input channels per group; stride/dilation rules not checked"),
        _bpu("Gemm", ("gemm_as_conv", True), ("gemm_channels", (MAX_CHANNELS, 16384)),
             doc="converted to Conv; C <= 16384 when H = W = 1, else C <= 2048",
             note="B must be a constant (it becomes the conv weight); a 2-D input is N x C with H = W = 1"),
        _bpu("GlobalAveragePool", ("rank", 4), ("hw_max", 8192), doc="H*W <= 8192"),
        _bpu("GlobalMaxPool", ("rank", 4), ("h_and_w_max", 1024), doc="H, W in [1, 1024]"),
        _bpu("MaxPool", ("rank", 4), ("kernel_max", 64), doc="kernel in [1,64]x[1,64], stride in [1,185]"),
        _bpu("AveragePool", ("rank", 4), ("kernel_max", 7), doc="kernel in [1,7]x[1,7], stride in [1,185]"),
        _bpu("Add", ("add_forms", True), _CH,
             doc="C <= 2048; NCHW + NCHW, or NCHW + NC11 with both inputs produced by other ops "
                 "(or the resnet short-cut fused into a conv)"),
        _bpu("Sum", ("add_forms", True), _CH, doc="as Add"),
        _bpu("Mul", ("mul_forms", True), _CH,
             doc="both inputs 4-D, C <= 2048; only 1xCxHxW x 1xCxHxW, x 1xCx1x1, x 1x1x1x1; inputs must not be 0",
             note="'must not be 0' cannot be checked statically"),
        _bpu("Div", ("div_forms", True), _CH,
             doc="both inputs feature maps (no constant input); shapes as Mul"),
        _bpu("Concat", _CH, doc="input/output C <= 2048", note="no rank or axis limit is stated"),
        _bpu("Split", ("rank", 4), ("split_axis", (1, 2, 3)), doc="NCHW input, split along C, H or W"),
        _bpu("Slice", doc="no limit"),
        _bpu("Sigmoid", ("sigmoid_aligned", MAX_CHW_ELEMENTWISE),
             doc="1xCxHxW: min(shape padded W->8k C->4k, shape padded C->32k) <= 8192"),
        _bpu("Tanh", _CHW, doc=_CHW_DOC),
        _bpu("Sqrt", _CHW, doc=_CHW_DOC),
        _bpu("Cos", _CHW, doc=_CHW_DOC),
        _bpu("Sin", _CHW, doc=_CHW_DOC),
        _bpu("Softplus", _CHW, doc=_CHW_DOC),
        _bpu("Exp", doc="no limit listed"),
        _bpu("Reciprocal", doc="no limit listed"),
        _bpu("Pow", ("scalar_input", 1), doc="the exponent (second input) a single value"),
        _bpu("ReduceMean", ("rank", 4), ("reduce_axes", (2, 3)), doc="4-D input, axes = [2, 3]"),
        _bpu("ArgMax", ("rank", 4), ("argmax_c", 64), doc="4-D NCHW, axis = 1, C <= 64"),
        _bpu("MatMul", ("matmul_form", MATMUL_FORMS),
             doc="feature x constant: K x KxN .. 1x1xMxK x 1x1xKxN, BxMxK x KxN, 1xBxMxK x KxN, AxBxMxK x KxN; "
                 "constant x feature: 1xBxMxK x 1x1xKxN (B>1); feature x feature: 1xBxMxK x 1x1xKxN (B>=1)"),
        _bpu("BatchNormalization", ("after_conv", True), doc="fused into the preceding conv"),
        _bpu("Relu", doc="fused into the preceding conv",
             note="a Relu elsewhere (after Add, MatMul) read as BPU: it equals Clip(0, inf), 'Clip: 无限制'"),
        _bpu("Clip", doc="no limit"),
        _bpu("LeakyRelu", doc="no limit"),
        _bpu("PRelu", doc="no limit listed"),
        _bpu("Resize", ("rank", 4), doc="4-D NCHW, resize over H and W only, nearest or linear"),
        _bpu("Upsample", ("rank", 4), doc="as Resize"),
        _bpu("Pad", ("rank", 4), doc="mode constant, pads on H and W only"),
        _bpu("DepthToSpace", ("blocksize", 2), doc="H and W only, blocksize 2"),
        _bpu("SpaceToDepth", ("blocksize", 2), doc="H and W only, blocksize 2"),
    )
}

CPU_RULES: Dict[str, OpRule] = {
    r.op_type: r
    for r in (
        _cpu("Reshape", note="folded away only in constant subgraphs (其他注意事项)"),
        _cpu("Flatten"),
        _cpu("Transpose"),
        _cpu("Squeeze", note="removed only inside constant subgraphs"),
        _cpu("Unsqueeze", note="removed only inside constant subgraphs"),
        _cpu("Softmax", doc="CPU by default; BPU only via run_on_bpu as a 4-D axis=1 model output",
             note="we never set run_on_bpu"),
        _cpu("Sub"),
        _cpu("Gather"),
        _cpu("Expand"),
        _cpu("Tile"),
        _cpu("Cast"),
        _cpu("ReduceSum"),
        _cpu("ReduceL2"),
        _cpu("ReduceMax"),
        _cpu("ReduceMin"),
        _cpu("LpNormalization"),
        _cpu("InstanceNormalization"),
        _cpu("Max"),
        _cpu("Min"),
        _cpu("Neg"),
        _cpu("Abs"),
        _cpu("Log"),
        _cpu("Floor"),
        _cpu("Ceil"),
        _cpu("Elu"),
        _cpu("HardSigmoid"),
        _cpu("Erf"),
        _cpu("Equal"),
        _cpu("Greater"),
        _cpu("Less"),
        _cpu("Where"),
        _cpu("NonZero"),
        _cpu("TopK"),
        _cpu("Identity", note="removed by simplification"),
        _cpu("Dropout", doc="removed at inference (listed BPU: 会被移除优化)"),
        _cpu("Constant", doc="constant-folded into stored values"),
        _cpu("Shape", doc="constant-folded into stored values"),
    )
}

# Nodes that carry no work and never split the graph.
FREE_OPS = frozenset({"Constant", "Identity", "Dropout", "Shape"})


@dataclass(frozen=True)
class RuleTable:
    """The BPU and CPU lists together, so a caller can swap in another chip's table in tests."""

    bpu: Dict[str, OpRule] = field(default_factory=lambda: dict(BPU_RULES))
    cpu: Dict[str, OpRule] = field(default_factory=lambda: dict(CPU_RULES))

    def known(self, op_type: str) -> bool:
        return op_type in self.bpu or op_type in self.cpu

    def op_types(self) -> frozenset:
        return frozenset(self.bpu) | frozenset(self.cpu)

    def rule(self, op_type: str):
        return self.bpu.get(op_type) or self.cpu.get(op_type)


X3_RULES = RuleTable()
