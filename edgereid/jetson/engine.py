"""Build a TensorRT engine from a bundle through the TensorRT 8.5 Python API (on the Jetson).

Thin on purpose: every decision (flags, profile shapes, cache, DLA core) comes from an
:class:`edgereid.jetson.plan.EnginePlan`, which is tested on the host and also writes the
trtexec lines of build_engine.sh. Not verified on a Jetson yet.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict

from edgereid.bundle import Bundle, atomic_write_bytes, write_manifest
from edgereid.errors import BackendError
from edgereid.jetson.plan import TIMING_CACHE, EnginePlan, plans_for_bundle
from edgereid.lazy import require

LOG = logging.getLogger(__name__)


def build_engine(plan: EnginePlan, root: str | Path, verbose: bool = False) -> Path:
    """Build ``plan`` inside bundle directory ``root``; writes ``plan.engine`` and the timing cache."""
    trt = require("tensorrt", "building TensorRT engines")
    root = Path(root)
    logger = trt.Logger(trt.Logger.VERBOSE if verbose else trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse((root / plan.onnx).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendError(f"TensorRT cannot parse {plan.onnx}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, plan.workspace_mib << 20)
    for flag in plan.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED  # as trtexec --profilingVerbosity=detailed
    profile = None
    if plan.dynamic:  # a static network takes no profile (as trtexec 8.5, sampleEngines.cpp)
        profile = builder.create_optimization_profile()
        profile.set_shape(plan.input_name, *plan.profile_shapes)
        _check(config.add_optimization_profile(profile) != -1, "add_optimization_profile", plan)
    if plan.calib_cache:
        from edgereid.jetson.calibrator import make_cache_calibrator

        config.int8_calibrator = make_cache_calibrator(root / plan.calib_cache, plan.profile.opt)
        if plan.needs_calibration_profile:
            _check(config.set_calibration_profile(profile), "set_calibration_profile", plan)
    _pin_fp16_layers(trt, network, plan)
    if plan.dla_core is not None:
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = plan.dla_core
    timing_path = root / TIMING_CACHE
    timing = config.create_timing_cache(timing_path.read_bytes() if timing_path.exists() else b"")
    _check(config.set_timing_cache(timing, ignore_mismatch=False), "set_timing_cache", plan,
           f"delete {TIMING_CACHE} (written by another TensorRT or device) and build again")
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendError(f"TensorRT failed to build mode {plan.mode}; rerun with verbose=True for the log.")
    atomic_write_bytes(root / plan.engine, bytes(serialized))
    atomic_write_bytes(timing_path, bytes(config.get_timing_cache().serialize()))
    write_layer_info(trt, logger, bytes(serialized), root / plan.layer_info)
    return root / plan.engine


def _pin_fp16_layers(trt: Any, network: Any, plan: EnginePlan) -> None:
    """The plan's FP16 layers, as trtexec --layerPrecisions sets them (ILayer.precision by name)."""
    if not plan.fp16_layers:
        return
    wanted = set(plan.fp16_layers)
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if layer.name in wanted:
            layer.precision = trt.float16
            wanted.discard(layer.name)
    if wanted:
        LOG.warning("mode %s: no layer named %s in the parsed network; they are not pinned to FP16",
                    plan.mode, sorted(wanted)[:3])


def write_layer_info(trt: Any, logger: Any, serialized: bytes, path: Path) -> bool:
    """The engine inspector's JSON (what trtexec --exportLayerInfo writes) for ``reid-bench layers``.

    Best effort: the engine is built either way; a failure here is logged, not raised.
    """
    try:
        engine = trt.Runtime(logger).deserialize_cuda_engine(serialized)
        info = engine.create_engine_inspector().get_engine_information(trt.LayerInformationFormat.JSON)
        atomic_write_bytes(path, str(info).encode())
        return True
    except Exception as exc:  # noqa: BLE001 - any TensorRT failure: report and go on
        LOG.warning("layer information not written to %s: %s", path, exc)
        return False


def _check(ok: Any, call: str, plan: EnginePlan, fix: str = "rerun with verbose=True for the log") -> None:
    """TensorRT's Python API reports these failures as a False return, not an exception."""
    if ok is False or ok is None:
        raise BackendError(f"TensorRT {call} failed while building mode {plan.mode}; {fix}.")


def build_bundle_engine(bundle: Bundle | str, mode: str | None = None, verbose: bool = False) -> Path:
    """Build one mode (default: the manifest's ``trt.default_mode``) and record it as role ``engine``."""
    if not isinstance(bundle, Bundle):
        bundle = Bundle.load(bundle)
    trt_info: Dict[str, Any] = bundle.manifest.extra.get("trt", {})
    mode = mode or trt_info.get("default_mode", "fp16")
    (plan,) = plans_for_bundle(bundle.manifest, [mode])
    path = build_engine(plan, bundle.root, verbose)
    bundle.manifest.files["engine"] = plan.engine
    bundle.manifest.extra.setdefault("trt", {})["built_mode"] = mode
    write_manifest(bundle.root, bundle.manifest)
    return path
