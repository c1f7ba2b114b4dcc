"""TensorRT runner (Polygraphy-style) and the "trt" embedder backend. Runs on the Jetson only.

``TrtRunner(engine_path)``: activate() deserializes the engine, makes one execution context,
one CUDA stream, and page-locked host buffers sized for the profile's largest batch;
``infer({name: array}) -> {name: array}``; deactivate() frees everything. It uses the
tensor-name API of TensorRT 8.5 (``set_input_shape``, ``set_tensor_address``,
``execute_async_v3``; JetPack 5.1.x) and the binding API where that is absent (TensorRT 8.4,
JetPack 5.0.2). Those calls report failure by returning False, not by raising, so every one is
checked (NVIDIA/TensorRT release/8.5 python/src/infer/pyCore.cpp, include/NvInferRuntime.h):
a failed enqueue would otherwise hand back the previous call's buffers. The shape and buffer
decisions are host functions below, tested without a GPU. Not verified on a Jetson yet.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from edgereid.bundle import Bundle
from edgereid.errors import BackendError, InputError
from edgereid.lazy import require
from edgereid.runtime.embedder import EmbedderRunner

# tensorrt.DataType member name -> numpy dtype (trt.nptype does the same on the device)
TRT_DTYPES = {"FLOAT": np.float32, "HALF": np.float16, "INT8": np.int8, "INT32": np.int32, "BOOL": np.bool_}


def resolve_shape(engine_shape: Sequence[int], batch: int) -> Tuple[int, ...]:
    """The concrete binding shape for ``batch``: -1 (dynamic) axis 0 becomes ``batch``.

    Raises:
        InputError: a dynamic axis other than the batch axis (our bundles never have one).
    """
    shape = [int(d) for d in engine_shape]
    if shape and shape[0] == -1:
        shape[0] = int(batch)
    if any(d < 0 for d in shape):
        raise InputError(f"engine binding shape {list(engine_shape)} has a dynamic non-batch axis.")
    return tuple(shape)


def check_batch(batch: int, profile_min: int, profile_max: int) -> None:
    if not profile_min <= batch <= profile_max:
        raise InputError(
            f"batch {batch} is outside the engine's profile [{profile_min}, {profile_max}]; "
            "split the input or rebuild with a larger --dynamic-batch MAX."
        )


def uses_tensor_api(context: Any) -> bool:
    """TensorRT >= 8.5 has the tensor-name API; 8.4 (JetPack 5.0.2) only the binding API."""
    return hasattr(context, "execute_async_v3") and hasattr(context, "set_input_shape")


def checked(ok: Any, call: str, what: str) -> None:
    """Raise for a TensorRT call that returned False (its only failure signal)."""
    if ok is False:
        raise BackendError(
            f"TensorRT {call} failed for {what}; the engine's outputs would be stale. "
            "Run with the TensorRT logger at VERBOSE (or trtexec --loadEngine) to see why."
        )


def describe_io(engine: Any) -> List[Dict[str, Any]]:
    """Name, direction, engine shape, dtype and binding index of each I/O tensor of ``engine``."""
    tensor_api = hasattr(engine, "num_io_tensors")
    count = engine.num_io_tensors if tensor_api else engine.num_bindings
    out = []
    for i in range(count):
        if tensor_api:
            name = engine.get_tensor_name(i)
            is_input = str(engine.get_tensor_mode(name)).split(".")[-1] == "INPUT"
            shape, dtype = engine.get_tensor_shape(name), engine.get_tensor_dtype(name)
        else:
            name, is_input = engine.get_binding_name(i), bool(engine.binding_is_input(i))
            shape, dtype = engine.get_binding_shape(i), engine.get_binding_dtype(i)
        key = str(dtype).split(".")[-1]
        if key not in TRT_DTYPES:
            raise BackendError(f"engine tensor {name!r} has dtype {dtype}; this runner handles {list(TRT_DTYPES)}.")
        out.append({"index": i, "name": name, "input": is_input, "shape": tuple(int(d) for d in shape),
                    "dtype": TRT_DTYPES[key]})
    return out


def batch_range(engine: Any, tensor: Dict[str, Any]) -> Tuple[int, int]:
    """(min, max) batch of an input: its profile 0 when dynamic, else its fixed batch."""
    shape = tensor["shape"]
    if not (shape and shape[0] == -1):
        return (int(shape[0]), int(shape[0])) if shape else (1, 1)
    if hasattr(engine, "get_tensor_profile_shape"):
        mn, _, mx = engine.get_tensor_profile_shape(tensor["name"], 0)
    else:
        mn, _, mx = engine.get_profile_shape(0, tensor["index"])
    return int(mn[0]), int(mx[0])


class TrtRunner:
    """Run a serialized TensorRT engine. Use as a context manager or activate()/deactivate()."""

    def __init__(self, engine_path: str | Path, device: int = 0) -> None:
        self.engine_path = Path(engine_path)
        self.device = device
        self.is_active = False
        self.inference_time: float | None = None
        self._ctx: Any = None
        self._engine: Any = None
        self._context: Any = None
        self._stream: Any = None
        self._bindings: List[Dict[str, Any]] = []
        self.max_batch = 1
        self.min_batch = 1

    def __enter__(self) -> TrtRunner:
        return self.activate()

    def __exit__(self, *exc: object) -> None:
        self.deactivate()

    def activate(self) -> TrtRunner:
        if self.is_active:
            return self
        trt = require("tensorrt", "the TensorRT runner")
        cuda = require("pycuda.driver", "the TensorRT runner")
        if not self.engine_path.is_file():
            raise BackendError(f"TensorRT engine {str(self.engine_path)!r} does not exist; run build_engine.sh.")
        cuda.init()
        self._ctx = cuda.Device(self.device).make_context()
        try:
            runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
            self._engine = runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
            if self._engine is None:
                raise BackendError(
                    f"cannot deserialize {self.engine_path}: built by another TensorRT version or device?"
                )
            self._context = self._engine.create_execution_context()
            if self._context is None:
                raise BackendError(f"TensorRT could not create an execution context for {self.engine_path}.")
            self._stream = cuda.Stream()
            self._allocate(cuda)
        except BaseException:
            self._ctx.pop()
            self._ctx.detach()
            self._ctx = None
            raise
        self._ctx.pop()  # made current by make_context(); pushed again around each call
        self.is_active = True
        return self

    def _allocate(self, cuda: Any) -> None:
        self._bindings = describe_io(self._engine)
        inputs = [b for b in self._bindings if b["input"]]
        if not inputs:
            raise BackendError(f"{self.engine_path} has no input tensor.")
        self.min_batch, self.max_batch = batch_range(self._engine, inputs[0])
        for b in self._bindings:
            full = resolve_shape(b["shape"], self.max_batch)
            b["host"] = cuda.pagelocked_empty(int(np.prod(full)), b["dtype"])
            b["device"] = cuda.mem_alloc(b["host"].nbytes)

    def infer(self, feed: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """{input name: (N, ...) array} -> {output name: (N, ...) array}; N within the profile."""
        if not self.is_active:
            raise BackendError("TrtRunner: call activate() (or use `with`) before infer().")
        cuda = require("pycuda.driver", "the TensorRT runner")
        inputs = [b for b in self._bindings if b["input"]]
        missing = [b["name"] for b in inputs if b["name"] not in feed]
        if missing:
            raise InputError(f"TrtRunner: missing inputs {missing}; received {sorted(feed)}.")
        batch = int(feed[inputs[0]["name"]].shape[0])
        check_batch(batch, self.min_batch, self.max_batch)
        start = time.perf_counter()
        self._cuda_ctx_push()
        try:
            outputs = self._enqueue(cuda, feed, inputs, batch)
            self._stream.synchronize()
        finally:
            self._cuda_ctx_pop()
        self.inference_time = time.perf_counter() - start
        return {name: b["host"][: int(np.prod(shape))].reshape(shape).copy() for name, (b, shape) in outputs.items()}

    def _enqueue(self, cuda: Any, feed: Dict[str, np.ndarray], inputs: List[Dict[str, Any]],
                 batch: int) -> Dict[str, Tuple[Dict[str, Any], Tuple[int, ...]]]:
        """Shapes, copies in, one checked enqueue, copies out (asynchronous on the stream)."""
        ctx = self._context
        tensor_api = uses_tensor_api(ctx)
        for b in inputs:
            shape = resolve_shape(b["shape"], batch)
            if tensor_api:
                checked(ctx.set_input_shape(b["name"], shape), "set_input_shape", f"{b['name']} {shape}")
            else:
                checked(ctx.set_binding_shape(b["index"], shape), "set_binding_shape", f"{b['name']} {shape}")
            arr = np.ascontiguousarray(feed[b["name"]], dtype=b["dtype"]).reshape(-1)
            if arr.size != int(np.prod(shape)):
                raise InputError(f"TrtRunner: input {b['name']!r} needs shape {shape}, received "
                                 f"{tuple(feed[b['name']].shape)}.")
            b["host"][: arr.size] = arr
            cuda.memcpy_htod_async(b["device"], b["host"][: arr.size], self._stream)  # pinned view
        if tensor_api:
            for b in self._bindings:
                checked(ctx.set_tensor_address(b["name"], int(b["device"])), "set_tensor_address", b["name"])
            checked(ctx.execute_async_v3(self._stream.handle), "execute_async_v3", str(self.engine_path))
        else:
            checked(ctx.execute_async_v2([int(b["device"]) for b in self._bindings], self._stream.handle),
                    "execute_async_v2", str(self.engine_path))
        outputs = {}
        for b in (b for b in self._bindings if not b["input"]):
            raw = ctx.get_tensor_shape(b["name"]) if tensor_api else ctx.get_binding_shape(b["index"])
            shape = tuple(int(d) for d in raw)
            if any(d < 0 for d in shape):
                raise BackendError(f"TensorRT left output {b['name']!r} with an unresolved shape {shape}.")
            cuda.memcpy_dtoh_async(b["host"][: int(np.prod(shape))], b["device"], self._stream)
            outputs[b["name"]] = (b, shape)
        return outputs

    def deactivate(self) -> None:
        if not self.is_active:
            return
        self._ctx.push()
        try:
            for b in self._bindings:
                b["device"].free()
            self._bindings = []
            self._context = self._engine = self._stream = None
        finally:
            self._ctx.pop()
            self._ctx.detach()
            self._ctx = None
        self.is_active = False

    def _cuda_ctx_push(self) -> None:
        self._ctx.push()

    def _cuda_ctx_pop(self) -> None:
        self._ctx.pop()


class TrtEmbedder(EmbedderRunner):
    """Embedder backend over :class:`TrtRunner` (one input, one output: the embedding)."""

    def __init__(self, engine_path: str | Path, spec: Any, **kwargs: Any) -> None:
        super().__init__(spec, name=kwargs.pop("name", f"tensorrt:{engine_path}"), **kwargs)
        self.runner = TrtRunner(engine_path)
        self.input_name: str | None = None

    def activate_impl(self) -> None:
        self.runner.activate()
        self.input_name = next(b["name"] for b in self.runner._bindings if b["input"])
        self.max_batch = min(self.max_batch or self.runner.max_batch, self.runner.max_batch)

    def deactivate_impl(self) -> None:
        self.runner.deactivate()

    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        n = len(batch)
        if n < self.runner.min_batch:  # static-batch engine: pad, then drop the padding rows
            pad = np.zeros((self.runner.min_batch - n, *batch.shape[1:]), batch.dtype)
            batch = np.concatenate([batch, pad])
        out = self.runner.infer({self.input_name: batch})
        return next(iter(out.values()))[:n].astype(np.float32)


def engine_path_for(bundle: Bundle, mode: str | None = None) -> Path:
    """The engine of ``mode`` (default: role ``engine``, else the manifest's default mode)."""
    trt_info = bundle.manifest.extra.get("trt", {})
    if mode is None and bundle.has("engine"):
        return bundle.path("engine")
    mode = mode or trt_info.get("default_mode", "fp16")
    engines = trt_info.get("engines", {})
    if mode not in engines:
        raise BackendError(f"bundle {str(bundle.root)!r} has no TensorRT mode {mode!r}; modes: {sorted(engines)}.")
    path = bundle.root / engines[mode]
    if not path.is_file():
        raise BackendError(f"{path} is not built yet: run ./build_engine.sh {mode} inside the bundle on the Jetson.")
    return path


def embedder_from_bundle(bundle: Bundle, mode: str | None = None, **options: Any) -> TrtEmbedder:
    """The "trt" backend of ``edgereid.runtime.embedder.load_embedder``."""
    m = bundle.manifest
    return TrtEmbedder(
        engine_path_for(bundle, mode),
        bundle.preprocess,
        l2=bool(m.postprocess.get("l2_normalize", True)),
        flip_average=bool(m.postprocess.get("flip_average", False)),
        **options,
    )
