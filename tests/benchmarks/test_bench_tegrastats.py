"""tegrastats lines of AGX Xavier (JetPack 5) and Orin parsed into numbers."""

from __future__ import annotations

import os
import stat

import pytest

from edgereid.benchmarks.tegrastats import TegrastatsSampler, parse_tegrastats_line, summarize_samples

XAVIER_JP5 = (
    "RAM 2353/31920MB (lfb 7218x4MB) SWAP 0/15960MB (cached 0MB) "
    "CPU [1%@1190,0%@1190,off,off,off,off,off,off] EMC_FREQ 0%@2133 GR3D_FREQ 0%@1377 "
    "AO@32C GPU@32.5C Tdiode@35.25C PMIC@50C AUX@31.5C CPU@33C thermal@32.35C Tboard@32C "
    "GPU 0/0 CPU 310/310 SOC 1241/1241 CV 0/0 VDDRQ 310/310 SYS5V 1527/1527"
)
XAVIER_BUSY = (
    "RAM 5120/31920MB (lfb 6000x4MB) SWAP 0/15960MB (cached 0MB) "
    "CPU [45%@2265,30%@2265,12%@2265,8%@2265,off,off,off,off] EMC_FREQ 31%@2133 GR3D_FREQ 87%@1377 "
    "APE 150 MTS fg 0% bg 0% AO@36.5C GPU@41C PMIC@50C AUX@35.5C CPU@38C thermal@38.1C "
    "GPU 7123mW/3716mW CPU 1240mW/775mW SOC 2480mW/1860mW CV 0mW/0mW VDDRQ 930mW/620mW SYS5V 2543mW/2035mW"
)
ORIN_NX = (
    "11-28-2026 01:40:00 RAM 2024/7620MB (lfb 5x4MB) SWAP 0/3810MB (cached 0MB) "
    "CPU [2%@729,0%@729,1%@729,0%@729,off,off] EMC_FREQ 0%@2133 GR3D_FREQ 12%@[305,624] VIC_FREQ 115 "
    "APE 174 CV0@-256C CPU@45.968C SOC2@42.062C tj@46.281C "
    "VDD_IN 5013mW/4980mW VDD_CPU_GPU_CV 551mW/540mW VDD_SOC 1417mW/1400mW"
)


def test_xavier_jetpack5_line():
    s = parse_tegrastats_line(XAVIER_JP5)
    assert (s["ram_used_mb"], s["ram_total_mb"]) == (2353, 31920)
    assert (s["swap_used_mb"], s["swap_total_mb"]) == (0, 15960)
    assert len(s["cpu_cores"]) == 8
    assert s["cpu_cores"][0] == {"load_pct": 1.0, "freq_mhz": 1190.0}
    assert s["cpu_cores"][2] is None  # "off"
    assert s["cpu_load_mean_pct"] == pytest.approx(0.5)  # (1 + 0) / 2 online cores
    assert (s["emc_load_pct"], s["emc_freq_mhz"]) == (0.0, 2133.0)
    assert (s["gpu_load_pct"], s["gpu_freq_mhz"]) == (0.0, 1377.0)
    assert s["temps_c"] == {"AO": 32.0, "GPU": 32.5, "Tdiode": 35.25, "PMIC": 50.0, "AUX": 31.5, "CPU": 33.0,
                            "thermal": 32.35, "Tboard": 32.0}
    assert s["rails_mw"] == {
        "GPU": {"current": 0.0, "average": 0.0},
        "CPU": {"current": 310.0, "average": 310.0},
        "SOC": {"current": 1241.0, "average": 1241.0},
        "CV": {"current": 0.0, "average": 0.0},
        "VDDRQ": {"current": 310.0, "average": 310.0},
        "SYS5V": {"current": 1527.0, "average": 1527.0},
    }
    assert s["power_total_mw"] == 310 + 1241 + 310 + 1527  # separate supplies: the sum, 3388 mW
    assert s["power_total_source"].startswith("sum of rails")


def test_xavier_busy_line_with_mw_units():
    s = parse_tegrastats_line(XAVIER_BUSY)
    assert s["gpu_load_pct"] == 87.0
    assert s["emc_load_pct"] == 31.0
    assert s["cpu_load_mean_pct"] == pytest.approx((45 + 30 + 12 + 8) / 4)
    assert s["rails_mw"]["GPU"] == {"current": 7123.0, "average": 3716.0}
    assert s["power_total_mw"] == 7123 + 1240 + 2480 + 0 + 930 + 2543
    assert "RAM" not in s["rails_mw"] and "SWAP" not in s["rails_mw"]


def test_orin_line_uses_vdd_in_and_drops_off_sensors():
    s = parse_tegrastats_line(ORIN_NX)
    assert s["ram_used_mb"] == 2024
    assert s["gpu_load_pct"] == 12.0
    assert s["gpu_freq_mhz"] == 624.0  # the faster of the two GPCs
    assert s["freqs"]["VIC_FREQ"] == {"load_pct": None, "freq_mhz": 115.0}
    assert "CV0" not in s["temps_c"]  # -256 C = sensor off
    assert s["temps_c"]["tj"] == pytest.approx(46.281)
    assert s["rails_mw"]["VDD_IN"] == {"current": 5013.0, "average": 4980.0}
    assert s["power_total_mw"] == 5013.0  # VDD_IN is the module input; the others are parts of it
    assert s["power_total_source"] == "VDD_IN"


def test_summary_over_samples():
    samples = [parse_tegrastats_line(XAVIER_JP5), parse_tegrastats_line(XAVIER_BUSY)]
    s = summarize_samples(samples)
    assert s["n"] == 2
    assert s["gpu_load_pct"] == {"mean": 43.5, "max": 87.0}
    assert s["power_total_mw"]["mean"] == pytest.approx((3388 + 14316) / 2)
    assert s["rails_mean_mw"]["GPU"] == pytest.approx(3561.5)
    assert s["temps_max_c"]["GPU"] == 41.0
    assert summarize_samples([]) == {"n": 0}


def test_sampler_runs_a_tegrastats_executable(tmp_path):
    fake = tmp_path / "tegrastats"
    fake.write_text(f"#!/bin/sh\nwhile true; do echo '{XAVIER_JP5}'; sleep 0.05; done\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    sampler = TegrastatsSampler(interval_ms=50, command=str(fake))
    assert sampler.available
    with sampler:
        import time

        deadline = time.time() + 5
        while not sampler.samples and time.time() < deadline:
            time.sleep(0.05)
    rep = sampler.report()
    assert rep["available"] and rep["summary"]["n"] >= 1
    assert rep["samples"][0]["ram_used_mb"] == 2353


def test_sampler_absent_says_so():
    sampler = TegrastatsSampler(command=os.path.join("/nonexistent", "tegrastats"))
    with sampler:
        pass
    rep = sampler.report()
    assert rep["available"] is False and "not found" in rep["error"] and rep["summary"] == {"n": 0}
