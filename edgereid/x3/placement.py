"""BPU placement report: every node -> BPU or CPU with the rule that decided it.

Reads a static-shape ONNX graph, applies :mod:`edgereid.x3.ops` (rules as data, checks by name
here), counts the CPU and BPU subgraphs (each CPU op splits the model; the X3 pays a BPU<->CPU
hand-over per boundary) and the share of multiply-accumulates (MACs) on the BPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from edgereid.onnx_macs import node_macs
from edgereid.x3.checks import CHECKS
from edgereid.x3.cost import cpu_subgraph_costs, latency_split
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
    in_producers: List[Optional[str]] = field(default_factory=list)  # op type making each input


@dataclass
class Placement:
    node: str
    op_type: str
    device: str  # bpu | cpu | unsupported
    rule: str
    reason: str
    macs: int
    doc: str = ""  # the document's row that decided it


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
    producer = {o: n.op_type for n in g.node for o in n.output}
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
                in_producers=[producer.get(x) for x in node.input],
            )
        )
    return views


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
                return Placement(
                    v.name, v.op_type, CPU, rule.describe(), f"BPU limit failed: {reason}", macs, rule.citation()
                )
        return Placement(v.name, v.op_type, BPU, rule.describe(), "on the BPU list", macs, rule.citation())
    if v.op_type in table.cpu:
        rule = table.cpu[v.op_type]
        return Placement(v.name, v.op_type, CPU, rule.describe(), "on the CPU list", macs, rule.citation())
    return Placement(v.name, v.op_type, UNSUPPORTED, "-", "on neither the BPU nor the CPU list", macs)


def count_subgraphs(views: Sequence[NodeView], placements: Sequence[Placement]) -> Dict[str, int]:
    """Number of connected components of same-device nodes per device (free ops are skipped)."""
    return {dev: len(groups) for dev, groups in subgraphs(views, placements).items()}


def subgraphs(views: Sequence[NodeView], placements: Sequence[Placement]) -> Dict[str, List[List[int]]]:
    """Connected components of same-device nodes (node indices, free ops skipped), per device.

    hb_mapper splits the model at every CPU operator ("ptq_process.md": the BPU parts before and
    after a CPU operator become two subgraphs); a group of connected CPU nodes is one CPU stage.
    """
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
    groups: Dict[str, Dict[int, List[int]]] = {BPU: {}, CPU: {}, UNSUPPORTED: {}}
    for i, dev in device.items():
        groups[dev].setdefault(find(i), []).append(i)
    return {dev: [sorted(m) for m in g.values()] for dev, g in groups.items()}


def placement_report(model, table: RuleTable = X3_RULES) -> dict:
    """JSON-ready report: per-node placements, counts, subgraphs and BPU MAC share."""
    views = graph_views(model)
    placements = [place(v, table) for v in views]
    groups = subgraphs(views, placements)
    sub = {dev: len(g) for dev, g in groups.items()}
    work = [p for v, p in zip(views, placements) if v.op_type not in FREE_OPS]
    total = sum(p.macs for p in work)
    bpu_macs = sum(p.macs for p in work if p.device == BPU)
    outputs = [o.name for o in model.graph.output]
    costs = cpu_subgraph_costs(views, placements, groups[CPU] + groups[UNSUPPORTED], outputs)
    shapes = {o: s for v in views for o, s in zip(v.outputs, v.out_shapes)}
    out_elements = sum(int(np.prod(shapes[o])) for o in outputs if shapes.get(o) and min(shapes[o]) > 0)
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
        "cpu_subgraph_costs": costs,
        "latency_estimate": latency_split(bpu_macs, costs, out_elements),
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
    est = report.get("latency_estimate")
    if est:
        lines.append(
            f"estimated X3 latency {est['total_ms']:.2f} ms = BPU {est['bpu_ms']:.2f} + CPU {est['cpu_ms']:.2f} "
            f"+ BPU<->CPU hand-overs {est['handover_ms']:.2f} (assumptions: edgereid.x3.cost, not measured)"
        )
    for k, c in enumerate(report.get("cpu_subgraph_costs", [])):
        lines.append(
            f"  CPU subgraph {k}: {'+'.join(c['op_types'])} ({len(c['nodes'])} nodes), "
            f"{c['bytes_bpu_to_cpu']} B in / {c['bytes_cpu_to_bpu']} B out (int8), {c['flops'] / 1e6:.1f} MFLOP, "
            f"~{c['est_ms']['total']:.3f} ms; kept there by supported_op_list.md rows: "
            f"{'; '.join(r.split(' row ')[-1] for r in c['rules'])}"
        )
    lines.append(f"{'node':40s} {'op':20s} {'where':11s} {'MMACs':>8s}  reason")
    for n in report["nodes"]:
        lines.append(
            f"{n['node'][:40]:40s} {n['op_type'][:20]:20s} {n['device']:11s} {n['macs'] / 1e6:8.2f}  {n['reason']}"
        )
    return "\n".join(lines) + "\n"
