"""tegrastats: parse its text lines and sample it in the background during a benchmark.

One parser for the Jetson generations a follow-car carries:

* AGX Xavier, JetPack 5 (and 4): rails named after the INA3221 channels, ``GPU 0/0 CPU 310/310
  SOC 1241/1241 CV 0/0 VDDRQ 310/310 SYS5V 1527/1527`` (mW, current/average; newer releases
  print ``310mW/310mW``). They measure separate supplies, so the module total is their sum.
* Orin: ``VDD_IN 5013mW/5013mW VDD_CPU_GPU_CV 551mW/551mW VDD_SOC 1417mW/1417mW`` (Orin NX/Nano:
  VDD_IN is the whole-module input, the others are parts of it) or AGX Orin's
  ``VDD_GPU_SOC ... VIN_SR_5V ...`` (no VDD_IN: the total is their sum);
  ``GR3D_FREQ 0%@[305,305]`` lists one frequency per GPC.

Temperatures of -256 C mean "sensor off" and are dropped. Fields the line lacks are absent.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from typing import Any, Dict, List, Sequence

_RAM = re.compile(r"\bRAM (\d+)/(\d+)MB")
_SWAP = re.compile(r"\bSWAP (\d+)/(\d+)MB")
_CPU = re.compile(r"\bCPU \[([^\]]*)\]")
_FREQ = re.compile(r"\b([A-Z][A-Z0-9_]*_FREQ) (\d+)(%)?(?:@\[?([\d,]+)\]?)?")
_TEMP = re.compile(r"\b([A-Za-z][A-Za-z0-9_]*)@(-?\d+(?:\.\d+)?)C\b")
_RAIL = re.compile(r"\b([A-Za-z][A-Za-z0-9_]*) (\d+)(?:mW)?/(\d+)(?:mW)?(?![\w.])")
_NOT_RAILS = {"RAM", "SWAP", "IRAM"}
SENSOR_OFF_C = -256.0


def _cpu_cores(text: str) -> List[Dict[str, float | None] | None]:
    cores: List[Dict[str, float | None] | None] = []
    for entry in text.split(","):
        entry = entry.strip()
        if not entry or entry == "off":
            cores.append(None)
            continue
        load, _, freq = entry.partition("@")
        try:
            cores.append({"load_pct": float(load.rstrip("%")), "freq_mhz": float(freq) if freq else None})
        except ValueError:
            cores.append(None)
    return cores


def parse_tegrastats_line(line: str) -> Dict[str, Any]:
    """Numbers from one tegrastats line (units in the key names: MB, %, MHz, C, mW).

    Returns:
        A dict with (when present in the line) ``ram_used_mb``, ``ram_total_mb``, ``swap_used_mb``,
        ``swap_total_mb``, ``cpu_cores`` (list; None = core off), ``cpu_load_mean_pct``,
        ``freqs`` {name: {load_pct, freq_mhz}} (e.g. EMC_FREQ, GR3D_FREQ), ``gpu_load_pct``,
        ``gpu_freq_mhz``, ``emc_load_pct``, ``emc_freq_mhz``, ``temps_c`` {sensor: C},
        ``rails_mw`` {rail: {current, average}}, ``power_total_mw`` and ``power_total_source``.
    """
    out: Dict[str, Any] = {}
    m = _RAM.search(line)
    if m:
        out["ram_used_mb"], out["ram_total_mb"] = int(m.group(1)), int(m.group(2))
    m = _SWAP.search(line)
    if m:
        out["swap_used_mb"], out["swap_total_mb"] = int(m.group(1)), int(m.group(2))
    m = _CPU.search(line)
    if m:
        cores = _cpu_cores(m.group(1))
        out["cpu_cores"] = cores
        online = [c["load_pct"] for c in cores if c is not None]
        if online:
            out["cpu_load_mean_pct"] = sum(online) / len(online)
    freqs: Dict[str, Dict[str, float | None]] = {}
    for name, value, pct, mhz in _FREQ.findall(line):
        if pct:
            freq = [float(f) for f in mhz.split(",") if f] if mhz else []
            freqs[name] = {"load_pct": float(value), "freq_mhz": max(freq) if freq else None}
        else:
            freqs[name] = {"load_pct": None, "freq_mhz": float(value)}
    if freqs:
        out["freqs"] = freqs
        for key, short in (("GR3D_FREQ", "gpu"), ("EMC_FREQ", "emc")):
            if key in freqs:
                out[f"{short}_load_pct"] = freqs[key]["load_pct"]
                out[f"{short}_freq_mhz"] = freqs[key]["freq_mhz"]
    temps = {name: float(v) for name, v in _TEMP.findall(line) if float(v) > SENSOR_OFF_C}
    if temps:
        out["temps_c"] = temps
    rails = {
        name: {"current": float(cur), "average": float(avg)}
        for name, cur, avg in _RAIL.findall(line)
        if name not in _NOT_RAILS
    }
    if rails:
        out["rails_mw"] = rails
        if "VDD_IN" in rails:
            out["power_total_mw"], out["power_total_source"] = rails["VDD_IN"]["current"], "VDD_IN"
        else:
            out["power_total_mw"] = sum(r["current"] for r in rails.values())
            out["power_total_source"] = "sum of rails " + "+".join(rails)
    return out


def summarize_samples(samples: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """Mean and max of the scalar fields over a run, plus mean current per rail and max per sensor."""
    if not samples:
        return {"n": 0}
    out: Dict[str, Any] = {"n": len(samples)}
    scalars = ("ram_used_mb", "cpu_load_mean_pct", "gpu_load_pct", "gpu_freq_mhz", "emc_load_pct",
               "emc_freq_mhz", "power_total_mw")
    for key in scalars:
        values = [s[key] for s in samples if s.get(key) is not None]
        if values:
            out[key] = {"mean": sum(values) / len(values), "max": max(values)}
    rails: Dict[str, List[float]] = {}
    temps: Dict[str, float] = {}
    for s in samples:
        for name, r in s.get("rails_mw", {}).items():
            rails.setdefault(name, []).append(r["current"])
        for name, t in s.get("temps_c", {}).items():
            temps[name] = max(t, temps.get(name, t))
    if rails:
        out["rails_mean_mw"] = {k: sum(v) / len(v) for k, v in rails.items()}
    if temps:
        out["temps_max_c"] = temps
    sources = {s.get("power_total_source") for s in samples if s.get("power_total_source")}
    if sources:
        out["power_total_source"] = sorted(sources)[0]
    return out


class TegrastatsSampler:
    """Run ``tegrastats --interval MS`` in the background and keep parsed lines.

    Use as a context manager around the timed loop. Where tegrastats is absent (not a Jetson)
    ``available`` is False and nothing runs; the report then says so instead of inventing numbers.

    Args:
        interval_ms: sampling period passed to tegrastats.
        command: the executable (tests pass a fake script).
    """

    def __init__(self, interval_ms: int = 500, command: str = "tegrastats") -> None:
        self.interval_ms = int(interval_ms)
        self.command = command
        self.executable = shutil.which(command)
        self.samples: List[Dict[str, Any]] = []
        self.raw_lines: List[str] = []
        self.error: str | None = None if self.executable else f"{command!r} not found on PATH (not a Jetson?)"
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None

    @property
    def available(self) -> bool:
        return self.executable is not None

    def start(self) -> TegrastatsSampler:
        if not self.available or self._proc is not None:
            return self
        try:
            self._proc = subprocess.Popen(
                [self.executable, "--interval", str(self.interval_ms)],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1,
            )
        except OSError as exc:
            self.error = f"cannot start {self.command}: {exc}"
            return self
        self._thread = threading.Thread(target=self._read, name="tegrastats", daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            line = line.strip()
            if line:
                self.raw_lines.append(line)
                parsed = parse_tegrastats_line(line)
                if parsed:
                    parsed["t"] = time.time()
                    self.samples.append(parsed)

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._proc = None

    def __enter__(self) -> TegrastatsSampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def report(self) -> Dict[str, Any]:
        """``{"available", "error", "interval_ms", "summary", "samples"}`` for the JSON report."""
        return {
            "available": self.available and self.error is None,
            "error": self.error,
            "interval_ms": self.interval_ms,
            "summary": summarize_samples(self.samples),
            "samples": self.samples,
        }
