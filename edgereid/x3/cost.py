"""Estimated X3 latency of a placed graph: BPU compute, CPU subgraphs, BPU <-> CPU hand-overs.

Nothing here was measured on an X3. Every rate is an :class:`Assumption` with its source; the
estimate is arithmetic on the placement report's subgraphs, for comparing graphs (before / after
the rewrites), not a latency promise. Model of one CPU subgraph (a connected group of CPU nodes,
:mod:`edgereid.x3.placement`):

- hand-over: every tensor entering it from the BPU is dequantized (int8 -> float32) and every
  tensor leaving it for the BPU is quantized, each element at Horizon's measured dequantize rate;
  bytes crossing = those elements x 1 byte (int8) on the BPU side;
- CPU work: a fixed cost per subgraph (Horizon's measured CPU-operator time of the classification
  samples), every element each node writes at the same per-element rate (reshape / transpose /
  concat are copies), and 2 float operations per MAC at a Cortex-A53 NEON rate;
- BPU: the BPU MACs at the rate Horizon measured for ResNet-50 on one X3 BPU core.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence

import numpy as np

X3_DOC_BEGINNER = (
    "HorizonRDK/rdk_x3_doc docs/toolchain_development/beginner.md, table image/beginner/model_accuracy.png "
    "(measured on an RDK X3)"
)
RESNET50_224_MACS = 4_089_184_256  # our counter (edgereid.models.macs) on ResNet-50 + fc at 224x224


@dataclass(frozen=True)
class Assumption:
    """One rate of the model, its unit and where it comes from."""

    value: float
    unit: str
    source: str


@dataclass(frozen=True)
class CostAssumptions:
    bpu_macs_per_s: Assumption
    cpu_clock_hz: Assumption
    cpu_flop_per_cycle: Assumption
    cpu_cores: Assumption
    quant_ns_per_element: Assumption
    copy_ns_per_element: Assumption
    cpu_subgraph_fixed_ms: Assumption

    @property
    def cpu_flops_per_s(self) -> float:
        return self.cpu_clock_hz.value * self.cpu_flop_per_cycle.value * self.cpu_cores.value

    def as_dict(self) -> dict:
        return {k: {"value": getattr(self, k).value, "unit": getattr(self, k).unit, "source": getattr(self, k).source}
                for k in self.__dataclass_fields__}


X3_ASSUMPTIONS = CostAssumptions(
    bpu_macs_per_s=Assumption(
        RESNET50_224_MACS / 17.326e-3, "MAC/s",
        f"ResNet50 224x224 single-core 'BPU 耗时' 17.326 ms ({X3_DOC_BEGINNER}) with 4.089 GMAC (our count)",
    ),
    cpu_clock_hz=Assumption(
        1.2e9, "Hz",
        "RDK X3 default top CPU frequency 1.2 GHz (rdk_x3_doc docs/configuration/frequency_management.md: "
        "boost raises it from 1.2 to 1.5 GHz)",
    ),
    cpu_flop_per_cycle=Assumption(
        6.03e9 / 1.44e9, "flop/cycle",
        "Cortex-A53 NEON float GEMM kernel 6.03 Gop/s at 1.44 GHz (Nexus 5X little core, gemmlowp "
        "standalone/neon-gemm-kernel-benchmark.cc results sheet, 'NEON_64bit_GEMM_Float32_WithScalar'); "
        "a kernel peak in cache: real CPU operators reach less",
    ),
    cpu_cores=Assumption(
        1, "cores", "assumption: Horizon's CPU operators run on one core (threading not documented)"
    ),
    quant_ns_per_element=Assumption(
        3.962e6 / (255 * (13 * 13 + 26 * 26 + 52 * 52)), "ns/element",
        f"YOLOv3 416x416 '反量化' (dequantize) 3.962 ms for its 3 outputs of 255 x (13^2 + 26^2 + 52^2) "
        f"elements ({X3_DOC_BEGINNER}); quantize assumed equal",
    ),
    copy_ns_per_element=Assumption(
        3.962e6 / (255 * (13 * 13 + 26 * 26 + 52 * 52)), "ns/element",
        "assumption: a float reshape / transpose / concat costs what a dequantize costs per element "
        "(one read, one write)",
    ),
    cpu_subgraph_fixed_ms=Assumption(
        0.046, "ms",
        f"'CPU 算子' time of every classification sample (Softmax + Reshape on 1000 values) ({X3_DOC_BEGINNER})",
    ),
)


def _elements(shape) -> int:
    return int(np.prod(shape)) if shape and all(int(d) > 0 for d in shape) else 0


def cpu_subgraph_costs(views: Sequence, placements: Sequence, groups: Sequence[Sequence[int]],
                       graph_outputs: Sequence[str], a: CostAssumptions = X3_ASSUMPTIONS) -> List[dict]:
    """One dict per CPU subgraph (``groups`` = node indices): what it moves and what it costs.

    Returns:
        nodes, op_types, rules (the document rows keeping its nodes on the CPU), elements and bytes
        BPU -> CPU and CPU -> BPU, elements written, float operations, and est_ms split into
        ``handover`` (quantize / dequantize) and ``cpu`` (fixed + copies + flops).
    """
    shape_of = {}
    for v in views:
        shape_of.update(zip(v.inputs, v.in_shapes))
        shape_of.update(zip(v.outputs, v.out_shapes))
    out_names = set(graph_outputs)
    consumers: Dict[str, List[int]] = {}
    for i, v in enumerate(views):
        for x in v.inputs:
            consumers.setdefault(x, []).append(i)
    producer = {o: i for i, v in enumerate(views) for o in v.outputs}
    costs = []
    for group in groups:
        members = set(group)
        entering = {x for i in group for j, x in enumerate(views[i].inputs)
                    if x and j not in views[i].const_inputs and producer.get(x) not in members}
        leaving = {o for i in group for o in views[i].outputs
                   if any(c not in members for c in consumers.get(o, []))}
        in_el = sum(_elements(shape_of.get(x)) for x in entering)
        out_el = sum(_elements(shape_of.get(x)) for x in leaving if x not in out_names)
        written = sum(_elements(s) for i in group for s in views[i].out_shapes)
        macs = sum(placements[i].macs for i in group)
        flops = 2 * macs
        handover = (in_el + out_el) * a.quant_ns_per_element.value * 1e-6
        cpu = (a.cpu_subgraph_fixed_ms.value + written * a.copy_ns_per_element.value * 1e-6
               + flops / a.cpu_flops_per_s * 1e3)
        costs.append({
            "nodes": [placements[i].node for i in group],
            "op_types": sorted({placements[i].op_type for i in group}),
            "rules": sorted({placements[i].doc for i in group}),
            "elements_bpu_to_cpu": in_el,
            "elements_cpu_to_bpu": out_el,
            "bytes_bpu_to_cpu": in_el,
            "bytes_cpu_to_bpu": out_el,
            "elements_written": written,
            "flops": int(flops),
            "est_ms": {"handover": handover, "cpu": cpu, "total": handover + cpu},
        })
    return costs


def latency_split(bpu_macs: int, subgraph_costs: Sequence[dict], output_elements: int,
                  a: CostAssumptions = X3_ASSUMPTIONS) -> dict:
    """Estimated ms: BPU, CPU, hand-overs (incl. dequantizing the model output), total."""
    bpu = bpu_macs / a.bpu_macs_per_s.value * 1e3
    cpu = sum(c["est_ms"]["cpu"] for c in subgraph_costs)
    handover = sum(c["est_ms"]["handover"] for c in subgraph_costs)
    handover += output_elements * a.quant_ns_per_element.value * 1e-6
    return {"bpu_ms": bpu, "cpu_ms": cpu, "handover_ms": handover, "total_ms": bpu + cpu + handover,
            "cpu_subgraphs": len(subgraph_costs)}
