"""Benchmarks: latency harness, statistics, conditions (Jetson/X3 included), tegrastats, reports."""

from __future__ import annotations

from edgereid.benchmarks.conditions import collect_conditions
from edgereid.benchmarks.harness import EmbedderTarget, compare_interleaved, measure
from edgereid.benchmarks.limits import count_onnx_macs, limit_figures, measure_peak_flops
from edgereid.benchmarks.run import benchmark, run_targets
from edgereid.benchmarks.stats import latency_summary, percentile, ratio_summary
from edgereid.benchmarks.tegrastats import TegrastatsSampler, parse_tegrastats_line

__all__ = [
    "EmbedderTarget",
    "TegrastatsSampler",
    "benchmark",
    "collect_conditions",
    "compare_interleaved",
    "count_onnx_macs",
    "latency_summary",
    "limit_figures",
    "measure",
    "measure_peak_flops",
    "parse_tegrastats_line",
    "percentile",
    "ratio_summary",
    "run_targets",
]
