"""Latency statistics and A/B ratios, the arithmetic behind every reid-bench figure.

Percentiles use linear interpolation between order statistics (NumPy's default, Hyndman & Fan
type 7): for sorted samples x_0..x_{n-1}, the q-th percentile sits at position q/100*(n-1).
``std`` is the sample standard deviation (n-1 in the denominator).

A/B comparisons are summarised from *per-pair* ratios (each B timing divided by the A timing
taken right before it, interleaved A B A B ...), so drift in machine load during the run
affects both members of a pair alike; the spread is the inter-quartile range of those ratios.
"""

from __future__ import annotations

from typing import Dict, Sequence

import numpy as np

from edgereid.errors import InputError

PERCENTILES = (50, 90, 99)


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``samples`` with linear interpolation (type 7)."""
    x = np.sort(np.asarray(samples, np.float64))
    if x.size == 0:
        raise InputError("cannot take a percentile of zero samples; run at least one iteration.")
    if not 0 <= q <= 100:
        raise InputError(f"percentile must be in [0, 100], got {q}.")
    pos = q / 100.0 * (x.size - 1)
    lo = int(np.floor(pos))
    hi = min(lo + 1, x.size - 1)
    return float(x[lo] + (pos - lo) * (x[hi] - x[lo]))


def latency_summary(seconds: Sequence[float], batch_size: int = 1) -> Dict[str, float]:
    """Summary of per-call latencies.

    Args:
        seconds: (n,) wall-clock seconds of each timed call.
        batch_size: crops per call, for throughput and per-crop latency.

    Returns:
        ``p50_ms, p90_ms, p99_ms, mean_ms, std_ms, min_ms, max_ms`` (milliseconds per call),
        ``per_crop_p50_ms``, ``throughput_crops_per_s`` (= batch_size / mean latency) and ``n``.
    """
    x = np.asarray(seconds, np.float64) * 1000.0
    if x.size == 0:
        raise InputError("no latency samples; --iters must be at least 1.")
    mean = float(x.mean())
    out = {f"p{q}_ms": percentile(x, q) for q in PERCENTILES}
    out.update(
        mean_ms=mean,
        std_ms=float(x.std(ddof=1)) if x.size > 1 else 0.0,
        min_ms=float(x.min()),
        max_ms=float(x.max()),
        per_crop_p50_ms=out["p50_ms"] / batch_size,
        throughput_crops_per_s=batch_size * 1000.0 / mean if mean > 0 else float("inf"),
        n=int(x.size),
    )
    return out


def ratio_summary(a_seconds: Sequence[float], b_seconds: Sequence[float]) -> Dict[str, float]:
    """Per-pair B/A time ratios of interleaved runs, with their spread.

    Args:
        a_seconds: (n,) timings of A; ``a_seconds[i]`` was taken right before ``b_seconds[i]``.
        b_seconds: (n,) timings of B.

    Returns:
        ``time_ratio_median`` (B time / A time; < 1 means B is faster), ``time_ratio_q1``,
        ``time_ratio_q3``, ``time_ratio_iqr``, ``speedup_median`` (A time / B time per pair; > 1
        means B is faster), ``speedup_q1``, ``speedup_q3``, ``speedup_iqr``, ``b_faster_fraction``
        (share of pairs where B was faster) and ``n_pairs``.
    """
    a = np.asarray(a_seconds, np.float64)
    b = np.asarray(b_seconds, np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise InputError(f"need equally many A and B timings (>0), got {a.shape} and {b.shape}.")
    if np.any(a <= 0) or np.any(b <= 0):
        raise InputError("timings must be positive to form ratios.")
    out: Dict[str, float] = {}
    for name, r in (("time_ratio", b / a), ("speedup", a / b)):
        q1, med, q3 = percentile(r, 25), percentile(r, 50), percentile(r, 75)
        out.update({f"{name}_median": med, f"{name}_q1": q1, f"{name}_q3": q3, f"{name}_iqr": q3 - q1})
    out["b_faster_fraction"] = float(np.mean(b < a))
    out["n_pairs"] = int(a.size)
    return out
