"""Helpers for the X3 tests: tiny hand-made ONNX graphs and running them in ONNX Runtime."""

from __future__ import annotations

import numpy as np
import pytest


class OnnxBuilder:
    """Build a small float32 graph: ``b = OnnxBuilder(); b.node(...); model = b.model(...)``."""

    def __init__(self, seed: int = 0) -> None:
        import onnx  # noqa: F401 - fail early when onnx is absent

        self.nodes = []
        self.inits = []
        self.rng = np.random.default_rng(seed)
        self._n = 0

    def const(self, value: np.ndarray, name: str | None = None) -> str:
        from onnx import numpy_helper

        self._n += 1
        name = name or f"c{self._n}"
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def weight(self, *shape: int, scale: float = 0.3) -> str:
        return self.const(self.rng.normal(0, scale, shape).astype(np.float32))

    def node(self, op: str, inputs: list, outputs: list | None = None, **attrs) -> str:
        from onnx import helper

        self._n += 1
        outputs = outputs or [f"t{self._n}"]
        self.nodes.append(helper.make_node(op, inputs, outputs, name=f"{op}_{self._n}", **attrs))
        return outputs[0]

    def model(self, input_shape, output: str, output_shape=None, opset: int = 11, input_name: str = "x"):
        from onnx import TensorProto, helper

        graph = helper.make_graph(
            self.nodes,
            "g",
            [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, list(input_shape))],
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, output_shape)],
            initializer=self.inits,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        model.ir_version = 7
        return model


def run_onnx(model, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


@pytest.fixture
def builder() -> OnnxBuilder:
    return OnnxBuilder()


@pytest.fixture
def run():
    return run_onnx
