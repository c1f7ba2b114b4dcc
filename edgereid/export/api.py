"""``export_bundle``: everything ``reid-export`` does, callable from Python.

Order: check every option (cheap, nothing written) -> load the model and the calibration crops
-> build the bundle in a staging directory (model.onnx, parity, target files, manifest) -> rename
it into place. Any error leaves nothing at ``out``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgereid.bundle import Bundle, Manifest, check_output_dir, staging_dir, write_manifest
from edgereid.calibration.crops import CropSet, load_calibration_set
from edgereid.calibration.mixed import DEFAULT_MAX_DROP, Budget
from edgereid.calibration.qdq import DEFAULT_OP_TYPES
from edgereid.calibration.ranges import check_method
from edgereid.calibration.trt_cache import DEFAULT_TRT_VERSION, trt_version_code
from edgereid.check.golden import export_golden
from edgereid.errors import BackendError, InputError
from edgereid.export import onnx_tools, source, targets
from edgereid.export.parity import measure_parity
from edgereid.export.target_cpu import resolve_cpu_isa
from edgereid.jetson.plan import BatchProfile
from edgereid.runtime.embedder import OnnxruntimeEmbedder

LOG = logging.getLogger(__name__)

DEFAULT_DYNAMIC = BatchProfile(1, 4, 8)
PARITY_CROPS = 8
PARITY_MIN_COSINE = 0.9999
BATCH_MAX_REL_ERROR = 1e-3


def resolve_profile(target: str, batch: int | None, dynamic_batch: str | BatchProfile | None,
                    dla: bool) -> BatchProfile:
    """The batch profile from --batch / --dynamic-batch / --dla / target defaults."""
    if batch is not None and dynamic_batch is not None:
        raise InputError("pass either --batch N or --dynamic-batch MIN:OPT:MAX, not both.")
    if batch is not None:
        if batch < 1:
            raise InputError(f"--batch must be at least 1, received {batch}.")
        return BatchProfile(batch, batch, batch)
    if dynamic_batch is not None:
        profile = dynamic_batch if isinstance(dynamic_batch, BatchProfile) else BatchProfile.parse(dynamic_batch)
        if dla and not profile.static:
            raise InputError(
                f"--dla needs a static batch (TensorRT 8.5's DLA has no dynamic shapes), received "
                f"--dynamic-batch {profile.min}:{profile.opt}:{profile.max}. Use --batch N with --dla."
            )
        if target == "x3" and not (profile.static and profile.min == 1):
            raise InputError("--target x3 runs batch 1 only; drop --dynamic-batch.")
        return profile
    if dla or target == "x3":
        return BatchProfile(1, 1, 1)
    return DEFAULT_DYNAMIC


def export_bundle(
    out: str | Path,
    *,
    arch: str | None = None,
    checkpoint: str | None = None,
    onnx: str | None = None,
    target: str = "cpu",
    precision: str | None = None,
    batch: int | None = None,
    dynamic_batch: str | BatchProfile | None = None,
    dla: bool = False,
    calib_data: str | None = None,
    calib_crops: CropSet | None = None,
    calib_size: int = 512,
    calib_frames: bool = False,
    detector: str | None = None,
    holdout: float = 0.25,
    holdout_max: int = 256,
    seed: int = 0,
    calib_method: str | None = None,
    op_types: Sequence[str] | None = DEFAULT_OP_TYPES,
    trt_version: str = DEFAULT_TRT_VERSION,
    opset: int = onnx_tools.DEFAULT_OPSET,
    input_name: str | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    bgr: bool = False,
    flip_average: bool = False,
    max_drop: float | None = DEFAULT_MAX_DROP,
    min_cosine: float | None = None,
    cpu_isa: str = "auto",
    bias_correction: bool = True,
    x3_input: str = "nv12",
    x3_calibration: str = "default",
    x3_cores: int = 1,
    allow_unsupported: bool = False,
    force: bool = False,
    progress: bool = True,
    demo: bool = False,
) -> Bundle:
    """Export one bundle directory ``out`` and return it loaded.

    Args:
        out: bundle directory; refused when it exists non-empty unless ``force``.
        arch / checkpoint: a PyTorch source (``rga_sc``, ``rga_s``, ``rga_c``, ``rrid``); RGA is
            exported folded. No checkpoint = deterministic untrained weights (labelled).
        onnx: a foreign ONNX ReID model instead (input size read from it; ``mean``/``std``/``bgr``
            override the RGB ImageNet preprocessing; ``input_name`` picks the input).
        target: ``cpu`` | ``xavier`` | ``x3``. precision: ``fp32``/``fp16``/``int8`` (None = the
            target's default: cpu fp32, xavier fp16, x3 int8).
        batch / dynamic_batch: static batch N, or ``"MIN:OPT:MAX"``; default 1:4:8 (static 1 for
            DLA and X3).
        calib_data: crops folder (labels from Market names or ``<pid>/`` folders), a video, or a
            frame folder (``calib_frames=True``, crops cut by ``detector``); or pass ready
            ``calib_crops``. calib_size / holdout (share of identities) / holdout_max / seed:
            deterministic sampling and the hold-out split for the accuracy report.
        calib_method: entropy | minmax | percentile (None = percentile, chosen by measurement).
        op_types: ops to quantize (None = all).
        trt_version: device TensorRT version for the cache header (8.5.2 -> TRT-8502-...).
        max_drop / min_cosine: INT8 accuracy budget on the hold-out (rank-1 points when labelled,
            mean cosine when not); the most sensitive layers stay float until it is met. max_drop
            None = full INT8; min_cosine None = the target's default (mixed.DEFAULT_MIN_COSINE).
        cpu_isa: --target cpu --int8: the CPU it will run on (``auto`` = this host); picks
            reduce_range for x86 CPUs without VNNI.
        bias_correction: --int8 (xavier, cpu): move the mean INT8 error of every Conv/Gemm into its
            bias, layer by layer, on calibration crops (edgereid.calibration.bias_correction).
        x3_*: passed to the X3 target.
        demo: label accuracy figures as a demo (tiny calibration set).

    Raises:
        EdgeReidError: any unusable input; nothing is left at ``out``.
    """
    # -- 1. cheap checks, nothing written ------------------------------------------------------
    if (arch is None) == (onnx is None):
        raise InputError("pass exactly one model source: --arch NAME [--checkpoint FILE] or --onnx FILE.")
    if onnx is not None and checkpoint is not None:
        raise InputError("--checkpoint belongs to --arch; an --onnx model carries its own weights.")
    precision = targets.check_target(target, precision)
    add_files = targets.get_target(target)
    if target == "x3":
        from edgereid.export.target_x3 import x3_entry

        x3_entry()
    profile = resolve_profile(target, batch, dynamic_batch, dla)
    if dla and target != "xavier":
        raise InputError("--dla is a Jetson option: use it with --target xavier.")
    needs_calib = precision == "int8" or target == "x3"
    if needs_calib and calib_data is None and calib_crops is None:
        raise InputError(
            f"--target {target} --{precision} needs calibration data: pass --calib-data with a folder "
            "of person crops (or a video / frame folder)."
        )
    if calib_method is not None:
        check_method(calib_method)
    if calib_data is not None and calib_crops is None:
        check_calib_video(calib_data)
    budget = Budget(max_drop, min_cosine) if max_drop is not None else None
    isa = resolve_cpu_isa(cpu_isa)
    trt_version_code(trt_version)
    onnx_tools.check_opset(opset)
    _check_out_parent(Path(out))
    check_output_dir(out, force)
    # -- 2. load the model and the crops -------------------------------------------------------
    if arch is not None:
        src = source.from_arch(arch, checkpoint)
    else:
        src = source.from_onnx(onnx, input_name, mean, std, bgr, flip_average)
    crops = calib_crops
    if crops is None and calib_data is not None:
        crops = load_calibration_set(calib_data, calib_size, seed, holdout, calib_frames, detector, holdout_max)
    options = {
        "calib_method": calib_method, "op_types": op_types, "trt_version": trt_version, "dla": dla,
        "x3_input": x3_input, "x3_calibration": x3_calibration, "x3_cores": x3_cores,
        "allow_unsupported": allow_unsupported, "progress": progress, "demo": demo, "budget": budget,
        "bias_correction": bias_correction, "seed": seed, **isa,
    }
    # -- 3. build in a staging directory -----------------------------------------------------------
    with staging_dir(out, force) as tmp:
        model_path = tmp / "model.onnx"
        model = source.write_model_onnx(src, model_path, profile.min, not profile.static, opset)
        parity = check_parity(src, model_path, crops, onnx)
        ctx = targets.ExportContext(tmp, model_path, model, src, precision, profile, crops, options)
        files, extra = add_files(ctx)
        scale = measure_similarity_scale(src, model_path, crops)
        if scale is not None:
            extra = {**extra, "similarity": scale}
        files = {"onnx": "model.onnx", **files}
        golden_files, extra["golden"] = export_golden(tmp, files, src.spec, src.postprocess, crops, extra)
        files.update(golden_files)  # reid-bench check's crops and FP32 references
        write_manifest(tmp, build_manifest(src, model, target, precision, files, parity, extra))
    return Bundle.load(out)


def check_calib_video(calib_data: str) -> None:
    """A --calib-data video must decode before the person detector loads (and warns, or takes seconds)."""
    path = Path(calib_data)
    if not path.is_file():
        return  # a folder of crops or frames: checked by the crop reader
    from edgereid.runtime.sources import VideoFileSource

    try:
        VideoFileSource(str(path)).close()
    except InputError as exc:
        raise InputError(f"--calib-data {str(path)!r}: {exc}") from exc


def _check_out_parent(out: Path) -> None:
    """The nearest existing ancestor of ``out`` must be a writable directory (not a file)."""
    probe = out.parent if str(out.parent) else Path(".")
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise InputError(f"--out {str(out)!r} cannot be created: {str(probe)!r} is a file, not a directory.")


def measure_similarity_scale(src: source.ModelSource, model_path: Path, crops: CropSet | None) -> dict[str, Any] | None:
    """The embedder's genuine/impostor similarity scale on the labelled hold-out identities (never used
    for calibration), through model.onnx with the bundle's own post-processing; None when the
    crops carry no identity labels (the lock then warns and uses strict fallback thresholds)."""
    if crops is None or not crops.holdout_labels:
        return None
    from edgereid.evaluation.similarity import measure_bundle_similarity

    runner = OnnxruntimeEmbedder(str(model_path), src.spec, providers=["CPUExecutionProvider"], l2=True,
                                 flip_average=bool(src.postprocess.get("flip_average", False)))
    labels = [int(pid) for pid, _ in crops.holdout_labels]
    try:
        with runner:
            return measure_bundle_similarity(runner, crops.holdout, labels,
                                             source=f"hold-out identities of {crops.source.get('path', 'the crops')}")
    except InputError as exc:  # too few identities: say so in the manifest instead of a wrong scale
        return {"schema": "edgereid.similarity/1", "unavailable": str(exc)}


def check_parity(src: source.ModelSource, model_path: Path, crops: CropSet | None,
                 onnx_in: str | None) -> dict[str, Any]:
    """Export parity on real crops when given (else labelled synthetic ones); raises when broken."""
    if crops is not None and (crops.holdout or crops.calib):
        sample = list(crops.holdout or crops.calib)[:PARITY_CROPS]
        kind = "person crops (calibration data)"
    else:
        rng = np.random.default_rng(0)
        sample = [rng.integers(0, 256, (src.spec.height, src.spec.width, 3), dtype=np.uint8) for _ in range(4)]
        kind = "synthetic noise images (no --calib-data given)"
    candidate = OnnxruntimeEmbedder(str(model_path), src.spec, providers=["CPUExecutionProvider"], l2=False,
                                    name="model.onnx")
    if src.torch_model is not None:
        from edgereid.export.torch_runner import TorchEmbedder

        reference: Any = TorchEmbedder(src.torch_model, src.spec, l2=False, name="pytorch")
        against = "pytorch"
    else:
        reference = OnnxruntimeEmbedder(str(onnx_in), src.spec, providers=["CPUExecutionProvider"], l2=False,
                                        name=f"original onnx {Path(str(onnx_in)).name}")
        against = "original onnx"
    result = measure_parity(reference, candidate, sample)
    result.update(reference=against, inputs=kind)
    if result["cosine_min"] < PARITY_MIN_COSINE:
        raise BackendError(
            f"export parity failed: model.onnx vs {against} cosine min {result['cosine_min']:.6f} "
            f"(expected >= {PARITY_MIN_COSINE}). This is a bug in the export; please report it."
        )
    if result.get("batch_vs_single_rel", 0.0) > BATCH_MAX_REL_ERROR:
        raise BackendError(
            "model.onnx gives different results for a batch than for single crops: its batch axis "
            "cannot be dynamic. Export with --batch N."
        )
    return result


def build_manifest(src: source.ModelSource, model: Any, target: str, precision: str,
                   files: dict[str, str], parity: dict[str, Any], extra: dict[str, Any]) -> Manifest:
    ins, outs = onnx_tools.io_info(model)
    dim = outs[0]["shape"][-1]
    extra = dict(extra)
    extra["parity"] = parity
    extra["tools"] = tool_versions()
    extra["opset"] = onnx_tools.opset_of(model)
    if not src.trained:
        extra["warning"] = src.source.get("warning")
    return Manifest(
        arch=src.arch, target=target, precision=precision, preprocess=src.spec,
        inputs=ins, outputs=outs, files=files, postprocess=dict(src.postprocess),
        source=dict(src.source), embedding_dim=int(dim) if isinstance(dim, int) else None, extra=extra,
    )


def tool_versions() -> dict[str, str]:
    import importlib

    out = {}
    for name in ("edgereid", "torch", "onnx", "onnxruntime", "onnxslim", "numpy"):
        try:
            out[name] = str(getattr(importlib.import_module(name), "__version__", "?"))
        except ImportError:
            continue
    return out
