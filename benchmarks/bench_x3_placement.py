"""X3 placement before / after the BPU rewrites for OSNet, RGA-SC (folded) and RRID: CPU subgraphs,
BPU MAC share, the estimated latency split (edgereid.x3.cost), the host's single-thread numpy time
of every CPU subgraph next to the A53 estimate, and the cosine of the rewritten graph on real crops.

Called by ``bench_x3.py --placement``; prints markdown for benchmarks/results/x3.md.
"""

from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT.parent / "shared" / "assets"
# The rewrites of the export before issue 12 (the "before" column): the rest are issue 12's.
OLD_REWRITES = ("strip_l2_normalize", "channel_mean_to_conv", "full_avgpool_to_gap", "sub_div_const",
                "sink_flatten", "fold_batchnorm", "drop_trailing_flatten")


def _onnx_for(arch: str, tmp: Path) -> Path:
    if arch == "osnet":
        return ASSETS / "reid" / "osnet_x0_25_msmt17.onnx"
    from edgereid.export.source import from_arch, write_model_onnx

    path = tmp / f"{arch}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_model_onnx(from_arch(arch), path, dynamic_batch=False)
    return path


# -- numpy on the host for the CPU ops that occur ------------------------------------------------
def _np_node(op: str, attrs: dict, xs: list, out_shape):
    if op in ("Reshape", "Flatten", "Unsqueeze", "Squeeze"):
        return np.ascontiguousarray(xs[0].reshape(out_shape))
    if op == "Transpose":
        return np.ascontiguousarray(xs[0].transpose(attrs.get("perm")))
    if op == "Concat":
        return np.concatenate(xs, axis=attrs.get("axis", 0))
    if op == "MatMul":
        return np.matmul(xs[0], xs[1])
    if op in ("Mul", "Add", "Sub"):
        return {"Mul": np.multiply, "Add": np.add, "Sub": np.subtract}[op](xs[0], xs[1])
    if op == "Sigmoid":
        return 1.0 / (1.0 + np.exp(-xs[0]))
    if op == "BatchNormalization":
        s, b, m, v = (x.reshape(1, -1, *([1] * (xs[0].ndim - 2))) for x in xs[1:5])
        return (xs[0] - m) / np.sqrt(v + attrs.get("epsilon", 1e-5)) * s + b
    raise NotImplementedError(op)


def host_ms(views, group, reps: int = 5) -> float:
    """Median single-thread time of one CPU subgraph: dequantize what enters, its ops, quantize what leaves."""
    members = set(group)
    produced = {o for i in group for o in views[i].outputs}
    rng = np.random.default_rng(0)
    entering = {}
    for i in group:
        v = views[i]
        for j, (x, s) in enumerate(zip(v.inputs, v.in_shapes)):
            if x and x not in produced and j not in v.const_inputs and x not in entering:
                entering[x] = rng.integers(-128, 127, s, dtype=np.int8)
    consumers = {x for k, v in enumerate(views) if k not in members for x in v.inputs}
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        vals = {x: a.astype(np.float32) * np.float32(0.01) for x, a in entering.items()}
        for i in group:
            v = views[i]
            xs = [vals.get(x, v.const_inputs.get(j)) for j, x in enumerate(v.inputs)]
            vals[v.outputs[0]] = _np_node(v.op_type, v.attrs, xs, v.out_shapes[0])
        for o in produced & consumers:
            np.clip(np.rint(vals[o] * 100.0), -128, 127).astype(np.int8)
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def _cosine(plain_path: Path, x3_model, crops, spec) -> float:
    import onnxruntime as ort

    a = ort.InferenceSession(str(plain_path), providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(x3_model.SerializeToString(), providers=["CPUExecutionProvider"])
    cos = []
    for crop in crops:
        x = spec([crop])
        fa = a.run(None, {a.get_inputs()[0].name: x})[0].reshape(-1)
        fb = b.run(None, {b.get_inputs()[0].name: x})[0].reshape(-1)
        cos.append(float(fa @ fb / np.linalg.norm(fa) / np.linalg.norm(fb)))
    return min(cos)


def placement_tables(crops) -> None:
    from edgereid.models import preprocess_for
    from edgereid.preprocess import PreprocessSpec
    from edgereid.x3.graph import build_x3_graphs
    from edgereid.x3.placement import graph_views, place, placement_report, subgraphs

    rows, host_rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for arch in ("osnet", "rga_sc", "rrid"):
            path = _onnx_for(arch, Path(tmp))
            spec = PreprocessSpec(256, 128) if arch == "osnet" else preprocess_for(arch)
            reports = {}
            for label, names in (("before", OLD_REWRITES), ("after", None)):
                graphs = build_x3_graphs(path) if names is None else build_x3_graphs(path, rewrites=names)
                rep = placement_report(graphs.x3)
                reports[label] = rep
                views = graph_views(graphs.x3)
                groups = subgraphs(views, [place(v) for v in views])["cpu"]
                host = sum(host_ms(views, g) for g in groups)
                model = sum(c["est_ms"]["total"] for c in rep["cpu_subgraph_costs"])
                host_rows.append((arch, label, len(groups), host, model))
                if label == "after":
                    cos = _cosine(path, graphs.x3, crops, spec)
            b, a = reports["before"], reports["after"]
            lb, la = b["latency_estimate"], a["latency_estimate"]
            rows.append(
                f"| {arch} | {b['cpu_subgraphs']} -> {a['cpu_subgraphs']} | "
                f"{100 * b['bpu_mac_share']:.2f}% -> {100 * a['bpu_mac_share']:.2f}% | "
                f"{lb['bpu_ms']:.1f} / {lb['cpu_ms']:.1f} / {lb['handover_ms']:.1f} = {lb['total_ms']:.1f} | "
                f"{la['bpu_ms']:.1f} / {la['cpu_ms']:.1f} / {la['handover_ms']:.1f} = {la['total_ms']:.1f} | "
                f"{', '.join(a['cpu_op_types']) or '-'} | {cos:.7f} |"
            )
            if arch == "rga_sc":
                detail = a["cpu_subgraph_costs"]
    print("| model | CPU subgraphs before -> after | BPU share of MACs | est. ms before: BPU / CPU / hand-over "
          "= total | est. ms after | CPU ops after | cosine after vs exported (min, 16 PKU crops) |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print()
    print("| model | graph | CPU subgraphs | host numpy 1 thread, ms | A53 estimate, ms | estimate / host |")
    print("|---|---|---|---|---|---|")
    for arch, label, n, host, model in host_rows:
        ratio = f"{model / host:.1f}x" if host > 0 else "-"
        print(f"| {arch} | {label} | {n} | {host:.2f} | {model:.2f} | {ratio} |")
    print()
    print("RGA-SC after, per CPU subgraph: ops | int8 bytes BPU->CPU / CPU->BPU | est. ms | rule")
    for c in detail:
        rule = "; ".join(r.split(" row ")[-1] for r in c["rules"])
        print(f"| {'+'.join(c['op_types'])} | {c['bytes_bpu_to_cpu']} / {c['bytes_cpu_to_bpu']} | "
              f"{c['est_ms']['total']:.2f} | {rule} |")
