"""What TensorRT really built: trtexec's layer file compared with the DLA report and the intended precision.

build_engine.sh runs trtexec with ``--profilingVerbosity=detailed --exportLayerInfo=<stem>.layers.json
--exportProfile=<stem>.profile.json``. Copy those files back next to the bundle and
``reid-bench layers --bundle B --mode dla0`` says which ONNX nodes ended on the DLA or the GPU
against ``dla_report.json``'s prediction, and which layers run wider than the mode intends
(FP32 in an FP16 engine, FP16 in an INT8 one).

File formats, as NVIDIA's TensorRT Engine Explorer reads them (NVIDIA/TensorRT release/8.5,
tools/experimental/trt-engine-explorer/trex/layer.py, activations.py, parser.py):
``{"Layers": [{"Name", "LayerType", "Inputs": [{"Name", "Dimensions", "Format/Datatype"}], ...}],
"Bindings": [...]}``; a layer's precision is that of its first input; with
``layer_names_only`` verbosity the layers are bare names. A fused layer's name joins the ONNX
node names with `` + ``; a DLA subgraph is one layer ``{ForeignNode[first...last]}``.
The profile is a list whose first entry is ``{"count": N}``, then ``{"name", "averageMs", ...}``.
Not verified against a file from a Xavier yet.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from edgereid.errors import InputError

PRECISION_ORDER = {"INT8": 0, "FP16": 1, "FP32": 2}
_KEYWORDS = (("int8", "INT8"), ("fp16", "FP16"), ("half", "FP16"), ("fp32", "FP32"), ("float", "FP32"),
             ("int32", "INT32"), ("bool", "BOOL"))
FOREIGN = "{ForeignNode["


@dataclass
class EngineLayer:
    """One layer of the built engine."""

    name: str
    kind: str = "unknown"
    precision: str = "unknown"
    device: str = "GPU"
    onnx_nodes: List[str] = field(default_factory=list)
    node_range: Optional[Tuple[str, str]] = None

    @property
    def is_reformat(self) -> bool:
        return self.kind.lower() == "reformat" or self.name.startswith("Reformatting CopyNode")


def precision_of(fmt: str) -> str:
    """'Channel major FP16 format where channel % 8 == 0' -> 'FP16' (TREx activations.py rule)."""
    low = fmt.lower()
    return next((p for key, p in _KEYWORDS if key in low), "unknown")


def parse_layer(raw: Any) -> EngineLayer:
    if isinstance(raw, str):
        raw = {"Name": raw}
    name = str(raw.get("Name", "?"))
    kind = str(raw.get("LayerType", "unknown"))
    inputs = raw.get("Inputs") or []
    precision = precision_of(str(inputs[0].get("Format/Datatype", ""))) if inputs else "unknown"
    device = "DLA" if name.startswith(FOREIGN) or "dla" in kind.lower() else "GPU"
    node_range = None
    if name.startswith(FOREIGN) and name.endswith("]}"):
        inner = name[len(FOREIGN):-2]
        first, _, last = inner.partition("...")
        node_range = (first, last or first)
        parts = [first, last] if last else [first]
    else:
        parts = [p.strip() for p in name.split(" + ")]
    return EngineLayer(name, kind, precision, device, parts, node_range)


def read_layer_info(path: str | Path) -> List[EngineLayer]:
    """Layers of a ``--exportLayerInfo`` file; a clear error for anything else."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"layer file {str(path)!r} does not exist: run build_engine.sh (it writes "
                         "<engine>.layers.json) and copy it back next to the bundle.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        layers = data["Layers"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} is not a trtexec --exportLayerInfo file ({type(exc).__name__}: {exc}).") from exc
    return [parse_layer(raw) for raw in layers]


def read_profile(path: str | Path) -> Dict[str, float]:
    """{layer name: average ms} of a ``--exportProfile`` file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path} is not a trtexec --exportProfile file ({exc}).") from exc
    return {str(d["name"]): float(d.get("averageMs", 0.0)) for d in data if isinstance(d, dict) and "name" in d}


def placement(layers: Sequence[EngineLayer], node_order: Sequence[str]) -> Dict[str, Tuple[str, str]]:
    """{ONNX node: (device, precision)} for the nodes found in layer names (ForeignNode ranges expanded)."""
    index = {n: i for i, n in enumerate(node_order)}
    out: Dict[str, Tuple[str, str]] = {}
    for layer in layers:
        if layer.is_reformat:
            continue
        nodes = list(layer.onnx_nodes)
        if layer.node_range and all(n in index for n in layer.node_range):
            a, b = (index[n] for n in layer.node_range)
            nodes = list(node_order[min(a, b): max(a, b) + 1])
        for node in nodes:
            if node in index:
                out[node] = (layer.device, layer.precision)
    return out


def compare_layers(layers: Sequence[EngineLayer], dla_report: Dict[str, Any] | None, intended: str,
                   profile: Dict[str, float] | None = None) -> Dict[str, Any]:
    """Report: counts, placement against the DLA prediction, layers wider than ``intended``."""
    if intended not in PRECISION_ORDER:
        raise InputError(f"intended precision must be one of {list(PRECISION_ORDER)}, received {intended!r}.")
    compute = [layer for layer in layers if not layer.is_reformat]
    nodes = (dla_report or {}).get("nodes", [])
    predicted = {n["node"]: n["device"] for n in nodes}
    actual = placement(layers, [n["node"] for n in nodes])
    mismatches = [{"node": node, "predicted": predicted[node], "actual": dev}
                  for node, (dev, _) in actual.items() if node in predicted and predicted[node] != dev]
    wider = [{"layer": layer.name, "precision": layer.precision} for layer in compute
             if PRECISION_ORDER.get(layer.precision, -1) > PRECISION_ORDER[intended]]
    counts: Dict[str, int] = {}
    for layer in compute:
        counts[layer.precision] = counts.get(layer.precision, 0) + 1
    report: Dict[str, Any] = {
        "layers": len(compute),
        "reformat_layers": len(layers) - len(compute),
        "dla_layers": sum(layer.device == "DLA" for layer in compute),
        "gpu_layers": sum(layer.device == "GPU" for layer in compute),
        "precision_counts": counts,
        "intended_precision": intended,
        "wider_than_intended": wider,
        "nodes_compared": len([n for n in actual if n in predicted]),
        "nodes_not_found": len([n for n in predicted if n not in actual]),
        "placement_mismatches": mismatches,
        "ok": not mismatches and not wider,
    }
    if profile:
        total = sum(profile.values()) or 1.0
        dla_ms = sum(profile.get(layer.name, 0.0) for layer in layers if layer.device == "DLA")
        report["profile_ms"] = round(total, 4)
        report["dla_time_share"] = round(dla_ms / total, 4)
    return report


def layers_markdown(report: Dict[str, Any]) -> str:
    lines = [
        f"engine layers: {report['layers']} ({report['dla_layers']} DLA, {report['gpu_layers']} GPU), "
        f"{report['reformat_layers']} reformat",
        f"precisions: {report['precision_counts']} (intended {report['intended_precision']})",
        f"DLA report compared on {report['nodes_compared']} ONNX nodes; "
        f"{len(report['placement_mismatches'])} placed otherwise than predicted",
    ]
    for m in report["placement_mismatches"][:20]:
        lines.append(f"  {m['node']}: predicted {m['predicted']}, built on {m['actual']}")
    if report["wider_than_intended"]:
        lines.append(f"{len(report['wider_than_intended'])} layers run wider than {report['intended_precision']}:")
        lines += [f"  {w['layer']}: {w['precision']}" for w in report["wider_than_intended"][:20]]
    if "dla_time_share" in report:
        lines.append(f"profile: {report['profile_ms']} ms per run, {report['dla_time_share']:.0%} of it on the DLA")
    lines.append("OK" if report["ok"] else "DIFFERENT from the plan (see above)")
    return "\n".join(lines) + "\n"


def compare_bundle_layers(bundle: Any, mode: str | None = None, layer_file: str | None = None) -> Dict[str, Any]:
    """Compare the layer file of ``mode`` (default: built, else default mode) with the bundle's plan."""
    from edgereid.jetson.plan import plans_for_bundle

    trt = bundle.manifest.extra.get("trt", {})
    mode = mode or trt.get("built_mode") or trt.get("default_mode", "fp16")
    (plan,) = plans_for_bundle(bundle.manifest, [mode])
    path = Path(layer_file) if layer_file else bundle.root / plan.layer_info
    layers = read_layer_info(path)
    report_path = bundle.root / bundle.manifest.files["dla_report"] if "dla_report" in bundle.manifest.files else None
    dla_report = json.loads(report_path.read_text()) if report_path and report_path.is_file() else None
    profile_path = path.with_name(Path(plan.profile_json).name)
    profile = read_profile(profile_path) if profile_path.is_file() else None
    report = compare_layers(layers, dla_report if plan.dla_core is not None else None,
                            "INT8" if plan.int8 else "FP16", profile)
    report.update(mode=mode, layer_file=str(path))
    return report
