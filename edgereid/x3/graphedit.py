"""A small mutable view of an ONNX graph for the X3 rewrites (onnx-graphsurgeon's habit, no extra
dependency): producer/consumer maps, constants as numpy, shapes from ONNX shape inference,
and a cleanup + topological sort at the end.
"""

from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np


class GraphEdit:
    """Edit ``model`` (onnx.ModelProto) in place.

    Call :meth:`refresh` after structural changes that later matches depend on, and
    :meth:`finish` once at the end (drops dead nodes and unused initializers, sorts).
    """

    def __init__(self, model) -> None:
        self.model = model
        self.graph = model.graph
        self._counter = 0
        self.refresh()

    # -- state -----------------------------------------------------------------------------
    def refresh(self) -> None:
        from onnx import numpy_helper

        self.consts: Dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in self.graph.initializer}
        for node in self.graph.node:
            if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
                self.consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        self.producer = {o: n for n in self.graph.node for o in n.output}
        self.consumers: Dict[str, list] = {}
        for n in self.graph.node:
            for x in n.input:
                self.consumers.setdefault(x, []).append(n)
        self.shapes: Dict[str, List[int]] = infer_shapes_light(self.model)
        for name, arr in self.consts.items():
            self.shapes.setdefault(name, list(arr.shape))

    @property
    def output_names(self) -> List[str]:
        return [o.name for o in self.graph.output]

    def shape(self, name: str) -> Optional[List[int]]:
        return self.shapes.get(name)

    def const(self, name: str) -> Optional[np.ndarray]:
        return self.consts.get(name)

    def only_consumer(self, name: str):
        users = self.consumers.get(name, [])
        if len(users) == 1 and name not in self.output_names:
            return users[0]
        return None

    def attr(self, node, name: str, default=None):
        import onnx

        for a in node.attribute:
            if a.name == name:
                return onnx.helper.get_attribute_value(a)
        return default

    # -- edits -----------------------------------------------------------------------------
    def fresh(self, base: str) -> str:
        self._counter += 1
        return f"{base}__x3_{self._counter}"

    def add_const(self, base: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self.fresh(base)
        self.graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        self.consts[name] = value
        return name

    def replace_node(self, old, new_nodes: list) -> None:
        """Put ``new_nodes`` where ``old`` was."""
        nodes = self.graph.node
        idx = list(nodes).index(old)
        nodes.remove(old)
        for k, n in enumerate(new_nodes):
            nodes.insert(idx + k, n)

    def remove_node(self, node) -> None:
        self.graph.node.remove(node)

    def rename_input_everywhere(self, old: str, new: str) -> None:
        """Make every reader of tensor ``old`` read ``new`` (graph outputs included)."""
        for n in self.graph.node:
            for i, x in enumerate(n.input):
                if x == old:
                    n.input[i] = new
        for o in self.graph.output:
            if o.name == old:
                o.name = new

    def bypass(self, node) -> None:
        """Drop a one-in-one-out node, wiring its readers to its input."""
        src, dst = node.input[0], node.output[0]
        self.remove_node(node)
        if dst in self.output_names:
            # keep the graph output name stable: rename the producer's output instead
            prod = self.producer.get(src)
            if prod is not None and src not in self.output_names and len(self.consumers.get(src, [])) == 1:
                prod.output[list(prod.output).index(src)] = dst
                return
        self.rename_input_everywhere(dst, src)

    def finish(self) -> None:
        """Remove nodes nothing reads, unused initializers, stale value_info; sort topologically."""
        g = self.graph
        live = set(self.output_names)
        keep = []
        for n in reversed(list(g.node)):
            if any(o in live for o in n.output):
                keep.append(n)
                live.update(x for x in n.input if x)
        keep.reverse()
        order = _toposort(keep, {i.name for i in g.input} | {i.name for i in g.initializer})
        del g.node[:]
        g.node.extend(order)
        used = {x for n in g.node for x in n.input}
        inits = [i for i in g.initializer if i.name in used]
        del g.initializer[:]
        g.initializer.extend(inits)
        del g.value_info[:]
        self.refresh()


def infer_shapes_light(model, small: int = 4096) -> Dict[str, List[int]]:
    """Tensor shapes by ONNX shape inference on a copy without the large weights.

    ``infer_shapes`` serialises the whole model; for RGA-SC (100 MB of weights) that costs a
    second per call. Large initializers only need their shape, so they become typed graph
    inputs; small ones (Reshape targets, axes) keep their values. -1 marks an unknown dim.
    """
    import onnx
    from onnx import helper

    g = model.graph
    keep, typed = [], []
    for init in g.initializer:
        if int(np.prod(init.dims)) <= small:
            keep.append(init)
        else:
            typed.append(helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    light_graph = helper.make_graph(list(g.node), g.name or "g", list(g.input) + typed, list(g.output), keep)
    light = helper.make_model(light_graph, opset_imports=list(model.opset_import))
    light.ir_version = model.ir_version
    inferred = onnx.shape_inference.infer_shapes(light)
    shapes: Dict[str, List[int]] = {}
    for vi in list(inferred.graph.input) + list(inferred.graph.output) + list(inferred.graph.value_info):
        if vi.type.tensor_type.HasField("shape"):
            shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else -1 for d in vi.type.tensor_type.shape.dim]
    return shapes


def _toposort(nodes: list, available: set) -> list:
    ready = set(available) | {""}
    pending = list(nodes)
    out = []
    while pending:
        progressed = False
        rest = []
        for n in pending:
            if all(x in ready for x in n.input):
                out.append(n)
                ready.update(n.output)
                progressed = True
            else:
                rest.append(n)
        pending = rest
        if not progressed:  # a cycle or a dangling input: keep the original order for the rest
            out.extend(pending)
            break
    return out
