"""Named graph rewrites that move work from the X3's CPU to its BPU, each numerically exact.

Every rewrite is a function ``(GraphEdit) -> int`` (how many places it changed), registered by
name in :data:`REWRITES`; :func:`apply_rewrites` runs them in :data:`DEFAULT_REWRITES` order and
cleans the graph once. Tests prove each one equal to the original graph on its own.

Why each exists (``edgereid.x3.ops`` says what the BPU takes):
- ``strip_l2_normalize``: L2 normalisation (ReduceL2/LpNormalization/Div: CPU ops) belongs to the
  host; the runtime applies it after the model (manifest ``postprocess.l2_normalize``).
- ``channel_mean_to_conv``: RGA's ``mean(dim=1)`` is a ReduceMean over axis 1, which the BPU
  refuses (it reduces only over [2, 3]); a 1x1 conv with weights 1/C is the same sum.
- ``full_avgpool_to_gap``: an AveragePool whose kernel is the whole map (RGA's 16x8 head pool) is
  over the BPU's 7x7 kernel limit; GlobalAveragePool is the same average.
- ``sink_flatten``: the 2-D head (Flatten/Reshape -> Gemm -> BatchNorm1d -> ReLU) runs on the CPU;
  on a (1, C, 1, 1) map the same ops are a 1x1 Conv, a BatchNorm2d, a ReLU, all BPU ops, and the
  flatten moves to the end.
- ``drop_trailing_flatten``: the final flatten of a (1, D, 1, 1) map is left to the host (the
  runner reshapes to (N, D) anyway).
- ``fold_batchnorm``: BatchNorm after a Conv becomes the conv's weights and bias.
- ``sub_div_const``: Sub/Div by a constant (CPU ops) are Add/Mul by -c / 1/c (BPU ops).
- ``relation_to_bpu_matmul``, ``sigmoid_after_reshape``, ``pixel_gate_to_full``, ``affine_to_conv``,
  ``merge_reshapes``, ``const_to_4d``, ``sub_to_add``, ``concat_vector_maps``: RGA's relation
  products and gates and RRID's head in BPU forms, see :mod:`edgereid.x3.rewrites_rga` and
  :mod:`edgereid.x3.rewrites_bpu`.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Sequence

import numpy as np

from edgereid.x3 import rewrites_bpu, rewrites_rga
from edgereid.x3.graphedit import GraphEdit

Rewrite = Callable[[GraphEdit], int]
REWRITES: Dict[str, Rewrite] = {}


def register(name: str) -> Callable[[Rewrite], Rewrite]:
    def deco(fn: Rewrite) -> Rewrite:
        REWRITES[name] = fn
        return fn

    return deco


def _helper():
    import onnx

    return onnx.helper


# -- L2 normalisation goes to the host -------------------------------------------------------------
def _ancestors_until(g: GraphEdit, name: str, stop: str, limit: int = 12) -> List:
    """Nodes between tensor ``stop`` and tensor ``name`` (exclusive of stop's producer)."""
    seen, todo, out = set(), [name], []
    while todo and len(out) < limit:
        t = todo.pop()
        if t == stop or t in seen or t in g.consts:
            continue
        seen.add(t)
        node = g.producer.get(t)
        if node is None:
            return []
        out.append(node)
        todo.extend(x for x in node.input if x)
    return out if stop in {x for n in out for x in n.input} else []


@register("strip_l2_normalize")
def strip_l2_normalize(g: GraphEdit) -> int:
    changed = 0
    for out_name in g.output_names:
        node = g.producer.get(out_name)
        if node is None:
            continue
        if node.op_type == "LpNormalization" and g.attr(node, "p", 2) == 2:
            g.bypass(node)
            changed += 1
        elif node.op_type == "Div":
            x, denom = node.input[0], node.input[1]
            chain = _ancestors_until(g, denom, x)
            if any(n.op_type in ("ReduceL2", "Sqrt", "LpNormalization") for n in chain):
                g.bypass(node)
                changed += 1
    return changed


# -- ReduceMean over channels -> 1x1 conv ------------------------------------------------------------
@register("channel_mean_to_conv")
def channel_mean_to_conv(g: GraphEdit) -> int:
    h = _helper()
    changed = 0
    for node in list(g.graph.node):
        if node.op_type != "ReduceMean":
            continue
        shape = g.shape(node.input[0])
        axes = g.attr(node, "axes")
        if axes is None and len(node.input) > 1 and g.const(node.input[1]) is not None:
            axes = g.const(node.input[1]).tolist()
        if shape is None or len(shape) != 4 or shape[1] <= 0 or axes is None:
            continue
        if [a % 4 for a in axes] != [1] or g.attr(node, "keepdims", 1) != 1:
            continue
        c = shape[1]
        w = g.add_const(node.name + "_w", np.full((1, c, 1, 1), 1.0 / c, np.float32))
        conv = h.make_node("Conv", [node.input[0], w], list(node.output), name=node.name + "_as_conv",
                           kernel_shape=[1, 1])
        g.replace_node(node, [conv])
        changed += 1
    return changed


# -- AveragePool over the whole map -> GlobalAveragePool ----------------------------------------------
@register("full_avgpool_to_gap")
def full_avgpool_to_gap(g: GraphEdit) -> int:
    h = _helper()
    changed = 0
    for node in list(g.graph.node):
        if node.op_type != "AveragePool":
            continue
        shape = g.shape(node.input[0])
        kernel = g.attr(node, "kernel_shape")
        pads = g.attr(node, "pads", [0, 0, 0, 0])
        if shape is None or len(shape) != 4 or list(kernel or []) != shape[2:] or any(pads):
            continue
        gap = h.make_node("GlobalAveragePool", [node.input[0]], list(node.output), name=node.name + "_gap")
        g.replace_node(node, [gap])
        changed += 1
    return changed


# -- the 2-D head on a (1, C, 1, 1) map ----------------------------------------------------------------
_UNARY = ("Relu", "Sigmoid", "Clip", "LeakyRelu", "BatchNormalization")


def _is_flatten_of_vector_map(g: GraphEdit, node) -> bool:
    if node.op_type not in ("Flatten", "Reshape", "Squeeze"):
        return False
    src, dst = g.shape(node.input[0]), g.shape(node.output[0])
    return (
        src is not None and dst is not None and len(src) == 4 and src[0] == 1 and src[2:] == [1, 1]
        and len(dst) == 2 and dst == [1, src[1]]
    )


def _as_4d(g: GraphEdit, consumer, x4: str, out4: str) -> list | None:
    """Nodes computing ``consumer`` on the (1, C, 1, 1) tensor ``x4`` into ``out4``, or None."""
    h = _helper()
    op = consumer.op_type
    if op in _UNARY and consumer.input[0] != "":
        n = h.make_node(op, [x4, *consumer.input[1:]], [out4], name=consumer.name + "_4d")
        n.attribute.extend(consumer.attribute)
        return [n]
    if op == "Gemm" and g.const(consumer.input[1]) is not None and not g.attr(consumer, "transA", 0):
        b = g.const(consumer.input[1]).astype(np.float32)
        w = (b if g.attr(consumer, "transB", 0) else b.T) * np.float32(g.attr(consumer, "alpha", 1.0))
        inputs = [x4, g.add_const(consumer.name + "_w", w.reshape(w.shape[0], w.shape[1], 1, 1))]
        if len(consumer.input) > 2 and consumer.input[2]:
            bias = g.const(consumer.input[2])
            if bias is None or bias.size not in (1, w.shape[0]):
                return None
            bias = np.broadcast_to(bias.reshape(-1), (w.shape[0],)) * np.float32(g.attr(consumer, "beta", 1.0))
            inputs.append(g.add_const(consumer.name + "_b", bias.astype(np.float32)))
        return [h.make_node("Conv", inputs, [out4], name=consumer.name + "_as_conv", kernel_shape=[1, 1])]
    if op in ("Add", "Mul", "Sub", "Div"):
        other = [x for x in consumer.input if g.const(x) is not None]
        if len(other) != 1 or g.const(other[0]).size not in (1, g.shape(x4)[1]):
            return None
        c = g.const(other[0]).astype(np.float32).reshape(1, -1, 1, 1)
        ins = [x4 if x != other[0] else g.add_const(consumer.name + "_c4", c) for x in consumer.input]
        return [h.make_node(op, ins, [out4], name=consumer.name + "_4d")]
    return None


@register("sink_flatten")
def sink_flatten(g: GraphEdit) -> int:
    h = _helper()
    changed = 0
    moved = True
    while moved:
        moved = False
        for flat in list(g.graph.node):
            if not _is_flatten_of_vector_map(g, flat):
                continue
            consumer = g.only_consumer(flat.output[0])
            if consumer is None:
                continue
            out4 = g.fresh(consumer.output[0] + "_4d")
            new = _as_4d(g, consumer, flat.input[0], out4)
            if new is None:
                continue
            shape2d = g.add_const(flat.name + "_shape", np.array([1, -1], np.int64))
            new_flat = h.make_node("Reshape", [out4, shape2d], [consumer.output[0]], name=flat.name + "_sunk")
            g.replace_node(consumer, [*new, new_flat])
            g.remove_node(flat)
            g.refresh()
            changed += 1
            moved = True
            break
    return changed


@register("drop_trailing_flatten")
def drop_trailing_flatten(g: GraphEdit) -> int:
    """Leave the (1, D, 1, 1) -> (1, D) flatten at the very end to the host."""
    changed = 0
    for out in list(g.graph.output):
        node = g.producer.get(out.name)
        if node is None or not _is_flatten_of_vector_map(g, node):
            continue
        src = node.input[0]
        if len(g.consumers.get(src, [])) != 1:
            continue
        g.bypass(node)
        dims = out.type.tensor_type.shape
        del dims.dim[:]
        for d in g.shape(src):
            dims.dim.add().dim_value = d
        changed += 1
    return changed


# -- BatchNorm into the conv before it --------------------------------------------------------------
@register("fold_batchnorm")
def fold_batchnorm(g: GraphEdit) -> int:
    changed = 0
    for bn in list(g.graph.node):
        if bn.op_type != "BatchNormalization":
            continue
        conv = g.producer.get(bn.input[0])
        if conv is None or conv.op_type != "Conv" or g.only_consumer(conv.output[0]) is not bn:
            continue
        params = [g.const(x) for x in bn.input[1:5]]
        w = g.const(conv.input[1])
        if w is None or any(p is None for p in params):
            continue
        scale, bias, mean, var = (p.astype(np.float64) for p in params)
        k = scale / np.sqrt(var + float(g.attr(bn, "epsilon", 1e-5)))
        b0 = g.const(conv.input[2]).astype(np.float64) if len(conv.input) > 2 and conv.input[2] else 0.0
        new_w = (w.astype(np.float64) * k.reshape(-1, *([1] * (w.ndim - 1)))).astype(np.float32)
        new_b = ((b0 - mean) * k + bias).astype(np.float32)
        del conv.input[1:]
        conv.input.extend([g.add_const(conv.name + "_wbn", new_w), g.add_const(conv.name + "_bbn", new_b)])
        conv.output[0] = bn.output[0]
        g.remove_node(bn)
        g.refresh()
        changed += 1
    return changed


# -- Sub / Div by a constant -> Add / Mul ---------------------------------------------------------------
@register("sub_div_const")
def sub_div_const(g: GraphEdit) -> int:
    h = _helper()
    changed = 0
    for node in list(g.graph.node):
        if node.op_type not in ("Sub", "Div") or g.const(node.input[1]) is None or g.const(node.input[0]) is not None:
            continue
        c = g.const(node.input[1]).astype(np.float32)
        if node.op_type == "Div" and np.any(c == 0):
            continue
        op, c2 = ("Add", -c) if node.op_type == "Sub" else ("Mul", (1.0 / c).astype(np.float32))
        new = h.make_node(op, [node.input[0], g.add_const(node.name + "_c", c2)], list(node.output),
                          name=node.name + "_as_" + op.lower())
        g.replace_node(node, [new])
        changed += 1
    return changed


REWRITES.update(
    relation_to_bpu_matmul=rewrites_rga.relation_to_bpu_matmul,
    sigmoid_after_reshape=rewrites_bpu.sigmoid_after_reshape,
    pixel_gate_to_full=rewrites_bpu.pixel_gate_to_full,
    affine_to_conv=rewrites_bpu.affine_to_conv,
    merge_reshapes=rewrites_bpu.merge_reshapes,
    unsqueeze_before_transpose=rewrites_bpu.unsqueeze_before_transpose,
    const_to_4d=rewrites_bpu.const_to_4d,
    sub_to_add=rewrites_bpu.sub_to_add,
    concat_vector_maps=rewrites_bpu.concat_vector_maps,
)

DEFAULT_REWRITES = (
    "strip_l2_normalize",
    "channel_mean_to_conv",
    "full_avgpool_to_gap",
    "sub_div_const",
    "sub_to_add",
    "const_to_4d",
    "sink_flatten",
    "fold_batchnorm",
    "concat_vector_maps",
    "drop_trailing_flatten",
    "relation_to_bpu_matmul",
    "sigmoid_after_reshape",
    "pixel_gate_to_full",
    "affine_to_conv",
    "unsqueeze_before_transpose",
    "merge_reshapes",
)


def apply_rewrites(model, names: Sequence[str] = DEFAULT_REWRITES) -> Dict[str, int]:
    """Apply the named rewrites to ``model`` in place; return how often each fired."""
    unknown = [n for n in names if n not in REWRITES]
    if unknown:
        raise ValueError(f"unknown X3 rewrites {unknown}; valid names: {sorted(REWRITES)}")
    g = GraphEdit(model)
    counts = {}
    for name in names:
        counts[name] = int(REWRITES[name](g))
        g.finish()
    return counts
