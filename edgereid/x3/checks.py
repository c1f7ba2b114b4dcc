"""The named BPU limit checks of :mod:`edgereid.x3.ops`: ``(node view, limit) -> None or reason``.

Each check encodes one constraint of Horizon's X3 operator list (HorizonRDK/rdk_x3_doc
``docs/toolchain_development/intermediate/supported_op_list.md``; the row is cited in the rule that
names the check). A check returns None when the node passes, else a short reason for the report.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

Shape = Optional[List[int]]


def _in0(v) -> Shape:
    return v.in_shapes[0] if v.in_shapes else None


def _as_1chw(s: Sequence[int]) -> List[int]:
    """A shape of rank <= 4 read as 1xCxHxW (leading ones), as the document's elementwise limits do."""
    return [1] * (4 - len(s)) + list(s) if len(s) <= 4 else list(s)


def _ceil(x: int, m: int) -> int:
    return -(-x // m) * m


def check_rank(v, rank: object) -> Optional[str]:
    s = _in0(v)
    return None if s is not None and len(s) == rank else f"input rank {None if s is None else len(s)} != {rank}"


def check_kernel(v, kmax: object) -> Optional[str]:
    k = v.attrs.get("kernel_shape")
    if k is None and 1 in v.const_inputs:
        k = list(v.const_inputs[1].shape[2:])
    if k is None:
        return None
    return None if max(k) <= kmax else f"kernel {list(k)} > {kmax}x{kmax}"


def check_channels(v, cmax: object) -> Optional[str]:
    chans = [s[1] for s in v.in_shapes + v.out_shapes if s is not None and len(s) >= 2]
    big = [c for c in chans if c > cmax]
    return f"channels {max(big)} > {cmax}" if big else None


def check_conv_channels(v, limits: object) -> Optional[str]:
    """Conv: channels per group <= 2048, or <= 4096 for a plain (group 1, undilated) conv."""
    grouped, plain = limits
    group = int(v.attrs.get("group", 1))
    is_plain = group == 1 and all(int(d) == 1 for d in v.attrs.get("dilations", [1, 1]))
    cmax = plain if is_plain else grouped
    chans = [s[1] // group for s in (_in0(v), v.out_shapes[0] if v.out_shapes else None) if s is not None]
    big = [c for c in chans if c > cmax]
    kind = "plain conv" if is_plain else "grouped/dilated conv"
    return f"channels per group {max(big)} > {cmax} ({kind})" if big else None


def check_kernel_volume(v, vmax: object) -> Optional[str]:
    """Conv: one kernel's H x W x C (C = input channels per group) <= 32768."""
    w = v.in_shapes[1] if len(v.in_shapes) > 1 else None
    if not w or len(w) != 4:
        return None
    vol = int(w[1]) * int(w[2]) * int(w[3])
    return None if vol <= vmax else f"kernel HxWxC {w[2]}x{w[3]}x{w[1]} = {vol} > {vmax}"


def check_hw(v, hw_max: object) -> Optional[str]:
    s = _in0(v)
    if s is None or len(s) != 4:
        return None
    return None if s[2] * s[3] <= hw_max else f"H*W {s[2] * s[3]} > {hw_max}"


def check_h_and_w(v, hmax: object) -> Optional[str]:
    s = _in0(v)
    if s is None or len(s) != 4:
        return None
    return None if max(s[2], s[3]) <= hmax else f"H, W {s[2]}, {s[3]}: one > {hmax}"


def _one_chw(v):
    """((C, H, W), None) of the first input as 1xCxHxW, or (None, why not)."""
    s = _in0(v)
    if s is None:
        return None, "unknown input shape"
    n, c, h, w = _as_1chw(s)
    if n != 1:
        return None, f"input {list(s)} is not 1xCxHxW"
    return (c, h, w), None


def check_chw(v, chw_max: object) -> Optional[str]:
    dims, why = _one_chw(v)
    if dims is None:
        return why
    c, h, w = dims
    return None if c * h * w <= chw_max else f"C*H*W {c * h * w} > {chw_max}"


def check_sigmoid_aligned(v, limit: object) -> Optional[str]:
    """min(C->4k, W->8k padded size, C->32k padded size) <= limit (the 8W4C / 32C layouts)."""
    dims, why = _one_chw(v)
    if dims is None:
        return why
    c, h, w = dims
    size = min(_ceil(c, 4) * h * _ceil(w, 8), _ceil(c, 32) * h * w)
    return None if size <= limit else f"aligned size min(8W4C, 32C) {size} > {limit}"


def check_reduce_axes(v, axes: object) -> Optional[str]:
    got = v.attrs.get("axes")
    if got is None and 1 in v.const_inputs:
        got = v.const_inputs[1].tolist()
    rank = len(_in0(v) or [0] * 4)
    got = sorted(int(a) % rank for a in (got or []))
    return None if tuple(got) == tuple(axes) else f"reduces axes {got}, BPU takes only {list(axes)}"


def _elementwise_shapes(v) -> Optional[str]:
    if len(v.in_shapes) != 2 or any(s is None for s in v.in_shapes):
        return "unknown input shape"
    a, b = v.in_shapes
    if len(a) != 4 or len(b) != 4:
        return f"operands {a} x {b} are not both 4-D"
    return None


def _big_small(v):
    a, b = (list(s) for s in v.in_shapes)
    return (a, b) if int(np.prod(a)) >= int(np.prod(b)) else (b, a)


def check_mul_forms(v, _: object) -> Optional[str]:
    """Mul: 1xCxHxW x 1xCxHxW, x 1xCx1x1, x 1x1x1x1 (both 4-D)."""
    bad = _elementwise_shapes(v)
    if bad:
        return bad
    big, small = _big_small(v)
    if big[0] != 1 or small[0] != 1:
        return f"batch {big[0]} != 1"
    if small == big or small == [1, big[1], 1, 1] or small == [1, 1, 1, 1]:
        return None
    return f"{small} against {big} is not 1xCxHxW, 1xCx1x1 or 1x1x1x1"


def check_div_forms(v, limit: object) -> Optional[str]:
    """Div: both inputs feature maps (no constant), shapes as Mul."""
    if v.const_inputs:
        return "an input is a constant (Div takes two feature maps)"
    return check_mul_forms(v, limit)


def check_add_forms(v, _: object) -> Optional[str]:
    """Add: NCHW + NCHW, or NCHW + NC11 when both inputs are produced by other ops."""
    bad = _elementwise_shapes(v)
    if bad:
        return bad
    big, small = _big_small(v)
    if small == big:
        return None
    if small == [big[0], big[1], 1, 1]:
        return None if not v.const_inputs else "NC11 broadcast with a constant (both inputs must come from ops)"
    return f"{small} against {big} is neither NCHW + NCHW nor NCHW + NC11"


def check_gemm(v, _: object) -> Optional[str]:
    if 1 not in v.const_inputs:
        return "Gemm with a non-constant B"
    return None if v.attrs.get("transA", 0) == 0 else "Gemm with transA=1"


def check_gemm_channels(v, limits: object) -> Optional[str]:
    """Gemm as conv: input C <= 16384 when H = W = 1 (a 2-D N x C input is that), else <= 2048."""
    small, large = limits
    s = _in0(v)
    if s is None:
        return None
    c = s[-1] if len(s) == 2 else s[1]
    hw1 = len(s) == 2 or (len(s) == 4 and s[2] == s[3] == 1)
    cmax = large if hw1 else small
    return None if c <= cmax else f"input C {c} > {cmax}"


def check_split_axis(v, axes: object) -> Optional[str]:
    rank = len(_in0(v) or [0] * 4)
    axis = int(v.attrs.get("axis", 0)) % rank
    return None if axis in axes else f"split axis {axis} not in {list(axes)}"


def check_scalar_input(v, index: object) -> Optional[str]:
    s = v.in_shapes[index] if len(v.in_shapes) > index else None
    return None if s is not None and int(np.prod(s)) == 1 else f"input {index} {s} is not a single value"


def check_argmax(v, cmax: object) -> Optional[str]:
    s = _in0(v)
    axis = int(v.attrs.get("axis", 0))
    if axis % 4 != 1:
        return f"axis {axis} != 1"
    return None if s is not None and s[1] <= cmax else f"C {None if s is None else s[1]} > {cmax}"


def check_blocksize(v, size: object) -> Optional[str]:
    got = int(v.attrs.get("blocksize", 0))
    return None if got == size else f"blocksize {got} != {size}"


def check_after_conv(v, _: object) -> Optional[str]:
    prod = v.in_producers[0] if v.in_producers else None
    return None if prod == "Conv" else f"follows {prod or 'a graph input'}, not a Conv it could fuse into"


def _dims_class(s: Sequence[int], kind: str) -> str:
    """MatMul operand shape in the document's notation, e.g. 1x1xKxN, BxMxK (a: M-side, b: N-side)."""
    if kind == "b":
        return {1: "K", 2: "KxN", 3: "1xKxN" if s[0] == 1 else "BxKxN", 4: "1x1xKxN" if s[:2] == [1, 1] else "?"}.get(
            len(s), "?"
        )
    if len(s) == 1:
        return "K"
    if len(s) == 2:
        return "MxK"
    if len(s) == 3:
        return "1xMxK" if s[0] == 1 else "BxMxK"
    if len(s) == 4:
        if s[0] == 1:
            return "1x1xMxK" if s[1] == 1 else "1xBxMxK"
        return "AxBxMxK" if s[1] > 1 else "Ax1xMxK"
    return "?"


def check_matmul(v, forms: object) -> Optional[str]:
    """MatMul in one of the document's listed forms (``forms`` from edgereid.x3.ops)."""
    a, b = (v.in_shapes + [None, None])[:2]
    if a is None or b is None:
        return "unknown operand shape"
    a_const, b_const = 0 in v.const_inputs, 1 in v.const_inputs
    kind = "weight" if b_const and not a_const else "weight_first" if a_const and not b_const else "features"
    pair = (_dims_class(list(a), "a"), _dims_class(list(b), "b"))
    if pair in forms.get(kind, ()):
        return None
    return f"MatMul {list(a)} x {list(b)} ({kind}: {pair[0]} x {pair[1]}) is not a listed form"


CHECKS: Dict[str, Callable[[object, object], Optional[str]]] = {
    "rank": check_rank,
    "kernel_max": check_kernel,
    "channels_max": check_channels,
    "conv_channels": check_conv_channels,
    "kernel_volume_max": check_kernel_volume,
    "hw_max": check_hw,
    "h_and_w_max": check_h_and_w,
    "chw_max": check_chw,
    "sigmoid_aligned": check_sigmoid_aligned,
    "reduce_axes": check_reduce_axes,
    "mul_forms": check_mul_forms,
    "div_forms": check_div_forms,
    "add_forms": check_add_forms,
    "gemm_as_conv": check_gemm,
    "gemm_channels": check_gemm_channels,
    "split_axis": check_split_axis,
    "scalar_input": check_scalar_input,
    "argmax_c": check_argmax,
    "blocksize": check_blocksize,
    "after_conv": check_after_conv,
    "matmul_form": check_matmul,
}
