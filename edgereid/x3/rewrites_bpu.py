"""X3 rewrites that put RGA's gates and RRID's head into forms Horizon's X3 list puts on the BPU
(RGA's relation products: :mod:`edgereid.x3.rewrites_rga`).

Each function is ``(GraphEdit) -> int`` like those of :mod:`edgereid.x3.rewrites` (registered
there) and exact up to float summation order. The forms come from HorizonRDK/rdk_x3_doc
``docs/toolchain_development/intermediate/supported_op_list.md`` (rows cited below):

- ``sigmoid_after_reshape``: Sigmoid then Reshape (1x1xCx1 -> 1xCx1x1) becomes Reshape then Sigmoid:
  row Sigmoid limits the padded size (W to 8, C to 4 / C to 32) to 8192, which 1x1xCx1 misses for
  C >= 512 and 1xCx1x1 meets up to C = 8192.
- ``pixel_gate_to_full``: x (1xCxHxW) * gate (1x1xHxW) is not a Mul form of row Mul; a 1x1 conv
  of ones (1 -> C channels) spreads the gate first, then the Mul is 1xCxHxW x 1xCxHxW.
- ``affine_to_conv``: a BatchNormalization that follows no Conv (row BatchNormalization: BPU only
  fused into the preceding conv) and an Add of a per-channel constant (row Add: NC11 only when both
  inputs come from ops) become a depthwise 1x1 Conv (scale, shift), or join the preceding Conv's bias.
"""

from __future__ import annotations

from typing import List, Optional

import numpy as np

from edgereid.x3.graphedit import GraphEdit


def onnx_helper():
    import onnx

    return onnx.helper


def i64_const(g: GraphEdit, base: str, values) -> str:
    return g.add_const(base, np.array(values, np.int64))


def producer_of(g: GraphEdit, name: str, op: str):
    node = g.producer.get(name)
    return node if node is not None and node.op_type == op else None


# -- Sigmoid after the reshape that brings it to channels ----------------------------------------
def sigmoid_after_reshape(g: GraphEdit) -> int:
    h = onnx_helper()
    changed = 0
    for rs in list(g.graph.node):
        if rs.op_type != "Reshape":
            continue
        sig = producer_of(g, rs.input[0], "Sigmoid")
        src, dst = g.shape(rs.input[0]), g.shape(rs.output[0])
        if sig is None or g.only_consumer(sig.output[0]) is not rs or src is None or dst is None:
            continue
        if len(dst) != 4 or dst[2:] != [1, 1] or src == dst:
            continue
        mid = g.fresh(rs.output[0] + "_pre")
        new_rs = h.make_node("Reshape", [sig.input[0], rs.input[1]], [mid], name=rs.name + "_first")
        new_sig = h.make_node("Sigmoid", [mid], list(rs.output), name=sig.name + "_after")
        g.replace_node(rs, [new_rs, new_sig])
        g.remove_node(sig)
        g.refresh()
        changed += 1
    return changed


# -- per-pixel gate spread over the channels ------------------------------------------------------
def pixel_gate_to_full(g: GraphEdit) -> int:
    h = onnx_helper()
    changed = 0
    for mul in list(g.graph.node):
        if mul.op_type != "Mul" or len(mul.input) != 2 or any(g.const(x) is not None for x in mul.input):
            continue
        shapes = [g.shape(x) for x in mul.input]
        if any(s is None or len(s) != 4 or s[0] != 1 for s in shapes):
            continue
        for gi in (0, 1):
            gate, full = shapes[gi], shapes[1 - gi]
            if gate[1] == 1 and full[1] > 1 and gate[2:] == full[2:]:
                c = full[1]
                spread = g.fresh(mul.input[gi] + "_spread")
                w = g.add_const(mul.name + "_ones", np.ones((c, 1, 1, 1), np.float32))
                conv = h.make_node("Conv", [mul.input[gi], w], [spread], name=mul.name + "_spread",
                                   kernel_shape=[1, 1])
                ins = list(mul.input)
                ins[gi] = spread
                new_mul = h.make_node("Mul", ins, list(mul.output), name=mul.name + "_full")
                g.replace_node(mul, [conv, new_mul])
                changed += 1
                break
    if changed:
        g.refresh()
    return changed


# -- lone BatchNorm / constant Add -> depthwise conv or conv bias -----------------------------------
def _per_channel(value: np.ndarray, c: int) -> Optional[np.ndarray]:
    if value.size == 1:
        return np.full(c, float(value.reshape(-1)[0]), np.float32)
    if value.size == c and (value.ndim == 1 or list(value.shape)[-2:] == [1, 1]):
        return value.reshape(-1).astype(np.float32)
    return None


def _depthwise(g: GraphEdit, name: str, x: str, out: List[str], scale: np.ndarray, shift: np.ndarray):
    c = scale.size
    w = g.add_const(name + "_dw", scale.reshape(c, 1, 1, 1).astype(np.float32))
    b = g.add_const(name + "_db", shift.astype(np.float32))
    return onnx_helper().make_node("Conv", [x, w, b], out, name=name + "_dwconv", kernel_shape=[1, 1], group=c)


def _bn_to_conv(g: GraphEdit, node) -> bool:
    prod = g.producer.get(node.input[0])
    shape = g.shape(node.input[0])
    if prod is not None and prod.op_type == "Conv" or shape is None or len(shape) != 4:
        return False
    params = [g.const(x) for x in node.input[1:5]]
    if any(p is None for p in params):
        return False
    s, bias, mean, var = (p.astype(np.float64) for p in params)
    k = s / np.sqrt(var + float(g.attr(node, "epsilon", 1e-5)))
    g.replace_node(node, [_depthwise(g, node.name, node.input[0], list(node.output), k, bias - mean * k)])
    return True


def _const_add_to_conv(g: GraphEdit, node) -> bool:
    consts = [g.const(x) for x in node.input]
    if len(consts) != 2 or (consts[0] is None) == (consts[1] is None):
        return False
    xi = 0 if consts[0] is None else 1
    x = node.input[xi]
    shape = g.shape(x)
    if shape is None or len(shape) != 4 or shape[0] != 1 or shape != g.shape(node.output[0]):
        return False
    shift = _per_channel(consts[1 - xi], shape[1])
    if shift is None:
        return False
    prod = g.producer.get(x)
    if prod is not None and prod.op_type == "Conv" and g.only_consumer(x) is node:
        b0 = g.const(prod.input[2]) if len(prod.input) > 2 and prod.input[2] else np.zeros(shift.size, np.float32)
        if b0 is None:
            return False
        del prod.input[2:]
        prod.input.append(g.add_const(prod.name + "_badd", (b0.astype(np.float32) + shift).astype(np.float32)))
        prod.output[0] = node.output[0]
        g.remove_node(node)
    else:
        g.replace_node(node, [_depthwise(g, node.name, x, list(node.output), np.ones(shape[1]), shift)])
    return True


def affine_to_conv(g: GraphEdit) -> int:
    changed = 0
    for node in list(g.graph.node):
        done = False
        if node.op_type == "BatchNormalization":
            done = _bn_to_conv(g, node)
        elif node.op_type == "Add":
            done = _const_add_to_conv(g, node)
        if done:
            changed += 1
            g.refresh()
    return changed


# -- chains of reshapes -> one Reshape ----------------------------------------------------------
_RESHAPES = ("Reshape", "Flatten", "Squeeze", "Unsqueeze")


def merge_reshapes(g: GraphEdit) -> int:
    """A chain of reshape-like nodes (each the only reader of the last) is one Reshape to the end shape."""
    h = onnx_helper()
    changed = 0
    for node in list(g.graph.node):
        if node.op_type not in _RESHAPES or node not in g.graph.node:
            continue
        prev = g.producer.get(node.input[0])
        if prev is None or prev.op_type not in _RESHAPES or g.only_consumer(prev.output[0]) is not node:
            continue
        end = g.shape(node.output[0])
        if end is None or any(d <= 0 for d in end):
            continue
        merged = h.make_node("Reshape", [prev.input[0], i64_const(g, node.name + "_to", end)], list(node.output),
                             name=node.name + "_merged")
        g.replace_node(node, [merged])
        g.remove_node(prev)
        g.refresh()
        changed += 1
    return changed


# -- RRID's head: scalar constants, Sub of two maps, the concat of flattened part features --------
def const_to_4d(g: GraphEdit) -> int:
    """A constant operand of Mul/Add/Div on a 4-D map reshaped to 4-D (row Mul: both inputs 4-D)."""
    changed = 0
    for node in list(g.graph.node):
        if node.op_type not in ("Mul", "Add", "Div") or len(node.input) != 2:
            continue
        shapes = [g.shape(x) for x in node.input]
        for ci in (0, 1):
            c, other = g.const(node.input[ci]), shapes[1 - ci]
            if c is None or other is None or len(other) != 4 or c.ndim == 4 or c.ndim > 4:
                continue
            node.input[ci] = g.add_const(node.name + "_c4", c.reshape((1,) * (4 - c.ndim) + c.shape))
            changed += 1
    if changed:
        g.refresh()
    return changed


def sub_to_add(g: GraphEdit) -> int:
    """a - b of two same-shape 4-D maps (row Sub: CPU) = a + (-1 * b) (Mul x 1x1x1x1, Add NCHW + NCHW)."""
    h = onnx_helper()
    changed = 0
    for node in list(g.graph.node):
        if node.op_type != "Sub" or any(g.const(x) is not None for x in node.input):
            continue
        a, b = (g.shape(x) for x in node.input)
        if a is None or a != b or len(a) != 4 or a[0] != 1:
            continue
        neg = g.fresh(node.input[1] + "_neg")
        minus = g.add_const(node.name + "_m1", np.full((1, 1, 1, 1), -1.0, np.float32))
        g.replace_node(node, [
            h.make_node("Mul", [node.input[1], minus], [neg], name=node.name + "_neg"),
            h.make_node("Add", [node.input[0], neg], list(node.output), name=node.name + "_as_add"),
        ])
        changed += 1
    if changed:
        g.refresh()
    return changed


def concat_vector_maps(g: GraphEdit, cmax: int = 2048) -> int:
    """Concat of flattened (1, C_i, 1, 1) maps -> channel Concats of <= ``cmax`` channels (BPU, row Concat)
    feeding one last Concat and a flatten; the last Concat stays on the CPU when the total > ``cmax``."""
    h = onnx_helper()
    changed = 0
    for node in list(g.graph.node):
        if node.op_type != "Concat" or g.attr(node, "axis", 0) % 2 != 1 or len(node.input) < 2:
            continue
        flats = [g.producer.get(x) for x in node.input]
        if any(f is None or f.op_type not in ("Flatten", "Reshape") for f in flats):
            continue
        maps = [f.input[0] for f in flats]
        shapes = [g.shape(m) for m in maps]
        if any(s is None or len(s) != 4 or s[0] != 1 or s[2:] != [1, 1] for s in shapes):
            continue
        if any(g.shape(f.output[0]) != [1, s[1]] for f, s in zip(flats, shapes)):
            continue
        groups, cur, size = [], [], 0
        for m, s in zip(maps, shapes):
            if cur and size + s[1] > cmax:
                groups.append(cur)
                cur, size = [], 0
            cur.append(m)
            size += s[1]
        groups.append(cur)
        parts, part_nodes = [], []
        for i, grp in enumerate(groups):
            if len(grp) == 1:
                parts.append(grp[0])
                continue
            t = g.fresh(f"{node.name}_part{i}")
            parts.append(t)
            part_nodes.append(h.make_node("Concat", grp, [t], name=f"{node.name}_part{i}", axis=1))
        total = sum(s[1] for s in shapes)
        out4 = g.fresh(node.output[0] + "_4d")
        last = [h.make_node("Concat", parts, [out4], name=node.name + "_4d", axis=1)] if len(parts) > 1 else []
        src = out4 if last else parts[0]
        flat = h.make_node("Reshape", [src, i64_const(g, node.name + "_to2d", [1, total])], list(node.output),
                           name=node.name + "_flat")
        g.replace_node(node, [*part_nodes, *last, flat])
        g.finish()
        changed += 1
    return changed


def unsqueeze_before_transpose(g: GraphEdit) -> int:
    """Transpose then a trailing Unsqueeze = Unsqueeze then Transpose (perm + the new axes), so the
    Unsqueeze can join the Reshape before it (:func:`merge_reshapes`): one copy less on the CPU."""
    h = onnx_helper()
    changed = 0
    for un in list(g.graph.node):
        if un.op_type != "Unsqueeze":
            continue
        tr = g.producer.get(un.input[0])
        if tr is None or tr.op_type != "Transpose" or g.only_consumer(tr.output[0]) is not un:
            continue
        src = g.shape(tr.input[0])
        as_input = len(un.input) > 1  # opset >= 13: axes is an input
        axes = g.const(un.input[1]).tolist() if as_input and g.const(un.input[1]) is not None else g.attr(un, "axes")
        if src is None or axes is None:
            continue
        r, k = len(src), len(axes)
        if sorted(a % (r + k) for a in axes) != list(range(r, r + k)):
            continue  # only new trailing axes
        perm = list(g.attr(tr, "perm", list(reversed(range(r))))) + list(range(r, r + k))
        mid = g.fresh(un.output[0] + "_pre")
        new_axes = list(range(r, r + k))
        if as_input:
            new_un = h.make_node("Unsqueeze", [tr.input[0], i64_const(g, un.name + "_axes", new_axes)], [mid],
                                 name=un.name + "_first")
        else:
            new_un = h.make_node("Unsqueeze", [tr.input[0]], [mid], name=un.name + "_first", axes=new_axes)
        new_tr = h.make_node("Transpose", [mid], list(un.output), name=tr.name + "_after", perm=perm)
        g.replace_node(un, [new_un, new_tr])
        g.remove_node(tr)
        g.refresh()
        changed += 1
    return changed
