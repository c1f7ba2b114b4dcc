"""Embedder runners: ``embed(crops) -> (N, D) float32, L2-normalised``.

Polygraphy's shape: a runner owns activate / infer / deactivate and is a context manager;
subclasses override only ``*_impl``. ``embed`` adds what the bundle's manifest says around
``infer``: the PreprocessSpec, horizontal-flip averaging (RRID's official evaluation) and L2
normalisation. Backends: onnxruntime (here), TensorRT (``edgereid.jetson.runner``), BPU
(``edgereid.x3.runner``), torch (``edgereid.export.torch_runner``, development only).
A backend that cannot load says what is missing; it never falls back silently.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Sequence

import numpy as np

from edgereid.bundle import Bundle
from edgereid.errors import BackendError, InputError
from edgereid.lazy import require
from edgereid.preprocess import PreprocessSpec

log = logging.getLogger(__name__)


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Row-wise L2 normalisation of (N, D); zero rows stay zero."""
    x = np.asarray(x, np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, eps)).astype(np.float32)


class EmbedderRunner:
    """Base runner. Subclasses implement ``activate_impl``, ``infer_impl``, ``deactivate_impl``.

    Args:
        spec: how crops become the model input.
        l2: L2-normalise the output rows (manifest ``postprocess.l2_normalize``).
        flip_average: average the embedding of each crop and its mirror image before L2
            (manifest ``postprocess.flip_average``; RRID's official Evaluate.py does this).
        max_batch: largest batch the model accepts in one call (engines have a profile max);
            larger inputs are split.
        name: for messages.
    """

    def __init__(
        self,
        spec: PreprocessSpec,
        l2: bool = True,
        flip_average: bool = False,
        max_batch: int | None = None,
        name: str = "embedder",
    ) -> None:
        self.spec = spec
        self.l2 = l2
        self.flip_average = flip_average
        self.max_batch = max_batch
        self.name = name
        self.is_active = False
        self.inference_time: float | None = None
        self.bundle: Bundle | None = None  # set by load_embedder: the manifest travels with the runner

    # -- lifecycle -------------------------------------------------------------------------
    def activate(self) -> EmbedderRunner:
        if not self.is_active:
            self.activate_impl()
            self.is_active = True
        return self

    def deactivate(self) -> None:
        if self.is_active:
            self.deactivate_impl()
            self.is_active = False

    def __enter__(self) -> EmbedderRunner:
        return self.activate()

    def __exit__(self, *exc: object) -> None:
        self.deactivate()

    # -- inference -------------------------------------------------------------------------
    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Raw model output for one preprocessed batch: (N, C, H, W) float32 -> (N, D) float32."""
        if not self.is_active:
            raise BackendError(f"{self.name}: call activate() (or use `with`) before infer().")
        if batch.ndim != 4:
            raise InputError(f"{self.name}: expected a 4-D batch, received shape {batch.shape}.")
        start = time.perf_counter()
        step = self.max_batch or len(batch) or 1
        outs = [self.infer_impl(np.ascontiguousarray(batch[i : i + step])) for i in range(0, len(batch), step)]
        self.inference_time = time.perf_counter() - start
        if not outs:
            return np.zeros((0, 0), np.float32)
        out = np.concatenate(outs, axis=0).astype(np.float32, copy=False)
        return out.reshape(len(batch), -1)

    def embed_batch(self, batch: np.ndarray) -> np.ndarray:
        """Post-processed embeddings of an already preprocessed batch (flip-average, L2)."""
        if len(batch) == 0:
            return np.zeros((0, 0), np.float32)
        if self.flip_average:
            flipped = batch[..., ::-1] if self.spec.layout == "NCHW" else batch[:, :, ::-1]
            both = self.infer(np.concatenate([batch, np.ascontiguousarray(flipped)], axis=0))
            feats = (both[: len(batch)] + both[len(batch) :]) / 2.0
        else:
            feats = self.infer(batch)
        if not np.all(np.isfinite(feats)):
            raise BackendError(f"{self.name}: the model produced non-finite embeddings (NaN/Inf).")
        return l2_normalize(feats) if self.l2 else feats.astype(np.float32)

    def embed(self, crops_bgr: Sequence[np.ndarray]) -> np.ndarray:
        """(N, D) float32 embeddings of BGR uint8 crops of any size."""
        return self.embed_batch(self.spec(crops_bgr))

    # -- to override -------------------------------------------------------------------------
    def activate_impl(self) -> None:  # pragma: no cover - trivial default
        pass

    def deactivate_impl(self) -> None:  # pragma: no cover - trivial default
        pass

    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class OnnxruntimeEmbedder(EmbedderRunner):
    """ONNX Runtime backend (CPU, or CUDA where onnxruntime-gpu is installed).

    Args:
        model_path: ONNX file.
        providers: ORT execution providers; None = CUDA when available, else CPU.
        threads: intra-op threads; None = ORT's default.
        fake_quant: run a QDQ model as float fake-quantization (what TensorRT / the BPU compute,
            the same on every host) instead of ORT's host-dependent integer kernels.
    """

    def __init__(
        self,
        model_path: str,
        spec: PreprocessSpec,
        providers: Sequence[str] | None = None,
        threads: int | None = None,
        fake_quant: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(spec, name=kwargs.pop("name", f"onnxruntime:{model_path}"), **kwargs)
        self.model_path = str(model_path)
        self.providers = providers
        self.threads = threads
        self.fake_quant = fake_quant
        self.session = None
        self.input_name: str | None = None

    def activate_impl(self) -> None:
        from edgereid.calibration.fakequant import fake_quant_options, integer_kernel_config, ort_session

        ort = require("onnxruntime", "the onnxruntime embedder")
        # integer kernels where a QDQ model is given: exact u8s8 products on CPUs that saturate
        opts = fake_quant_options(ort, self.threads) if self.fake_quant else self._kernel_options(ort, exact=True)
        available = ort.get_available_providers()
        providers = list(self.providers) if self.providers else [
            p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available
        ]
        try:  # keeps a u8s8 model's float layers float (fakequant.KEEP_FLOAT_LAYERS_DISABLED_OPTIMIZERS)
            self.session = ort_session(self.model_path, opts, providers, ort)
        except Exception as exc:  # ORT raises its own exception types
            if self.fake_quant or not integer_kernel_config():
                raise BackendError(f"onnxruntime cannot load {self.model_path!r}: {exc}") from exc
            self.session = self._without_exact_products(providers, ort, exc)
        inputs = self.session.get_inputs()
        self.input_name = inputs[0].name
        batch_dim = inputs[0].shape[0]
        if isinstance(batch_dim, int) and batch_dim > 0:
            self.max_batch = min(self.max_batch or batch_dim, batch_dim)

    def _kernel_options(self, ort: Any, exact: bool) -> Any:
        """Session options for ORT's own kernels; ``exact``: with this CPU's exact-u8s8 entries."""
        from edgereid.calibration.fakequant import add_integer_kernel_config

        opts = add_integer_kernel_config(ort.SessionOptions()) if exact else ort.SessionOptions()
        if self.threads:
            opts.intra_op_num_threads = int(self.threads)
        return opts

    def _without_exact_products(self, providers: list, ort: Any, exc: Exception) -> Any:
        """A session without the exact-u8s8 option when ORT cannot apply it, else BackendError.

        Bundles exported before edgereid unshared quantized weights make ORT 1.32's s8->u8 rewrite
        fail ("Attempt to replace the existing tensor"); they still run, in the saturating kernels.
        """
        from edgereid.calibration.fakequant import ort_session

        try:
            session = ort_session(self.model_path, self._kernel_options(ort, exact=False), providers, ort)
        except Exception:  # noqa: BLE001 - report the first failure, it names the cause
            raise BackendError(f"onnxruntime cannot load {self.model_path!r}: {exc}") from exc
        log.warning("%s: onnxruntime cannot run this INT8 model with exact u8s8 products on this CPU (%s); it "
                    "runs in the saturating kernels and may lose accuracy. Re-export the bundle with this "
                    "edgereid (reid-export --target cpu --int8 --cpu-isa avx2).", self.name, str(exc)[-160:])
        return session

    def deactivate_impl(self) -> None:
        self.session = None

    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        assert self.session is not None
        if self.max_batch and len(batch) < self.max_batch and _static_batch(self.session):
            pad = np.zeros((self.max_batch - len(batch), *batch.shape[1:]), batch.dtype)
            return self.session.run(None, {self.input_name: np.concatenate([batch, pad])})[0][: len(batch)]
        return self.session.run(None, {self.input_name: batch})[0]


def _static_batch(session) -> bool:
    dim = session.get_inputs()[0].shape[0]
    return isinstance(dim, int) and dim > 0


# -- backend registry ----------------------------------------------------------------------------
# name -> factory(bundle, **options) -> EmbedderRunner. Device backends register lazily by
# module path so that importing this module never imports tensorrt or hobot_dnn.
_BACKENDS: dict[str, Callable[..., EmbedderRunner]] = {}
_LAZY_BACKENDS = {
    "trt": "edgereid.jetson.runner:embedder_from_bundle",
    "bpu": "edgereid.x3.runner:embedder_from_bundle",
    "torch": "edgereid.export.torch_runner:embedder_from_bundle",
}


def register_backend(name: str, factory: Callable[..., EmbedderRunner]) -> None:
    _BACKENDS[name] = factory


def backend_names() -> list[str]:
    return sorted(set(_BACKENDS) | set(_LAZY_BACKENDS))


def _ort_from_bundle(bundle: Bundle, role: str = "onnx", **options) -> EmbedderRunner:
    m = bundle.manifest
    return OnnxruntimeEmbedder(
        str(bundle.path(role)),
        bundle.preprocess,
        l2=bool(m.postprocess.get("l2_normalize", True)),
        flip_average=bool(m.postprocess.get("flip_average", False)),
        **options,
    )


def _ort_int8_from_bundle(bundle: Bundle, **options) -> EmbedderRunner:
    """A cpu bundle's u8s8 model in ORT's integer kernels (what runs); a TensorRT-form QDQ
    model stands for the device, so it runs as fake-quantization (edgereid.calibration.fakequant)."""
    role = "onnx_int8_cpu" if bundle.has("onnx_int8_cpu") else "onnx_int8_qdq"
    options.setdefault("fake_quant", role == "onnx_int8_qdq")
    if role == "onnx_int8_cpu" and not options["fake_quant"]:
        _note_weight_bits(bundle)
    return _ort_from_bundle(bundle, role=role, **options)


def _note_weight_bits(bundle: Bundle) -> None:
    """Say so when a bundle with 8-bit weights runs where u8s8 saturates: exact, but not the fast path."""
    from edgereid.calibration.fakequant import integer_kernel_config

    int8 = (bundle.manifest.extra or {}).get("int8") or {}
    if int8.get("reduce_range") is False and integer_kernel_config():
        log.warning("this bundle's INT8 weights are 8-bit (built for %s); this CPU's u8s8 kernels would saturate, "
                    "so onnxruntime runs exact u8u8 products, slower. For the fast path on this CPU: "
                    "reid-export --target cpu --int8 --cpu-isa avx2.", int8.get("cpu_isa") or "a VNNI CPU")


def _ort_int8_sim_from_bundle(bundle: Bundle, **options) -> EmbedderRunner:
    """Any INT8 model of the bundle as fake-quantization: the host-independent figure."""
    options["fake_quant"] = True
    return _ort_int8_from_bundle(bundle, **options)


register_backend("ort", _ort_from_bundle)
register_backend("ort-int8", _ort_int8_from_bundle)
register_backend("ort-int8-sim", _ort_int8_sim_from_bundle)


def resolve_backend(bundle: Bundle, backend: str = "auto") -> str:
    """``auto`` -> ``trt`` (bundle has an engine and tensorrt imports), ``bpu`` (a .bin and hobot_dnn or
    bpu_infer_lib imports), else ``ort``; any other name is returned as given."""
    if backend != "auto":
        return backend
    from edgereid.lazy import available

    if bundle.has("engine") and available("tensorrt"):
        return "trt"
    if bundle.has("x3_bin") and (available("hobot_dnn") or available("bpu_infer_lib")):
        return "bpu"
    return "ort"


def load_embedder(bundle: Bundle | str, backend: str = "auto", **options) -> EmbedderRunner:
    """Build (not activate) the embedder runner for ``bundle``.

    Args:
        bundle: a :class:`Bundle` or its directory.
        backend: ``auto`` (TensorRT engine if the bundle has one and tensorrt imports, BPU .bin
            if it has one and hobot_dnn imports, else onnxruntime), or one of
            :func:`backend_names`.
        options: passed to the backend factory (e.g. ``threads=2``).
    """
    if not isinstance(bundle, Bundle):
        bundle = Bundle.load(bundle)
    backend = resolve_backend(bundle, backend)
    runner = _build_runner(bundle, backend, **options)
    runner.bundle = bundle
    return runner


def _build_runner(bundle: Bundle, backend: str, **options) -> EmbedderRunner:
    if backend in _BACKENDS:
        return _BACKENDS[backend](bundle, **options)
    if backend in _LAZY_BACKENDS:
        import importlib

        module, attr = _LAZY_BACKENDS[backend].split(":")
        try:
            factory = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise BackendError(f"embedder backend {backend!r} is not available in this build ({exc}).") from exc
        return factory(bundle, **options)
    raise InputError(f"unknown embedder backend {backend!r}; valid names: {['auto', *backend_names()]}.")
