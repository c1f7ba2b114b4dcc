"""Stand-ins for the device libraries (tensorrt + pycuda.driver, hobot_dnn.pyeasy_dnn), for tests only.

They follow the documented Python APIs call for call (TensorRT 8.5 python/src/infer/pyCore.cpp;
pycuda.driver; HorizonRDK rdk_x3_doc docs/python_development/pydev_dnn_api.md) but compute with
ONNX Runtime: a stand-in "engine" or ".bin" is the bytes of an ONNX model. So a bundle goes
through the real runner code paths here, and a changed model changes the numbers.
Install with ``install_trt(monkeypatch)`` / ``install_hobot_dnn(monkeypatch)``.
"""

from __future__ import annotations

import itertools
import sys
import types
from typing import Any

import numpy as np


def _session(model_bytes: bytes):
    import onnxruntime as ort

    try:
        return ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    except Exception:  # noqa: BLE001 - like deserialize_cuda_engine: None for bytes it cannot read
        return None


def _dims(shape) -> tuple:
    return tuple(d if isinstance(d, int) else -1 for d in shape)


class _Enum:
    def __init__(self, kind: str, name: str) -> None:
        self.text = f"{kind}.{name}"

    def __str__(self) -> str:
        return self.text


INPUT, OUTPUT, FLOAT = _Enum("TensorIOMode", "INPUT"), _Enum("TensorIOMode", "OUTPUT"), _Enum("DataType", "FLOAT")


# -- pycuda.driver ------------------------------------------------------------------------------
class _Alloc:
    _ids = itertools.count(4096, 4096)

    def __init__(self, nbytes: int) -> None:
        self.address = next(self._ids)
        self.buf = np.zeros(int(nbytes), np.uint8)
        self.freed = False
        ALLOCS[self.address] = self

    def __int__(self) -> int:
        return self.address

    def free(self) -> None:
        self.freed = True


ALLOCS: dict = {}


def make_cuda() -> types.ModuleType:
    cuda = types.ModuleType("pycuda.driver")
    ctx = types.SimpleNamespace(push=lambda: None, pop=lambda: None, detach=lambda: None)
    cuda.init = lambda: None
    cuda.Device = lambda i: types.SimpleNamespace(make_context=lambda: ctx)
    cuda.Stream = lambda: types.SimpleNamespace(handle=7, synchronize=lambda: None)
    cuda.pagelocked_empty = lambda n, dtype: np.zeros(int(n), dtype)
    cuda.mem_alloc = _Alloc

    def htod(dev, host, stream):
        dev.buf[: host.nbytes] = np.ascontiguousarray(host).view(np.uint8).reshape(-1)

    def dtoh(host, dev, stream):
        host.view(np.uint8).reshape(-1)[:] = dev.buf[: host.nbytes]

    cuda.memcpy_htod_async, cuda.memcpy_dtoh_async = htod, dtoh
    return cuda


# -- tensorrt (runtime side) -------------------------------------------------------------------
class FakeEngine:
    """ICudaEngine with the 8.5 tensor-name API (``legacy=True``: only 8.4's binding API)."""

    def __init__(self, session, profile=(1, 4, 8), fail=(), legacy=False) -> None:
        self.session, self.profile, self.fail, self.legacy = session, profile, set(fail), legacy
        self.ins = [(i.name, _dims(i.shape)) for i in session.get_inputs()]
        self.outs = [(o.name, _dims(o.shape)) for o in session.get_outputs()]
        self.io = self.ins + self.outs
        self.node_names = list(getattr(session, "node_names", []))

    def __getattribute__(self, name: str) -> Any:
        if name in ("num_io_tensors", "get_tensor_name", "get_tensor_profile_shape") and object.__getattribute__(
                self, "legacy"):
            raise AttributeError(name)
        return object.__getattribute__(self, name)

    # 8.5
    @property
    def num_io_tensors(self) -> int:
        return len(self.io)

    def get_tensor_name(self, i):
        return self.io[i][0]

    def get_tensor_mode(self, name):
        return INPUT if name in dict(self.ins) else OUTPUT

    def get_tensor_shape(self, name):
        return dict(self.io)[name]

    def get_tensor_dtype(self, name):
        return FLOAT

    def get_tensor_profile_shape(self, name, index):
        shape = dict(self.ins)[name]
        return [(b, *shape[1:]) for b in self.profile]

    # 8.4
    @property
    def num_bindings(self) -> int:
        return len(self.io)

    def get_binding_name(self, i):
        return self.io[i][0]

    def binding_is_input(self, i):
        return i < len(self.ins)

    def get_binding_shape(self, i):
        return self.io[i][1]

    def get_binding_dtype(self, i):
        return FLOAT

    def get_profile_shape(self, profile, i):
        return [(b, *self.io[i][1][1:]) for b in self.profile]

    def create_execution_context(self):
        return FakeContext(self)

    def create_engine_inspector(self):
        """IEngineInspector: every ONNX node as one GPU FP32 layer (the stand-in runs FP32)."""
        import json

        layers = [{"Name": n, "LayerType": "stand-in", "Outputs": [],
                   "Inputs": [{"Name": "x", "Dimensions": [], "Format/Datatype": "Row major linear FP32"}]}
                  for n in self.node_names]
        text = json.dumps({"Layers": layers, "Bindings": [name for name, _ in self.io]})
        return types.SimpleNamespace(get_engine_information=lambda fmt: text)


class FakeContext:
    """IExecutionContext: False returns on the calls named in ``engine.fail``."""

    def __init__(self, engine: FakeEngine) -> None:
        self.engine, self.shapes, self.addresses, self.calls = engine, {}, {}, []

    def __getattribute__(self, name: str) -> Any:
        tensor_api = ("set_input_shape", "set_tensor_address", "execute_async_v3", "get_tensor_shape")
        if name in tensor_api and object.__getattribute__(self, "engine").legacy:
            raise AttributeError(name)
        return object.__getattribute__(self, name)

    def _ok(self, call: str) -> bool:
        self.calls.append(call)
        return call not in self.engine.fail

    def set_input_shape(self, name, shape):
        self.shapes[name] = tuple(shape)
        return self._ok("set_input_shape")

    def set_tensor_address(self, name, address):
        self.addresses[name] = address
        return self._ok("set_tensor_address")

    def execute_async_v3(self, stream):
        if not self._ok("execute_async_v3"):
            return False
        self._run()
        return True

    def get_tensor_shape(self, name):
        return self.shapes[name]

    def set_binding_shape(self, index, shape):
        self.shapes[self.engine.io[index][0]] = tuple(shape)
        return self._ok("set_binding_shape")

    def execute_async_v2(self, bindings, stream):
        if not self._ok("execute_async_v2"):
            return False
        self.addresses = {name: addr for (name, _), addr in zip(self.engine.io, bindings)}
        self._run()
        return True

    def get_binding_shape(self, index):
        return self.shapes[self.engine.io[index][0]]

    def _run(self) -> None:
        feed = {}
        for name, _ in self.engine.ins:
            shape = self.shapes[name]
            n = int(np.prod(shape)) * 4
            feed[name] = ALLOCS[self.addresses[name]].buf[:n].view(np.float32).reshape(shape).copy()
        outs = self.engine.session.run(None, feed)
        for (name, _), value in zip(self.engine.outs, outs):
            value = np.ascontiguousarray(value, np.float32)
            self.shapes[name] = value.shape
            ALLOCS[self.addresses[name]].buf[: value.nbytes] = value.view(np.uint8).reshape(-1)


# -- tensorrt (builder side) -------------------------------------------------------------------
class FakeConfig:
    def __init__(self, fail) -> None:
        self.fail, self.flags, self.profiles, self.calls = set(fail), [], [], []
        self.int8_calibrator = None
        self.default_device_type = None
        self.DLA_core = None

    def set_memory_pool_limit(self, pool, size):
        self.calls.append(("set_memory_pool_limit", size))

    def set_flag(self, flag):
        self.flags.append(flag)

    def add_optimization_profile(self, profile):
        self.profiles.append(profile)
        return -1 if "add_optimization_profile" in self.fail else len(self.profiles) - 1

    def set_calibration_profile(self, profile):
        return "set_calibration_profile" not in self.fail

    def create_timing_cache(self, data):
        return types.SimpleNamespace(serialize=lambda: b"timing")

    def set_timing_cache(self, cache, ignore_mismatch):
        return "set_timing_cache" not in self.fail

    def get_timing_cache(self):
        return types.SimpleNamespace(serialize=lambda: b"timing")


def make_trt(profile=(1, 4, 8), fail=(), legacy=False, version="8.5.2.2") -> types.ModuleType:
    """A ``tensorrt`` module whose engines are ONNX models run by ONNX Runtime."""
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.configs = []
    trt.networks = []

    class Logger:
        WARNING, VERBOSE = 2, 4

        def __init__(self, level=2) -> None:
            self.level = level

    class Runtime:
        def __init__(self, logger) -> None:
            pass

        def deserialize_cuda_engine(self, data):
            session = _session(bytes(data))
            if session is not None:
                import onnx

                session.node_names = [n.name for n in onnx.load_from_string(bytes(data)).graph.node]
            return None if session is None else FakeEngine(session, profile, fail, legacy)

    class Builder:
        def __init__(self, logger) -> None:
            pass

        def create_network(self, flags):
            network = types.SimpleNamespace(model=None, layers=[], num_layers=0)
            network.get_layer = lambda i: network.layers[i]
            trt.networks.append(network)
            return network

        def create_builder_config(self):
            config = FakeConfig(fail)
            trt.configs.append(config)
            return config

        def create_optimization_profile(self):
            shapes = {}
            return types.SimpleNamespace(shapes=shapes, set_shape=lambda n, *s: shapes.__setitem__(n, s))

        def build_serialized_network(self, network, config):
            return None if "build_serialized_network" in fail else network.model

    class OnnxParser:
        def __init__(self, network, logger) -> None:
            self.network, self.num_errors = network, 0

        def parse(self, data):
            self.network.model = bytes(data)
            ok = _session(self.network.model) is not None
            if ok:  # one layer per ONNX node, named after it (as onnx-tensorrt names them)
                import onnx

                nodes = onnx.load_from_string(self.network.model).graph.node
                self.network.layers = [types.SimpleNamespace(name=n.name, precision=None) for n in nodes]
                self.network.num_layers = len(self.network.layers)
            return ok

    class IInt8EntropyCalibrator2:
        def __init__(self) -> None:
            pass

    trt.Logger, trt.Runtime, trt.Builder, trt.OnnxParser = Logger, Runtime, Builder, OnnxParser
    trt.IInt8EntropyCalibrator2 = IInt8EntropyCalibrator2
    trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(EXPLICIT_BATCH=0)
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE="WORKSPACE")
    trt.BuilderFlag = types.SimpleNamespace(FP16="FP16", INT8="INT8", GPU_FALLBACK="GPU_FALLBACK",
                                            OBEY_PRECISION_CONSTRAINTS="OBEY_PRECISION_CONSTRAINTS",
                                            PREFER_PRECISION_CONSTRAINTS="PREFER_PRECISION_CONSTRAINTS")
    trt.float16 = "float16"
    trt.DeviceType = types.SimpleNamespace(DLA="DLA", GPU="GPU")
    trt.ProfilingVerbosity = types.SimpleNamespace(DETAILED="DETAILED", LAYER_NAMES_ONLY="LAYER_NAMES_ONLY")
    trt.LayerInformationFormat = types.SimpleNamespace(JSON="JSON", ONELINE="ONELINE")
    return trt


def install_trt(monkeypatch, **kwargs) -> types.ModuleType:
    trt = make_trt(**kwargs)
    pycuda = types.ModuleType("pycuda")
    cuda = make_cuda()
    pycuda.driver = cuda
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setitem(sys.modules, "pycuda", pycuda)
    monkeypatch.setitem(sys.modules, "pycuda.driver", cuda)
    return trt


# -- hobot_dnn.pyeasy_dnn ------------------------------------------------------------------------
class _BpuModel:
    """pyeasy_dnn Model: ``inputs``/``outputs`` with ``.properties``; ``forward`` takes the board bytes.

    ``forward(nv12 or NHWC uint8)`` undoes hb_mapper's compiled-in preprocessing with ``to_float``
    (board bytes -> the float NCHW batch of the ONNX) and runs the ONNX.
    """

    def __init__(self, session, to_float) -> None:
        self.session, self.to_float = session, to_float
        shape = _dims(session.get_inputs()[0].shape)
        props = types.SimpleNamespace(shape=shape, dtype="uint8", layout="NCHW", scale_data=np.array([]))
        self.inputs = [types.SimpleNamespace(name=session.get_inputs()[0].name, properties=props)]
        self.outputs = [types.SimpleNamespace(name=o.name, properties=types.SimpleNamespace(
            shape=_dims(o.shape), dtype="float32", scale_data=np.array([], np.float32)))
            for o in session.get_outputs()]

    def forward(self, board_bytes):
        x = self.to_float(np.asarray(board_bytes))
        outs = self.session.run(None, {self.session.get_inputs()[0].name: x})
        return [types.SimpleNamespace(buffer=np.asarray(o, np.float32)) for o in outs]


def install_hobot_dnn(monkeypatch, to_float) -> types.ModuleType:
    """``hobot_dnn.pyeasy_dnn`` whose ``load(path)`` reads an ONNX model saved under the .bin name."""
    dnn = types.ModuleType("hobot_dnn.pyeasy_dnn")

    def load(path):
        with open(path, "rb") as f:
            session = _session(f.read())
        if session is None:
            raise RuntimeError(f"hobot_dnn: cannot load {path}")
        return [_BpuModel(session, to_float)]

    dnn.load = load
    pkg = types.ModuleType("hobot_dnn")
    pkg.pyeasy_dnn = dnn
    monkeypatch.setitem(sys.modules, "hobot_dnn", pkg)
    monkeypatch.setitem(sys.modules, "hobot_dnn.pyeasy_dnn", dnn)
    return dnn
