"""Accuracy-aware mixed precision: full INT8, then the most sensitive layers back to float until the
hold-out meets a budget.

Why: full INT8 of a small ReID net (OSNet x0.25) costs 2-4 rank-1 points, most of it from a few
layers. Prior art: NNCF's ``quantize_with_accuracy_control`` (drop layers from quantization in
ranked order until the metric is within ``max_drop``) and TensorRT's per-layer precision. A layer
whose inputs carry no Q/DQ runs in FP16 in TensorRT (and FP32 in ONNX Runtime); the simulation runs
it in float32, which for FP16 is optimistic by far less than an INT8 step.

The search keeps the sensitivity report's order (``added_noise_db``, largest first) and only chooses
how many of its top layers to keep in float: k = 0, 1, 2, 4, ... until the budget is met, then
bisection between the last failing and the first passing k. Every evaluated k is reported.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from edgereid.errors import InputError
from edgereid.onnx_macs import node_macs

LOG = logging.getLogger(__name__)

DEFAULT_MAX_DROP = 1.0  # rank-1 points on labelled hold-out identities
# Mean cosine to FP32 on the hold-out: checked on a labelled hold-out too, where rank-1 on ~100
# queries moves by whole queries. 0.998 for TensorRT by measurement (BENCHMARKS.md, OSNet x0.25,
# 31 PKU ids never calibrated on nor searched on): a structureless perturbation of the FP32
# weights with cosine 0.997 already moves rank-1 by +-1.8 points (SD over 8 seeds,
# benchmarks/bench_rank1_noise.py), and the hold-out cosine predicts the unseen identities'
# cosine to +-0.0005. ONNX Runtime's u8s8 form (``cpu``) also rounds every Conv output (its
# QLinearConv needs it) and tops out near 0.995 for OSNet: its default is what that form can
# reach with a few float layers, not a promise of the same accuracy.
DEFAULT_MIN_COSINE = {"trt": 0.998, "cpu": 0.995, "x3": 0.995}


@dataclass
class Budget:
    """What "accurate enough" means for the hold-out.

    Attributes:
        max_drop: largest rank-1 drop in points (labelled hold-out).
        min_cosine: smallest mean cosine to FP32 (unlabelled hold-out).
        cosine_always: check ``min_cosine`` on a labelled hold-out too (default): with ~100
            queries rank-1 moves by whole queries, the cosine is the steadier guard.
    """

    max_drop: float = DEFAULT_MAX_DROP
    min_cosine: float | None = None  # None: DEFAULT_MIN_COSINE of the QDQ flavour (for_flavour)
    cosine_always: bool = True

    def __post_init__(self) -> None:
        if not self.max_drop >= 0:
            raise InputError(f"--max-drop must be >= 0 rank-1 points, received {self.max_drop}.")
        if self.min_cosine is not None and not 0 < self.min_cosine <= 1:
            raise InputError(f"--min-cosine must be in (0, 1], received {self.min_cosine}.")

    def for_flavour(self, flavour: str) -> Budget:
        """This budget with the flavour's default cosine when none was given."""
        if self.min_cosine is not None:
            return self
        return Budget(self.max_drop, DEFAULT_MIN_COSINE.get(flavour, DEFAULT_MIN_COSINE["trt"]), self.cosine_always)

    def met(self, report: dict[str, Any]) -> bool:
        """True when an accuracy report (calibration.accuracy) is within the budget."""
        floor = self.for_flavour("trt").min_cosine
        cos = (report.get("cosine") or {}).get("mean")
        drop = report.get("delta_rank1_points")
        if drop is not None:
            ok = -drop <= self.max_drop + 1e-9
            return ok and (not self.cosine_always or (cos is not None and cos >= floor))
        return cos is not None and cos >= floor

    def describe(self, labelled: bool) -> str:
        if self.min_cosine is None:
            return self.for_flavour("trt").describe(labelled)
        if labelled:
            cos = f" and cosine mean >= {self.min_cosine:g}" if self.cosine_always else ""
            return f"rank-1 drop <= {self.max_drop:g} points{cos} on the labelled hold-out identities"
        return f"cosine mean >= {self.min_cosine:g} to FP32 on the unlabelled hold-out crops"


def macs_by_node(model: Any, batch: int = 1) -> dict[str, int]:
    """MACs of every named node of an ONNX ModelProto at ``batch`` (edgereid.onnx_macs rule)."""
    from onnx import ModelProto, helper, shape_inference

    copy = ModelProto()
    copy.CopyFrom(model)
    for inp in copy.graph.input:
        dims = inp.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_value = batch
    del copy.graph.value_info[:]
    copy = shape_inference.infer_shapes(copy)
    shapes: dict[str, list[int] | None] = {}
    for vi in list(copy.graph.value_info) + list(copy.graph.input) + list(copy.graph.output):
        dims = vi.type.tensor_type.shape.dim
        shapes[vi.name] = [d.dim_value for d in dims] if all(d.HasField("dim_value") for d in dims) else None
    for init in copy.graph.initializer:
        shapes[init.name] = list(init.dims)
    out = {}
    for node in copy.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        out[node.name] = node_macs(node.op_type, attrs, [shapes.get(x) for x in node.input],
                                   shapes.get(node.output[0]) if node.output else None)
    return out


def with_weight_sharers(model: Any, layers: Sequence[str]) -> list[str]:
    """``layers`` plus every node that shares a weight initializer with one of them, graph order.

    OSNet applies one channel gate to four branches: four Conv nodes, one weight. ONNX Runtime's
    quantizer gives a shared weight one Q/DQ pair for all its consumers, so keeping one of them
    float would leave its weight quantized; the group stays float together.
    """
    inits = {i.name for i in model.graph.initializer}
    wanted = set(layers)
    shared = {x for n in model.graph.node if n.name in wanted for x in n.input[1:] if x in inits}
    return [n.name for n in model.graph.node
            if n.name in wanted or any(x in shared for x in n.input[1:2])]


def int8_mac_share(macs: dict[str, int], quantized: Sequence[str], float_layers: Sequence[str]) -> float:
    """Share of all MACs in nodes that run INT8 (quantized and not kept in float)."""
    total = sum(macs.values())
    keep = set(float_layers)
    int8 = sum(macs.get(n, 0) for n in quantized if n not in keep)
    return int8 / total if total else 0.0


def search_float_layers(
    order: Sequence[str],
    evaluate: Callable[[list[str]], dict[str, Any]],
    budget: Budget,
) -> dict[str, Any]:
    """How many of ``order``'s top layers to keep in float so that ``evaluate`` meets ``budget``.

    Args:
        order: quantized layer names, most sensitive first.
        evaluate: float-layer list -> accuracy report of the model quantized without them.
        budget: the target.

    Returns:
        ``{"float_layers", "met", "report" (of the chosen k), "trials": [{"k", "met", "drop", "cosine"}]}``.
        When no k meets the budget, the best-cosine trial is returned with ``met`` False.
    """
    results: dict[int, dict[str, Any]] = {}

    def trial(k: int) -> bool:
        if k not in results:
            rep = evaluate(list(order[:k]))
            results[k] = rep
            LOG.info("mixed precision: %d float layers -> rank-1 drop %s, cosine mean %.4f", k,
                     _drop(rep), rep["cosine"]["mean"])
        return budget.met(results[k])

    n = len(order)
    chosen = None
    low = -1  # largest k known to fail
    k = 0
    while k <= n:
        if trial(k):
            chosen = k
            break
        low = k
        k = 1 if k == 0 else min(2 * k, n) if k < n else n + 1
    if chosen is not None:
        hi = chosen
        while hi - low > 1:
            mid = (low + hi) // 2
            if trial(mid):
                hi = mid
            else:
                low = mid
        chosen = hi
    met = chosen is not None
    if chosen is None:
        chosen = max(results, key=lambda j: results[j]["cosine"]["mean"])
    trials = [{"k": j, "met": budget.met(r), "rank1_drop_points": _drop(r),
               "cosine_mean": round(r["cosine"]["mean"], 4)} for j, r in sorted(results.items())]
    return {"float_layers": list(order[:chosen]), "met": met, "report": results[chosen], "trials": trials}


def _drop(report: dict[str, Any]) -> float | None:
    """Rank-1 points lost (positive = worse), or None without labels."""
    delta = report.get("delta_rank1_points")
    return None if delta is None else round(-delta, 3)
