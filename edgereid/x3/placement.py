"""BPU placement report: every node -> BPU or CPU with the rule that decided it.

Reads a static-shape ONNX graph, applies :mod:`edgereid.x3.ops` (rules as data, checks by name
here), counts the CPU and BPU subgraphs (each CPU op splits the model; the X3 pays a BPU<->CPU
hand-over per boundary) and the share of multiply-accumulates (MACs) on the BPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from edgereid.onnx_macs import node_macs
from edgereid.x3.ops import BPU, CPU, FREE_OPS, UNSUPPORTED, X3_RULES, RuleTable


@dataclass
class NodeView:
    """One ONNX node with what the checks need (shapes are None when unknown)."""

    name: str
    op_type: str
    attrs: Dict[str, object]
    inputs: List[str]
    outputs: List[str]
    in_shapes: List[Optional[List[int]]]
    out_shapes: List[Optional[List[int]]]
    const_inputs: Dict[int, np.ndarray]


@dataclass
class Placement:
    node: str
    op_type: str
    device: str  # bpu | cpu | unsupported
    rule: str
    reason: str
    macs: int


def graph_views(model) -> List[NodeView]:
    """NodeViews of ``model`` (onnx.ModelProto) after ONNX shape inference."""
    import onnx
    from onnx import numpy_helper

    from edgereid.x3.graphedit import infer_shapes_light

    g = model.graph
    shapes: Dict[str, Optional[List[int]]] = dict(infer_shapes_light(model))
    consts = {init.name: numpy_helper.to_array(init) for init in g.initializer}
    for node in g.node:
        if node.op_type == "Constant" and node.attribute:
            try:
                consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
            except Exception:  # non-tensor constants are irrelevant to placement
                pass
    for name, arr in consts.items():
        shapes.setdefault(name, list(arr.shape))
    views = []
    for i, node in enumerate(g.node):
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        views.append(
            NodeView(
                name=node.name or f"{node.op_type}_{i}",
                op_type=node.op_type,
                attrs=attrs,
                inputs=list(node.input),
                outputs=list(node.output),
                in_shapes=[shapes.get(x) for x in node.input],
                out_shapes=[shapes.get(x) for x in node.output],
                const_inputs={j: consts[x] for j, x in enumerate(node.input) if x in consts},
            )
        )
    return views


# -- named checks: (view, limit) -> None when it passes, else the reason -----------------------
def _in0(v: NodeView) -> Optional[List[int]]:
    return v.in_shapes[0] if v.in_shapes else None


def _check_rank(v: NodeView, rank: object) -> Optional[str]:
    s = _in0(v)
    return None if s is not None and len(s) == rank else f"input rank {None if s is None else len(s)} != {rank}"


def _check_kernel(v: NodeView, kmax: object) -> Optional[str]:
    k = v.attrs.get("kernel_shape")
    if k is None and 1 in v.const_inputs:
        k = list(v.const_inputs[1].shape[2:])
    if k is None:
        return None
    return None if max(k) <= kmax else f"kernel {list(k)} > {kmax}x{kmax}"


def _check_channels(v: NodeView, cmax: object) -> Optional[str]:
    chans = [s[1] for s in v.in_shapes + v.out_shapes if s is not None and len(s) >= 2]
    big = [c for c in chans if c > cmax]
    return f"channels {max(big)} > {cmax}" if big else None


def _check_hw(v: NodeView, hw_max: object) -> Optional[str]:
    s = _in0(v)
    if s is None or len(s) != 4:
        return None
    return None if s[2] * s[3] <= hw_max else f"H*W {s[2] * s[3]} > {hw_max}"


def _check_chw(v: NodeView, chw_max: object) -> Optional[str]:
    s = _in0(v)
    if s is None or len(s) != 4:
        return None
    chw = s[1] * s[2] * s[3]
    return None if chw <= chw_max else f"C*H*W {chw} > {chw_max}"


def _check_reduce_axes(v: NodeView, axes: object) -> Optional[str]:
    got = v.attrs.get("axes")
    if got is None and 1 in v.const_inputs:
        got = v.const_inputs[1].tolist()
    rank = len(_in0(v) or [0] * 4)
    got = sorted(int(a) % rank for a in (got or []))
    return None if tuple(got) == tuple(axes) else f"reduces axes {got}, BPU takes only {list(axes)}"


def _check_broadcast_4d(v: NodeView, _: object) -> Optional[str]:
    shapes = v.in_shapes
    if any(s is None for s in shapes):
        return "unknown input shape"
    full = [s for s in shapes if len(s) == 4]
    if not full or any(len(s) not in (0, 4) and int(np.prod(s)) != 1 for s in shapes):
        return f"operands {shapes} are not 4-D"
    ref = max(full, key=lambda s: int(np.prod(s)))
    for s in shapes:
        if len(s) == 0 or int(np.prod(s)) == 1 or list(s) == list(ref):
            continue
        per_channel = s[1] == ref[1] and s[2] == 1 and s[3] == 1
        per_pixel = s[1] == 1 and s[2] == ref[2] and s[3] == ref[3]
        if not (per_channel or per_pixel):
            return f"broadcast {list(s)} against {list(ref)} is not a listed 4-D form"
    return None


def _check_concat_axis(v: NodeView, axis: object) -> Optional[str]:
    rank = len(_in0(v) or [0] * 4)
    return None if int(v.attrs.get("axis", 0)) % rank == axis else f"concat axis {v.attrs.get('axis')} != {axis}"


def _check_gemm(v: NodeView, _: object) -> Optional[str]:
    if 1 not in v.const_inputs:
        return "Gemm with a non-constant B"
    return None if v.attrs.get("transA", 0) == 0 else "Gemm with transA=1"


def _check_matmul(v: NodeView, _: object) -> Optional[str]:
    a, b = (v.in_shapes + [None, None])[:2]
    if 1 in v.const_inputs and a is not None and len(a) in (2, 4):
        return None
    if a is not None and b is not None and len(a) == 4 and len(b) == 4 and a[:2] == b[:2]:
        return None
    return f"MatMul {a} x {b} is not a listed 4-D form"


CHECKS: Dict[str, Callable[[NodeView, object], Optional[str]]] = {
    "rank": _check_rank,
    "kernel_max": _check_kernel,
    "channels_max": _check_channels,
    "hw_max": _check_hw,
    "chw_max": _check_chw,
    "reduce_axes": _check_reduce_axes,
    "broadcast_4d": _check_broadcast_4d,
    "concat_axis": _check_concat_axis,
    "gemm_as_conv": _check_gemm,
    "matmul_form": _check_matmul,
}


def view_macs(v: NodeView) -> int:
    """Multiply-accumulates of one node (the shared rule of :mod:`edgereid.onnx_macs`)."""
    return node_macs(v.op_type, v.attrs, v.in_shapes, v.out_shapes[0] if v.out_shapes else None)


def place(v: NodeView, table: RuleTable = X3_RULES) -> Placement:
    """Decide where one node runs and why."""
    macs = view_macs(v)
    if v.op_type in table.bpu:
        rule = table.bpu[v.op_type]
        for check, limit in rule.limits:
            reason = CHECKS[check](v, limit)
            if reason:
                return Placement(v.name, v.op_type, CPU, rule.describe(), f"BPU limit failed: {reason}", macs)
        return Placement(v.name, v.op_type, BPU, rule.describe(), f"on the BPU list ({rule.source})", macs)
    if v.op_type in table.cpu:
        rule = table.cpu[v.op_type]
        return Placement(v.name, v.op_type, CPU, rule.describe(), f"on the CPU list ({rule.source})", macs)
    return Placement(v.name, v.op_type, UNSUPPORTED, "-", "on neither the BPU nor the CPU list", macs)


def count_subgraphs(views: Sequence[NodeView], placements: Sequence[Placement]) -> Dict[str, int]:
    """Connected components of same-device nodes (free ops are skipped)."""
    device = {}
    producer: Dict[str, int] = {}
    for i, (v, p) in enumerate(zip(views, placements)):
        if v.op_type in FREE_OPS:
            continue
        device[i] = p.device
        for out in v.outputs:
            producer[out] = i
    parent = {i: i for i in device}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, v in enumerate(views):
        if i not in device:
            continue
        for x in v.inputs:
            j = producer.get(x)
            if j is not None and device[j] == device[i]:
                parent[find(i)] = find(j)
    roots: Dict[str, set] = {BPU: set(), CPU: set(), UNSUPPORTED: set()}
    for i, dev in device.items():
        roots[dev].add(find(i))
    return {dev: len(r) for dev, r in roots.items()}


def placement_report(model, table: RuleTable = X3_RULES) -> dict:
    """JSON-ready report: per-node placements, counts, subgraphs and BPU MAC share."""
    views = graph_views(model)
    placements = [place(v, table) for v in views]
    sub = count_subgraphs(views, placements)
    work = [p for v, p in zip(views, placements) if v.op_type not in FREE_OPS]
    total = sum(p.macs for p in work)
    bpu_macs = sum(p.macs for p in work if p.device == BPU)
    return {
        "nodes": [p.__dict__.copy() for p in work],
        "num_nodes": len(work),
        "bpu_nodes": sum(p.device == BPU for p in work),
        "cpu_nodes": sum(p.device == CPU for p in work),
        "unsupported_nodes": [p.node for p in work if p.device == UNSUPPORTED],
        "cpu_subgraphs": sub[CPU],
        "bpu_subgraphs": sub[BPU],
        "total_macs": int(total),
        "bpu_macs": int(bpu_macs),
        "bpu_mac_share": float(bpu_macs / total) if total else 0.0,
        "cpu_op_types": sorted({p.op_type for p in work if p.device == CPU}),
    }


def format_report(report: dict, title: str = "") -> str:
    """Readable table of one placement report (for bpu_report.txt)."""
    lines = []
    if title:
        lines += [title, "=" * len(title)]
    lines.append(
        f"nodes {report['num_nodes']}: BPU {report['bpu_nodes']}, CPU {report['cpu_nodes']}, "
        f"unsupported {len(report['unsupported_nodes'])}; CPU subgraphs {report['cpu_subgraphs']}, "
        f"BPU subgraphs {report['bpu_subgraphs']}; BPU share of MACs {100 * report['bpu_mac_share']:.2f}% "
        f"of {report['total_macs'] / 1e6:.1f} M"
    )
    lines.append(f"{'node':40s} {'op':20s} {'where':11s} {'MMACs':>8s}  reason")
    for n in report["nodes"]:
        lines.append(
            f"{n['node'][:40]:40s} {n['op_type'][:20]:20s} {n['device']:11s} {n['macs'] / 1e6:8.2f}  {n['reason']}"
        )
    return "\n".join(lines) + "\n"
