"""X3 rewrite of RGA's folded relation product (and, where it matches, the attention tail after it)
into the MatMul forms of Horizon's X3 list (HorizonRDK/rdk_x3_doc
``docs/toolchain_development/intermediate/supported_op_list.md``, row MatMul: two feature maps only
as 1xBxMxK x 1x1xKxN, a constant first only as 1xBxMxK x 1x1xKxN with B > 1).

The folded relation conv of :mod:`edgereid.models.rga_fold` exports as rank-3 MatMuls between
Reshapes and a Transpose: ``out = [a; b]^T [theta; phi]``, ``a = phi W_in^T``, ``b = theta W_out^T``.
``relation_to_bpu_matmul`` makes it: one channel Concat of theta and phi (BPU), one Reshape to
f = 1x1x2KxN plus its Transpose f^T (one CPU subgraph), the constant-first product
[W_in; W_out] (1x2xCxN) x f^T (B = 2 > 1), a Slice + Concat picking [W_in phi^T | W_out theta^T],
and the feature product with f (1x1xCx2K x 1x1x2KxN). The B = 2 product computes both halves
against both of theta and phi: 2x the MACs of that factor, on the BPU.

When theta, phi and g are 1x1 convs over the channel branch's positions-as-channels view of x
(1xNxCx1), they become MatMuls on x reshaped to 1x1xCxN: f^T comes out in place, only f needs a
Transpose, and x a Reshape instead of a Reshape and a Transpose.

When the relation is followed by RGA's tail (BatchNorm, ReLU, Concat with the mean map g, the
attention MLP of two 1x1 convs, BatchNorms folded), the tail runs on the rows as well: f also
carries a row of ones and the row g, the BatchNorm becomes a scale of the constants plus a bias
column against the ones row, and the MLP's convs become constant-first MatMuls on [g; r; 1]. Only
the 1 x N logits go back to the map (a small Reshape) instead of the C_out x N relation.
Exact up to float summation order.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from edgereid.x3.graphedit import GraphEdit
from edgereid.x3.rewrites_bpu import i64_const, onnx_helper, producer_of


# -- relation products ------------------------------------------------------------------------------
def _map_reshape(g: GraphEdit, name: str) -> Optional[tuple]:
    """(Reshape node, its 4-D source, K, N) when ``name`` = Reshape(1xKxHxW map -> 1xKxN)."""
    node = producer_of(g, name, "Reshape")
    if node is None:
        return None
    src, dst = g.shape(node.input[0]), g.shape(node.output[0])
    if src is None or dst is None or len(src) != 4 or len(dst) != 3 or src[0] != 1 or dst[0] != 1:
        return None
    if dst[1] != src[1] or dst[2] != src[2] * src[3]:
        return None
    return node, node.input[0], src[1], dst[2]


def _const_matmul(g: GraphEdit, name: str) -> Optional[tuple]:
    """(left input, constant (N, C)) when ``name`` = MatMul(feature, constant 2-D)."""
    node = producer_of(g, name, "MatMul")
    if node is None or g.const(node.input[1]) is None or g.const(node.input[1]).ndim != 2:
        return None
    return node.input[0], g.const(node.input[1]).astype(np.float32)


def _match_relation(g: GraphEdit, mm) -> Optional[dict]:
    """The folded relation pattern ending in MatMul ``mm``, or None."""
    tr = producer_of(g, mm.input[0], "Transpose")
    cat_f = producer_of(g, mm.input[1], "Concat")
    if tr is None or cat_f is None or list(g.attr(tr, "perm", [])) != [0, 2, 1]:
        return None
    cat_g = producer_of(g, tr.input[0], "Concat")
    if cat_g is None or len(cat_g.input) != 2 or len(cat_f.input) != 2:
        return None
    if g.attr(cat_g, "axis") % 3 != 1 or g.attr(cat_f, "axis") % 3 != 1:
        return None
    theta_r, phi_r = cat_f.input
    a, b = (_const_matmul(g, x) for x in cat_g.input)
    if a is None or b is None or a[0] != phi_r or b[0] != theta_r:
        return None
    t, p = _map_reshape(g, theta_r), _map_reshape(g, phi_r)
    if t is None or p is None or g.shape(t[1]) != g.shape(p[1]):
        return None
    k, n = t[2], t[3]
    w_in, w_out = a[1].T, b[1].T  # (C_out, N) each
    if w_in.shape != w_out.shape or w_in.shape[1] != n:
        return None
    return {"theta4": t[1], "phi4": p[1], "k": k, "n": n, "w_in": w_in, "w_out": w_out}


def _consumer(g: GraphEdit, name: str, op: str):
    node = g.only_consumer(name)
    return node if node is not None and node.op_type == op else None


def _conv1x1(g: GraphEdit, node) -> Optional[tuple]:
    """(weight (C_out, C_in), bias (C_out,)) of a plain constant 1x1 conv, else None."""
    w = g.const(node.input[1]) if node is not None and len(node.input) > 1 else None
    if w is None or w.ndim != 4 or list(w.shape[2:]) != [1, 1] or int(g.attr(node, "group", 1)) != 1:
        return None
    if any(int(p) for p in g.attr(node, "pads", [0, 0, 0, 0])):
        return None
    if any(int(s) != 1 for s in g.attr(node, "strides", [1, 1])):
        return None
    b = g.const(node.input[2]) if len(node.input) > 2 and node.input[2] else np.zeros(w.shape[0], np.float32)
    if b is None:
        return None
    return w[:, :, 0, 0].astype(np.float64), b.astype(np.float64)


def _match_tail(g: GraphEdit, mm, c_out: int) -> Optional[dict]:
    """RGA's tail after the relation: Reshape to the map, BatchNorm, ReLU, Concat([g, .]), 1x1 conv,
    ReLU, 1x1 conv to one channel (BatchNorms of the MLP already folded); None if it differs."""
    rs = _consumer(g, mm.output[0], "Reshape")
    shape = g.shape(rs.output[0]) if rs is not None else None
    if shape is None or len(shape) != 4 or shape[:2] != [1, c_out]:
        return None
    bn = _consumer(g, rs.output[0], "BatchNormalization")
    params = [g.const(x) for x in bn.input[1:5]] if bn is not None else [None]
    relu = _consumer(g, bn.output[0], "Relu") if bn is not None else None
    cat = _consumer(g, relu.output[0], "Concat") if relu is not None else None
    if any(p is None for p in params) or cat is None or list(cat.input)[1:] != [relu.output[0]]:
        return None
    if len(cat.input) != 2 or g.attr(cat, "axis") % 4 != 1 or g.shape(cat.input[0]) != [1, 1, *shape[2:]]:
        return None
    c1 = _consumer(g, cat.output[0], "Conv")
    relu2 = _consumer(g, c1.output[0], "Relu") if c1 is not None else None
    c2 = _consumer(g, relu2.output[0], "Conv") if relu2 is not None else None
    w1, w2 = _conv1x1(g, c1), _conv1x1(g, c2)
    if w1 is None or w2 is None or w1[0].shape[1] != 1 + c_out or w2[0].shape != (1, w1[0].shape[0]):
        return None
    gamma, beta, mean, var = (p.astype(np.float64) for p in params)
    scale = gamma / np.sqrt(var + float(g.attr(bn, "epsilon", 1e-5)))
    return {"g": cat.input[0], "scale": scale, "shift": beta - mean * scale, "w1": w1, "w2": w2,
            "logits": c2, "logit_shape": g.shape(c2.output[0])}


def _positions_view(g: GraphEdit, name: str) -> Optional[str]:
    """The map x (1xCxHxW) when ``name`` is RGA's positions-as-channels view of it (1xNxCx1):
    Unsqueeze(Transpose(Reshape(x -> 1xCxN), [0, 2, 1]), -1), else None."""
    un = producer_of(g, name, "Unsqueeze")
    tr = producer_of(g, un.input[0], "Transpose") if un is not None else None
    rs = producer_of(g, tr.input[0], "Reshape") if tr is not None else None
    if rs is None or list(g.attr(tr, "perm", [])) != [0, 2, 1]:
        return None
    x, view = g.shape(rs.input[0]), g.shape(name)
    if x is None or view is None or len(x) != 4 or x[0] != 1 or view != [1, x[2] * x[3], x[1], 1]:
        return None
    return rs.input[0]


def _relu_conv(g: GraphEdit, name: str):
    """(conv input, weight (C_out, C_in), bias) when ``name`` = Relu(plain 1x1 Conv(.)), else None."""
    relu = producer_of(g, name, "Relu")
    conv = producer_of(g, relu.input[0], "Conv") if relu is not None else None
    wb = _conv1x1(g, conv)
    return None if wb is None else (conv.input[0], *wb)


def _positions_head(g: GraphEdit, m: dict, tail: dict, base: str, f: str, ft: str) -> Optional[list]:
    """For RGA's channel branch (theta, phi, g from 1x1 convs over the positions-as-channels view of x):
    the same products as MatMuls on x reshaped to 1x1xCxN, so f^T comes out in place and only f needs
    a Transpose; x needs a Reshape instead of a Reshape and a Transpose. None when it does not apply."""
    h = onnx_helper()
    theta, phi = _relu_conv(g, m["theta4"]), _relu_conv(g, m["phi4"])
    mean = producer_of(g, tail["g"], "Conv")
    mean_w = _conv1x1(g, mean)
    gx = _relu_conv(g, mean.input[0]) if mean is not None else None
    if theta is None or phi is None or gx is None or mean_w is None or mean_w[0].shape[0] != 1 or mean_w[1].any():
        return None
    view = theta[0]
    x = _positions_view(g, view)
    if x is None or phi[0] != view or gx[0] != view:
        return None
    _, c, hh, ww = g.shape(x)
    n = hh * ww
    w_all = np.concatenate([theta[1], phi[1], gx[1]]).T.astype(np.float32)  # (N, 2K + K_g)
    b_all = np.concatenate([theta[2], phi[2], gx[2]])[None].astype(np.float32)  # (1, 2K + K_g)
    k, kg = theta[1].shape[0], gx[1].shape[0]
    t = {x_: g.fresh(f"{base}_{x_}") for x_ in ("xr", "x0", "ones", "y", "yb", "ys", "yr", "tp", "gx", "gt")}

    def sl(src, out, starts, ends, axes):
        return h.make_node("Slice", [src, i64_const(g, out + "_s", starts), i64_const(g, out + "_e", ends),
                                     i64_const(g, out + "_a", axes)], [out], name=out)

    return [
        h.make_node("Reshape", [x, i64_const(g, base + "_xr", [1, 1, c, n])], [t["xr"]], name=base + "_xrows"),
        sl(t["xr"], t["x0"], [0], [1], [3]),
        h.make_node("Conv", [t["x0"], g.add_const(base + "_z1", np.zeros((1, 1, 1, 1), np.float32)),
                             g.add_const(base + "_b1", np.ones(1, np.float32))], [t["ones"]],
                    name=base + "_ones_col", kernel_shape=[1, 1]),
        h.make_node("MatMul", [t["xr"], g.add_const(base + "_wall", w_all)], [t["y"]], name=base + "_convs"),
        h.make_node("MatMul", [t["ones"], g.add_const(base + "_ball", b_all)], [t["yb"]], name=base + "_bias"),
        h.make_node("Add", [t["y"], t["yb"]], [t["ys"]], name=base + "_biased"),
        h.make_node("Relu", [t["ys"]], [t["yr"]], name=base + "_convs_relu"),
        sl(t["yr"], t["tp"], [0], [2 * k], [3]),
        sl(t["yr"], t["gx"], [2 * k], [2 * k + kg], [3]),
        h.make_node("MatMul", [t["gx"], g.add_const(base + "_mean", mean_w[0].T.astype(np.float32))], [t["gt"]],
                    name=base + "_gmean"),
        h.make_node("Concat", [t["tp"], t["ones"], t["gt"]], [ft], name=base + "_ft_cat", axis=3),
        h.make_node("Transpose", [ft], [f], name=base + "_f_t", perm=[0, 1, 3, 2]),
    ]


def _rows_nodes(g: GraphEdit, m: dict, tail: dict, base: str) -> list:
    """The relation and its tail on the rows of f = [theta; phi; 1; g] (see the module docstring)."""
    h = onnx_helper()
    k, n = m["k"], m["n"]
    t = {x: g.fresh(f"{base}_{x}") for x in (
        "ones", "cat", "f", "ft", "g3", "gin", "gout", "gb", "gt", "f3", "out", "r", "one", "grow", "rows",
        "hid2", "hid0", "hid", "rows2", "lg2", "lg")}

    def sl(x, out, starts, ends, axes):
        return h.make_node("Slice", [x, i64_const(g, out + "_s", starts), i64_const(g, out + "_e", ends),
                                     i64_const(g, out + "_a", axes)], [out], name=out)

    sc, sh = tail["scale"][:, None], tail["shift"]
    wb = np.zeros_like(m["w_in"], dtype=np.float64)
    wb[:, 0] = sh  # against the ones column of f^T: the BatchNorm's shift
    w3 = np.stack([sc * m["w_in"], sc * m["w_out"], wb])[None].astype(np.float32)  # (1, 3, C_out, N)
    (u, u0), (v, v0) = tail["w1"], tail["w2"]
    u2 = np.concatenate([u, u0[:, None]], 1)  # (hidden, 1 + C_out + 1): [g | r | 1]
    v2 = np.concatenate([v, v0[:, None]], 1)  # (1, hidden + 1): [hidden | 1]
    u2 = np.stack([u2, u2])[None].astype(np.float32)  # B = 2: the constant-first form needs B > 1
    v2 = np.stack([v2, v2])[None].astype(np.float32)
    head = _positions_head(g, m, tail, base, t["f"], t["ft"])
    if head is None:
        ones_w = np.zeros((1, k, 1, 1), np.float32)
        head = [
            h.make_node("Conv", [m["theta4"], g.add_const(base + "_zw", ones_w),
                                 g.add_const(base + "_one", np.ones(1, np.float32))], [t["ones"]],
                        name=base + "_ones", kernel_shape=[1, 1]),
            h.make_node("Concat", [m["theta4"], m["phi4"], t["ones"], tail["g"]], [t["cat"]], name=base + "_cat",
                        axis=1),
            h.make_node("Reshape", [t["cat"], i64_const(g, base + "_fshape", [1, 1, 2 * k + 2, n])], [t["f"]],
                        name=base + "_f"),
            h.make_node("Transpose", [t["f"]], [t["ft"]], name=base + "_ft", perm=[0, 1, 3, 2]),
        ]
    return head + [
        h.make_node("MatMul", [g.add_const(base + "_w3", w3), t["ft"]], [t["g3"]], name=base + "_wf"),
        sl(t["g3"], t["gin"], [0, k], [1, 2 * k], [1, 3]),
        sl(t["g3"], t["gout"], [1, 0], [2, k], [1, 3]),
        sl(t["g3"], t["gb"], [2, 2 * k], [3, 2 * k + 1], [1, 3]),
        h.make_node("Concat", [t["gin"], t["gout"], t["gb"]], [t["gt"]], name=base + "_gt", axis=3),
        sl(t["f"], t["f3"], [0], [2 * k + 1], [2]),
        h.make_node("MatMul", [t["gt"], t["f3"]], [t["out"]], name=base + "_gf"),
        h.make_node("Relu", [t["out"]], [t["r"]], name=base + "_relu"),
        sl(t["f"], t["one"], [2 * k], [2 * k + 1], [2]),
        sl(t["f"], t["grow"], [2 * k + 1], [2 * k + 2], [2]),
        h.make_node("Concat", [t["grow"], t["r"], t["one"]], [t["rows"]], name=base + "_rows", axis=2),
        h.make_node("MatMul", [g.add_const(base + "_u2", u2), t["rows"]], [t["hid2"]], name=base + "_mlp1"),
        sl(t["hid2"], t["hid0"], [0], [1], [1]),
        h.make_node("Relu", [t["hid0"]], [t["hid"]], name=base + "_mlp1_relu"),
        h.make_node("Concat", [t["hid"], t["one"]], [t["rows2"]], name=base + "_rows2", axis=2),
        h.make_node("MatMul", [g.add_const(base + "_v2", v2), t["rows2"]], [t["lg2"]], name=base + "_mlp2"),
        sl(t["lg2"], t["lg"], [0], [1], [1]),
        h.make_node("Reshape", [t["lg"], i64_const(g, base + "_lshape", tail["logit_shape"])],
                    list(tail["logits"].output), name=base + "_logits"),
    ]


def relation_to_bpu_matmul(g: GraphEdit) -> int:
    h = onnx_helper()
    changed = 0
    for mm in list(g.graph.node):
        if mm.op_type != "MatMul" or mm not in g.graph.node:
            continue
        m = _match_relation(g, mm)
        if m is None:
            continue
        k, n, c_out = m["k"], m["n"], m["w_in"].shape[0]
        tail = _match_tail(g, mm, c_out)
        if tail is not None and tail["logit_shape"] is not None:
            g.replace_node(tail["logits"], _rows_nodes(g, m, tail, mm.name or "relation"))
            g.finish()
            changed += 1
            continue
        base = mm.name or "relation"
        t = {x: g.fresh(f"{base}_{x}") for x in ("cat", "f", "ft", "g2", "gin", "gout", "gt", "out")}
        w = np.stack([m["w_in"], m["w_out"]])[None]  # (1, 2, C_out, N)
        new = [
            h.make_node("Concat", [m["theta4"], m["phi4"]], [t["cat"]], name=base + "_cat", axis=1),
            h.make_node("Reshape", [t["cat"], i64_const(g, base + "_fshape", [1, 1, 2 * k, n])], [t["f"]],
                        name=base + "_f"),
            h.make_node("Transpose", [t["f"]], [t["ft"]], name=base + "_ft", perm=[0, 1, 3, 2]),
            h.make_node("MatMul", [g.add_const(base + "_w", w.astype(np.float32)), t["ft"]], [t["g2"]],
                        name=base + "_wf"),
            # [W_in phi^T | W_out theta^T]: channel 0 columns K..2K, channel 1 columns 0..K
            h.make_node("Slice", [t["g2"], i64_const(g, base + "_s0", [0, k]), i64_const(g, base + "_e0", [1, 2 * k]),
                                  i64_const(g, base + "_a0", [1, 3])], [t["gin"]], name=base + "_gin"),
            h.make_node("Slice", [t["g2"], i64_const(g, base + "_s1", [1, 0]), i64_const(g, base + "_e1", [2, k]),
                                  i64_const(g, base + "_a1", [1, 3])], [t["gout"]], name=base + "_gout"),
            h.make_node("Concat", [t["gin"], t["gout"]], [t["gt"]], name=base + "_gt", axis=3),
            h.make_node("MatMul", [t["gt"], t["f"]], [t["out"]], name=base + "_gf"),
            h.make_node("Reshape", [t["out"], i64_const(g, base + "_oshape", [1, c_out, n])], list(mm.output),
                        name=base + "_o3"),
        ]
        g.replace_node(mm, new)
        g.finish()
        changed += 1
    return changed


