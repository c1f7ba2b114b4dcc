"""reid-bench outputs: the JSON report, a markdown table and a PNG of the latency distributions.

JSON schema ``edgereid.reid_bench/1`` (documented field by field in docs/bench-eval.md)::

    schema        "edgereid.reid_bench/1"
    mode          "single" | "compare" | "follow"
    created_utc   ISO 8601 time of the run
    settings      {batch_sizes, warmup, iters, threads, input}
    targets       [{name, bundle, backend, arch, precision, runner, macs_per_crop, memory, ...}]
    latency       {target: {batch: {p50_ms, p90_ms, p99_ms, mean_ms, std_ms, min_ms, max_ms,
                                    per_crop_p50_ms, throughput_crops_per_s, n, limit}}}
    samples_ms    {target: {batch: [per-call ms, in run order]}}
    compare       null | {a, b, by_batch: {batch: ratio_summary}}  (B relative to A)
    memory        {peak_rss_mb}
    fp32_limit    null | {peak_gflops, n, best_s, repeats, threads, dtype}
    energy        null | {target: {batch: {power_mean_mw, energy_per_crop_mj}}}   (Jetson, single mode)
    tegrastats    {available, error, interval_ms, summary, samples}
    conditions    edgereid.benchmarks.conditions.collect_conditions()
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, List

from edgereid.bundle import atomic_write_bytes, atomic_write_text, json_text
from edgereid.errors import InputError


def check_report_path(path: str | os.PathLike[str] | None) -> Path | None:
    """Refuse a report path we could not write, before any long run starts."""
    if path is None:
        return None
    p = Path(path)
    if p.is_dir():
        raise InputError(f"--out {str(p)!r} is a directory; give a file name such as report.json.")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"--out {str(p)!r}: {str(parent)!r} is not an existing directory; create it first.")
    if p.exists() and not os.access(p, os.W_OK):
        raise InputError(f"--out {str(p)!r} exists and is not writable.")
    try:  # a real write probe also catches read-only mounts, which os.access misses for root
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        raise InputError(f"--out {str(p)!r}: cannot write in {str(parent)!r} ({exc.strerror}).") from exc
    return p


def write_json(path: str | os.PathLike[str], report: Dict[str, Any]) -> None:
    atomic_write_text(path, json_text(report, nan_as_null=True, default=_jsonable))


def _jsonable(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj)}")


def _fmt(v: Any, digits: int = 2) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def conditions_line(cond: Dict[str, Any]) -> str:
    libs = cond.get("libraries", {})
    parts = [f"CPU {cond.get('cpu_model')}",
             f"{cond.get('usable_cpus')} usable / {cond.get('logical_cpus')} logical CPUs",
             f"Python {cond.get('python')}"]
    shown = ("numpy", "onnxruntime", "onnxruntime-gpu", "tensorrt", "torch")
    parts += [f"{k} {v}" for k, v in libs.items() if k in shown]
    jet = cond.get("jetson")
    if jet:
        l4t = jet.get("l4t") or {}
        nvp = jet.get("nvpmodel") or {}
        clocks = (jet.get("jetson_clocks") or {}).get("on")
        parts.append(f"Jetson {jet.get('model')} L4T {l4t.get('l4t')} (JetPack {l4t.get('jetpack')}), "
                     f"nvpmodel {nvp.get('name')}, jetson_clocks {'on' if clocks else 'off/unknown'}, "
                     f"TensorRT {jet.get('tensorrt')}, CUDA {jet.get('cuda')}")
    if cond.get("x3"):
        parts.append(f"X3 {cond['x3'].get('model')}")
    return "; ".join(parts)


def to_markdown(report: Dict[str, Any]) -> str:
    """The report as markdown: latency table, the A/B ratios when comparing, and the conditions."""
    lines = ["| target | batch | p50 ms | p90 ms | p99 ms | mean ± std ms | min ms | max ms | crops/s | x FP32 limit |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, by_batch in report["latency"].items():
        for bs, s in by_batch.items():
            limit = (s.get("limit") or {}).get("x_limit")
            lines.append(
                f"| {name} | {bs} | {_fmt(s['p50_ms'])} | {_fmt(s['p90_ms'])} | {_fmt(s['p99_ms'])} | "
                f"{_fmt(s['mean_ms'])} ± {_fmt(s['std_ms'])} | {_fmt(s['min_ms'])} | {_fmt(s['max_ms'])} | "
                f"{_fmt(s['throughput_crops_per_s'], 1)} | {_fmt(limit, 1)} |"
            )
    cmp = report.get("compare")
    if cmp:
        lines += ["", f"B = {cmp['b']} relative to A = {cmp['a']}, per-pair ratios of interleaved calls:", "",
                  "| batch | B/A time, median | IQR (q1–q3) | speedup A/B, median | IQR (q1–q3) "
                  "| B faster in | pairs |",
                  "|---:|---:|---:|---:|---:|---:|---:|"]
        for bs, r in cmp["by_batch"].items():
            lines.append(
                f"| {bs} | {r['time_ratio_median']:.3f} | {r['time_ratio_q1']:.3f}–{r['time_ratio_q3']:.3f} | "
                f"{r['speedup_median']:.3f} | {r['speedup_q1']:.3f}–{r['speedup_q3']:.3f} | "
                f"{100 * r['b_faster_fraction']:.0f}% | {r['n_pairs']} |"
            )
    lim = report.get("fp32_limit")
    if lim:
        lines += ["", f"FP32 limit: {lim['peak_gflops']:.1f} GFLOP/s (numpy {lim['n']}x{lim['n']} matmul, best of "
                      f"{lim['repeats']}); x FP32 limit = p50 / (MACs x 2 x batch / peak)."]
    mem = report.get("memory") or {}
    lines += ["", f"Peak RSS {_fmt(mem.get('peak_rss_mb'), 1)} MiB. "
                  f"Conditions: {conditions_line(report['conditions'])}."]
    teg = (report.get("tegrastats") or {}).get("summary") or {}
    if teg.get("n"):
        p = teg.get("power_total_mw") or {}
        g = teg.get("gpu_load_pct") or {}
        lines.append(f"tegrastats ({teg['n']} samples): power mean {_fmt(p.get('mean'), 0)} mW "
                     f"({teg.get('power_total_source')}), GPU load mean {_fmt(g.get('mean'), 0)}%.")
    return "\n".join(lines) + "\n"


def plot_latency(report: Dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Box plots of per-call latency, one panel per batch size, written atomically as PNG."""
    from edgereid.lazy import require

    matplotlib = require("matplotlib", "plotting latency distributions")
    matplotlib.use("Agg")
    import io

    import matplotlib.pyplot as plt

    samples = report["samples_ms"]
    batches = sorted({int(b) for by in samples.values() for b in by})
    fig, axes = plt.subplots(1, len(batches), figsize=(4.5 * len(batches), 4), squeeze=False)
    for ax, bs in zip(axes[0], batches):
        names = [n for n in samples if str(bs) in samples[n]]
        data = [samples[n][str(bs)] for n in names]
        ax.boxplot(data, showfliers=True)
        ax.set_xticks(range(1, len(names) + 1), names, rotation=15, fontsize=8)
        ax.set_title(f"batch {bs}")
        ax.set_ylabel("latency per call (ms)")
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"reid-bench ({report['mode']}), {report['conditions'].get('cpu_model')}", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def write_outputs(report: Dict[str, Any], out: str | os.PathLike[str], plot: bool = True) -> List[Path]:
    """``out`` (JSON) plus ``<stem>.md`` and ``<stem>.png`` beside it; returns the paths written."""
    out = Path(out)
    write_json(out, report)
    written = [out]
    md = out.with_suffix(".md")
    atomic_write_text(md, to_markdown(report))
    written.append(md)
    if plot and report.get("samples_ms"):
        from edgereid.lazy import available

        if available("matplotlib"):
            written.append(plot_latency(report, out.with_suffix(".png")))
        else:  # a car image often lacks matplotlib: the JSON and markdown are the report
            logging.getLogger(__name__).warning("matplotlib is not installed: no latency plot (%s).",
                                                out.with_suffix(".png"))
    return written
