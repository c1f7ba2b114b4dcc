"""Latency harness: time targets one call at a time, alone or interleaved A B A B.

A *target* is anything with ``name``, ``setup(batch_sizes)``, ``run(batch_size)`` (one timed call),
``teardown()`` and ``describe()``. :class:`EmbedderTarget` wraps a bundle backend; tests use fakes.
Inputs are prepared in ``setup`` so only inference (plus the manifest's flip-average and L2)
is timed, not image decoding or resizing.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Protocol, Sequence, Tuple

import numpy as np

from edgereid.benchmarks.resources import current_rss_mb, gpu_memory_mb
from edgereid.errors import InputError
from edgereid.progress import progress_bar
from edgereid.runtime.backends import ORT_BACKENDS, backend_options  # noqa: F401 - re-exported

log = logging.getLogger(__name__)

Clock = Callable[[], float]


class BenchTarget(Protocol):
    name: str

    def setup(self, batch_sizes: Sequence[int]) -> None: ...

    def run(self, batch_size: int) -> None: ...

    def teardown(self) -> None: ...

    def describe(self) -> Dict[str, Any]: ...


def synthetic_crops(count: int, height: int, width: int, seed: int = 0) -> List[np.ndarray]:
    """``count`` deterministic noise crops (height, width, 3) uint8 BGR (latency does not depend on content)."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]


def parse_target_spec(spec: str, default_backend: str = "ort") -> Tuple[str, str]:
    """``DIR`` or ``DIR:backend`` -> (bundle dir, backend); an existing dir wins over a colon split."""
    if Path(spec).is_dir() or ":" not in spec:
        return spec, default_backend
    bundle, _, backend = spec.rpartition(":")
    if not bundle or not backend:
        raise InputError(f"cannot read target {spec!r}; expected BUNDLE_DIR or BUNDLE_DIR:BACKEND.")
    return bundle, backend


def _overrides_embed(runner: Any) -> bool:
    """True for runners that take crops, not float batches (the X3 BPU feeds raw NV12 bytes)."""
    from edgereid.runtime.embedder import EmbedderRunner

    return type(runner).embed is not EmbedderRunner.embed


class EmbedderTarget:
    """One bundle backend as a benchmark target.

    Args:
        bundle: bundle directory (or Bundle).
        backend: embedder backend name (``ort``, ``ort-int8``, ``trt``, ``bpu``, ``torch``).
        threads: intra-op threads passed to the backend (None = its default).
        crops: BGR crops to batch (default: synthetic noise at the model input size).
        name: label in reports (default ``<bundle dir name>:<backend>``).
        include_preprocess: time ``embed(crops)`` (resize, colour order, normalise + inference)
            instead of ``embed_batch`` on a prepared batch. Always on for runners that take crops
            (the X3 BPU), whose preprocessing is part of the device path.
    """

    def __init__(self, bundle: Any, backend: str = "ort", threads: int | None = None,
                 crops: Sequence[np.ndarray] | None = None, name: str | None = None,
                 include_preprocess: bool = False) -> None:
        from edgereid.bundle import Bundle
        from edgereid.runtime.embedder import load_embedder

        self.bundle = bundle if isinstance(bundle, Bundle) else Bundle.load(bundle)
        self.backend = backend
        self.threads = threads
        options = backend_options(backend, threads)
        if backend == "ort-int8":  # latency: time ORT's integer kernels (what a CPU runs), not the simulation
            options["fake_quant"] = False
        self.runner = load_embedder(self.bundle, backend, **options)  # bad names fail
        self.include_preprocess = include_preprocess or _overrides_embed(self.runner)
        self.crops = list(crops) if crops else None
        self.name = name or f"{self.bundle.root.name}:{backend}"
        self._batches: Dict[int, Any] = {}
        self.memory: Dict[str, Any] = {}
        self.providers: List[str] | None = None

    def setup(self, batch_sizes: Sequence[int]) -> None:
        spec = self.bundle.preprocess
        crops = self.crops or synthetic_crops(max(batch_sizes), spec.height, spec.width)
        before = current_rss_mb()
        self.runner.activate()
        after = current_rss_mb()
        session = getattr(self.runner, "session", None)
        if session is not None and hasattr(session, "get_providers"):
            self.providers = list(session.get_providers())
        for bs in batch_sizes:
            chosen = [crops[i % len(crops)] for i in range(bs)]
            self._batches[bs] = chosen if self.include_preprocess else spec(chosen)
        if before is not None and after is not None:
            self.memory["rss_activate_delta_mb"] = after - before

    def run(self, batch_size: int) -> None:
        if self.include_preprocess:
            self.runner.embed(self._batches[batch_size])
        else:
            self.runner.embed_batch(self._batches[batch_size])

    def teardown(self) -> None:
        gpu = gpu_memory_mb()
        if gpu is not None:
            self.memory["gpu"] = gpu
        self.runner.deactivate()

    def describe(self) -> Dict[str, Any]:
        m = self.bundle.manifest
        info = {"name": self.name, "bundle": str(self.bundle.root), "backend": self.backend, "arch": m.arch,
                "precision": m.precision, "target": m.target, "threads": self.threads,
                "runner": type(self.runner).__name__, "input": "dataset crops" if self.crops else "synthetic",
                "timed": "embed(crops): preprocessing + inference + post-processing" if self.include_preprocess
                else "embed_batch(prepared batch): inference + flip-average/L2"}
        x3 = m.extra.get("x3")
        x3 = x3 if isinstance(x3, dict) else {}
        core = {k: v for k, v in x3.items() if "core" in k or k.startswith("input_type")}
        if core:
            info["x3"] = core  # which BPU core(s) the model was compiled for
        for attr in ("model_path", "providers", "core_id", "engine_path"):
            value = getattr(self.runner, attr, None)
            if value is not None:
                info[attr] = value if isinstance(value, (str, int, float)) else str(value)
        if self.providers is not None:
            info["providers"] = self.providers
        return info


def _check(batch_sizes: Iterable[int], warmup: int, iters: int) -> List[int]:
    sizes = list(batch_sizes)
    if not sizes or any(int(b) < 1 for b in sizes):
        raise InputError(f"batch sizes must be integers >= 1, got {sizes}.")
    if warmup < 0 or iters < 1:
        raise InputError(f"need --warmup >= 0 and --iters >= 1, got warmup={warmup}, iters={iters}.")
    return [int(b) for b in sizes]


def _timed(target: BenchTarget, batch_size: int, clock: Clock) -> float:
    start = clock()
    target.run(batch_size)
    return clock() - start




def measure(target: BenchTarget, batch_sizes: Sequence[int], warmup: int = 10, iters: int = 100,
            progress: bool = False, clock: Clock = time.perf_counter) -> Dict[int, List[float]]:
    """Per-call seconds of ``target`` for each batch size (``warmup`` untimed calls first)."""
    sizes = _check(batch_sizes, warmup, iters)
    bar = progress_bar(len(sizes) * (warmup + iters), target.name, progress, unit="call")
    out: Dict[int, List[float]] = {}
    try:
        for bs in sizes:
            for _ in range(warmup):
                target.run(bs)
                bar.update(1)
            samples = []
            for _ in range(iters):
                samples.append(_timed(target, bs, clock))
                bar.update(1)
            out[bs] = samples
    finally:
        bar.close()
    return out


def compare_interleaved(a: BenchTarget, b: BenchTarget, batch_sizes: Sequence[int], warmup: int = 10,
                        iters: int = 100, progress: bool = False,
                        clock: Clock = time.perf_counter) -> Dict[int, Tuple[List[float], List[float]]]:
    """Time A and B alternately (A B A B ...) per batch size; pair i is (A's i-th, B's i-th) call.

    Interleaving means a load spike, thermal throttling or a clock change hits both members of a
    pair, so per-pair ratios stay honest on a busy machine where two separate runs would not.
    """
    sizes = _check(batch_sizes, warmup, iters)
    bar = progress_bar(len(sizes) * (warmup + iters) * 2, f"{a.name} vs {b.name}", progress, unit="call")
    out: Dict[int, Tuple[List[float], List[float]]] = {}
    try:
        for bs in sizes:
            for _ in range(warmup):
                a.run(bs)
                b.run(bs)
                bar.update(2)
            ta, tb = [], []
            for _ in range(iters):
                ta.append(_timed(a, bs, clock))
                tb.append(_timed(b, bs, clock))
                bar.update(2)
            out[bs] = (ta, tb)
    finally:
        bar.close()
    return out
