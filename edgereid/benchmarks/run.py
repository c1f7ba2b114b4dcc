"""reid-bench's library half: measure one target, or two interleaved, and build the report.

Everything the CLI does is callable here: ``benchmark(["bundle_dir"])`` or
``benchmark(["a_dir:ort", "a_dir:ort-int8"])`` (two specs = compare mode).
"""

from __future__ import annotations

import datetime
import logging
import time
from typing import Any, Dict, List, Sequence, Tuple

from edgereid.benchmarks.conditions import collect_conditions
from edgereid.benchmarks.harness import (
    BenchTarget,
    Clock,
    EmbedderTarget,
    compare_interleaved,
    measure,
    parse_target_spec,
)
from edgereid.benchmarks.limits import count_onnx_macs, limit_figures, measure_peak_flops
from edgereid.benchmarks.resources import peak_rss_mb
from edgereid.benchmarks.stats import latency_summary, ratio_summary
from edgereid.benchmarks.tegrastats import TegrastatsSampler
from edgereid.errors import BundleError, EdgeReidError, InputError

log = logging.getLogger(__name__)

SCHEMA = "edgereid.reid_bench/1"


def parse_batch_sizes(text: str | Sequence[int]) -> List[int]:
    """``"1,4,8"`` -> [1, 4, 8]; a clear error for anything else."""
    if not isinstance(text, str):
        return [int(b) for b in text]
    try:
        sizes = [int(t) for t in text.split(",") if t.strip()]
    except ValueError as exc:
        raise InputError(f"--batch expects comma-separated integers such as 1,4,8, got {text!r}.") from exc
    if not sizes or any(b < 1 for b in sizes):
        raise InputError(f"--batch sizes must be >= 1, got {text!r}.")
    return sizes


def _macs(target: Any) -> int | None:
    """MACs per crop from the bundle's FP32 ONNX (the same model whatever the backend's precision)."""
    bundle = getattr(target, "bundle", None)
    if bundle is None or not bundle.has("onnx"):
        return None
    try:
        return count_onnx_macs(bundle.path("onnx"))
    except BundleError:  # a corrupt model.onnx: the one message, before any backend tries to load it
        raise
    except EdgeReidError as exc:
        log.warning("MACs not counted: %s", exc)
        return None


def build_report(mode: str, targets: Sequence[BenchTarget], timings: Dict[str, Dict[int, List[float]]],
                 settings: Dict[str, Any], pairs: Dict[int, Tuple[List[float], List[float]]] | None = None,
                 fp32_limit: Dict[str, Any] | None = None, tegrastats: Dict[str, Any] | None = None,
                 macs: Dict[str, int | None] | None = None) -> Dict[str, Any]:
    """Assemble the ``edgereid.reid_bench/1`` report from raw per-call seconds."""
    macs = macs or {}
    latency: Dict[str, Dict[str, Any]] = {}
    samples: Dict[str, Dict[str, List[float]]] = {}
    for t in targets:
        latency[t.name], samples[t.name] = {}, {}
        for bs, secs in timings[t.name].items():
            s = latency_summary(secs, bs)
            m = macs.get(t.name)
            s["limit"] = limit_figures(s["p50_ms"], m, bs, fp32_limit["peak_gflops"]) if m and fp32_limit else None
            latency[t.name][str(bs)] = s
            samples[t.name][str(bs)] = [round(x * 1000.0, 4) for x in secs]
    compare = None
    if pairs is not None:
        a, b = targets
        compare = {"a": a.name, "b": b.name,
                   "by_batch": {str(bs): ratio_summary(ta, tb) for bs, (ta, tb) in pairs.items()}}
    energy = None
    teg_summary = (tegrastats or {}).get("summary") or {}
    power = (teg_summary.get("power_total_mw") or {}).get("mean")
    if power is not None and mode == "single":
        energy = {t.name: {bs: {"power_mean_mw": power,
                                "energy_per_crop_mj": power * s["mean_ms"] / 1000.0 / int(bs)}
                           for bs, s in latency[t.name].items()} for t in targets}
    described = []
    for t in targets:
        d = t.describe()
        d["macs_per_crop"] = macs.get(t.name)
        d["memory"] = getattr(t, "memory", {})
        described.append(d)
    return {
        "schema": SCHEMA,
        "mode": mode,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "settings": settings,
        "targets": described,
        "latency": latency,
        "samples_ms": samples,
        "compare": compare,
        "memory": {"peak_rss_mb": peak_rss_mb()},
        "fp32_limit": fp32_limit,
        "energy": energy,
        "tegrastats": tegrastats,
        "conditions": collect_conditions(),
    }


def run_targets(targets: Sequence[BenchTarget], batch_sizes: Sequence[int], warmup: int = 10, iters: int = 100,
                progress: bool = False, tegrastats: bool = True, peak_probe: bool = True,
                threads: int | None = None, settings: Dict[str, Any] | None = None,
                clock: Clock = time.perf_counter) -> Dict[str, Any]:
    """Measure one target, or two interleaved (compare mode), and return the report."""
    if len(targets) not in (1, 2):
        raise InputError(f"benchmark one target or compare two, got {len(targets)}.")
    if len(targets) == 2 and targets[0].name == targets[1].name:
        targets[0].name, targets[1].name = f"{targets[0].name} (A)", f"{targets[1].name} (B)"
    batch_sizes = parse_batch_sizes(batch_sizes)
    macs = {t.name: _macs(t) for t in targets}
    fp32_limit = measure_peak_flops(threads=threads) if peak_probe else None
    sampler = TegrastatsSampler() if tegrastats else None
    pairs = None
    set_up: List[BenchTarget] = []
    try:
        for t in targets:
            t.setup(batch_sizes)
            set_up.append(t)
        if sampler is not None:
            sampler.start()
        try:
            if len(targets) == 1:
                timings = {targets[0].name: measure(targets[0], batch_sizes, warmup, iters, progress, clock)}
            else:
                pairs = compare_interleaved(targets[0], targets[1], batch_sizes, warmup, iters, progress, clock)
                timings = {targets[0].name: {bs: p[0] for bs, p in pairs.items()},
                           targets[1].name: {bs: p[1] for bs, p in pairs.items()}}
        finally:
            if sampler is not None:
                sampler.stop()
    finally:
        for t in set_up:
            t.teardown()
    base_settings = {"batch_sizes": batch_sizes, "warmup": warmup, "iters": iters, "threads": threads}
    base_settings.update(settings or {})
    return build_report("single" if len(targets) == 1 else "compare", targets, timings, base_settings, pairs,
                        fp32_limit, sampler.report() if sampler is not None else None, macs)


def benchmark(specs: Sequence[str], batch_sizes: str | Sequence[int] = (1,), warmup: int = 10, iters: int = 100,
              threads: int | None = None, default_backend: str = "ort", data: str | None = None,
              progress: bool = False, tegrastats: bool = True, peak_probe: bool = True,
              include_preprocess: bool = False) -> Dict[str, Any]:
    """Benchmark ``BUNDLE[:BACKEND]`` specs: one = single mode, two = interleaved compare mode.

    Args:
        specs: one or two bundle specs.
        batch_sizes: ``"1,4,8"`` or a list.
        warmup, iters: untimed and timed calls per batch size (per target).
        threads: intra-op threads of each backend and of the FP32 probe.
        default_backend: backend for specs without ``:backend``.
        data: optional folder of real crops to batch (default: synthetic noise).
        progress: tqdm bar.
        tegrastats: sample tegrastats during the run where it exists.
        peak_probe: run the matmul FP32 probe for the x-limit column.
        include_preprocess: time embed(crops) (resize + normalise + inference), not just inference.
    """
    crops = _load_crops(data) if data else None
    targets = []
    for spec in specs:
        bundle, backend = parse_target_spec(spec, default_backend)
        targets.append(EmbedderTarget(bundle, backend, threads=threads, crops=crops,
                                      include_preprocess=include_preprocess))
    return run_targets(targets, parse_batch_sizes(batch_sizes), warmup, iters, progress, tegrastats, peak_probe,
                       threads, settings={"input": "dataset crops" if crops else "synthetic", "data": data})


def _load_crops(data: str, limit: int = 64) -> List[Any]:
    from edgereid.evaluation.naming import list_images, read_image

    paths = list_images(data)[:limit]
    if not paths:
        raise InputError(f"--data {data!r} holds no images (.jpg/.png/.bmp).")
    return [read_image(p) for p in paths]
