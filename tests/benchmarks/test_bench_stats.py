"""Percentile and A/B ratio arithmetic on samples whose answers were worked out by hand."""

from __future__ import annotations

import pytest

from edgereid.benchmarks.limits import limit_figures
from edgereid.benchmarks.stats import latency_summary, percentile, ratio_summary
from edgereid.errors import InputError

# 1..10 ms in shuffled order. Type-7 percentile at position q/100 * 9:
#   p50 -> 4.5 -> 5 + 0.5 * (6 - 5) = 5.5;  p90 -> 8.1 -> 9 + 0.1 * 1 = 9.1;  p99 -> 8.91 -> 9.91
#   mean 5.5; sample variance = sum((x - 5.5)^2) / 9 = 82.5 / 9 = 9.1666..; std = 3.02765
TEN_MS = [3, 7, 1, 10, 5, 2, 9, 4, 8, 6]


@pytest.mark.parametrize(
    ("samples", "q", "expected"),
    [
        (TEN_MS, 50, 5.5),
        (TEN_MS, 90, 9.1),
        (TEN_MS, 99, 9.91),
        (TEN_MS, 0, 1.0),
        (TEN_MS, 100, 10.0),
        ([4.0], 99, 4.0),
        ([2.0, 4.0], 25, 2.5),  # position 0.25 between 2 and 4
    ],
)
def test_percentile_matches_hand_values(samples, q, expected):
    assert percentile(samples, q) == pytest.approx(expected, abs=1e-12)


def test_latency_summary_in_milliseconds_with_throughput():
    seconds = [ms / 1000.0 for ms in TEN_MS]
    s = latency_summary(seconds, batch_size=4)
    assert s["p50_ms"] == pytest.approx(5.5)
    assert s["p90_ms"] == pytest.approx(9.1)
    assert s["p99_ms"] == pytest.approx(9.91)
    assert s["mean_ms"] == pytest.approx(5.5)
    assert s["std_ms"] == pytest.approx(3.0276503540974917)  # sqrt(82.5 / 9)
    assert (s["min_ms"], s["max_ms"], s["n"]) == (pytest.approx(1.0), pytest.approx(10.0), 10)
    assert s["per_crop_p50_ms"] == pytest.approx(5.5 / 4)
    assert s["throughput_crops_per_s"] == pytest.approx(4 / 0.0055)  # 727.27 crops/s


def test_ratio_summary_per_pair_median_and_iqr():
    a = [10.0, 10.0, 10.0, 10.0]
    b = [5.0, 6.0, 8.0, 10.0]
    r = ratio_summary(a, b)
    # B/A ratios 0.5 0.6 0.8 1.0: median (0.6 + 0.8) / 2 = 0.7; q1 at position 0.75 -> 0.575;
    # q3 at position 2.25 -> 0.8 + 0.25 * 0.2 = 0.85; IQR 0.275.
    assert r["time_ratio_median"] == pytest.approx(0.7)
    assert r["time_ratio_q1"] == pytest.approx(0.575)
    assert r["time_ratio_q3"] == pytest.approx(0.85)
    assert r["time_ratio_iqr"] == pytest.approx(0.275)
    # A/B speedups 2, 1.6667, 1.25, 1 -> sorted 1, 1.25, 1.6667, 2: median 1.45833; q1 1.1875; q3 1.75
    assert r["speedup_median"] == pytest.approx((1.25 + 5 / 3) / 2)
    assert r["speedup_q1"] == pytest.approx(1.1875)
    assert r["speedup_q3"] == pytest.approx(5 / 3 + 0.25 * (2 - 5 / 3))
    assert r["b_faster_fraction"] == pytest.approx(0.75)  # the last pair is a tie
    assert r["n_pairs"] == 4


def test_ratio_is_per_pair_not_ratio_of_medians():
    # A drifts 10x slower mid-run and B with it: per pair B is always half of A.
    a = [1.0, 1.0, 10.0, 10.0, 10.0]
    b = [0.5, 0.5, 5.0, 5.0, 5.0]
    r = ratio_summary(a, b)
    assert r["time_ratio_median"] == pytest.approx(0.5)
    assert r["time_ratio_iqr"] == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("a", "b"),
    [([], []), ([1.0, 2.0], [1.0]), ([1.0, 0.0], [1.0, 1.0])],
)
def test_ratio_rejects_bad_samples(a, b):
    with pytest.raises(InputError):
        ratio_summary(a, b)


def test_empty_latency_is_a_clear_error():
    with pytest.raises(InputError, match="iters"):
        latency_summary([])


def test_limit_figures():
    # 100 M MACs x 2 x batch 2 = 0.4 GFLOP; at a 100 GFLOP/s peak the floor is 4 ms; 10 ms is 2.5x it.
    f = limit_figures(latency_ms=10.0, macs_per_crop=100_000_000, batch_size=2, peak_gflops=100.0)
    assert f["floor_ms"] == pytest.approx(4.0)
    assert f["x_limit"] == pytest.approx(2.5)
    assert f["achieved_gflops"] == pytest.approx(40.0)
