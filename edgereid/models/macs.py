"""Multiply-accumulate counts of a model's forward pass (convs, linears and matmuls).

Uses ``torch.utils.flop_counter.FlopCounterMode``, which counts the aten conv / mm / bmm /
addmm / baddbmm ops actually dispatched, so the folded RGA's matmuls are counted as well as
the convs. MACs = FLOPs / 2. Element-wise ops (BN, ReLU, sigmoid, pooling) are not counted, as
in the usual "GMAC" figures of papers.

Tip: a model built under ``with torch.device("meta"):`` is counted without computing anything.
"""

from __future__ import annotations

from typing import Sequence

DEFAULT_INPUT_SHAPE = (1, 3, 256, 128)


def _flop_counter(model, input_shape: Sequence[int]):
    """Run ``model`` once on zeros of ``input_shape`` under a FlopCounterMode; return the mode."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.float32
    x = torch.zeros(tuple(input_shape), device=device, dtype=dtype)
    counter = FlopCounterMode(display=False, depth=None)
    with torch.no_grad(), counter:
        model(x)
    return counter


def count_macs(model, input_shape: Sequence[int] = DEFAULT_INPUT_SHAPE) -> int:
    """Multiply-accumulates of one forward pass on an input of ``input_shape`` (whole batch).

    Args:
        model: a ``torch.nn.Module`` taking one (N, C, H, W) tensor.
        input_shape: the input tensor shape; the default is one 256x128 RGB crop.

    Returns:
        MACs (int). Divide by the batch size for per-crop figures.
    """
    return int(_flop_counter(model, input_shape).get_total_flops()) // 2


def macs_by_module(model, input_shape: Sequence[int] = DEFAULT_INPUT_SHAPE, depth: int | None = None) -> dict[str, int]:
    """MACs per sub-module (dotted names relative to ``model``; ``""`` is the whole model).

    Args:
        model: as in :func:`count_macs`.
        input_shape: as in :func:`count_macs`.
        depth: keep only names with at most this many dots-separated parts (None: all).

    Returns:
        ``{module_name: macs}`` for every module that ran a counted op, parents included
        (a parent's figure is the sum of its children's plus its own ops).
    """
    counts = _flop_counter(model, input_shape).get_flop_counts()
    root = type(model).__name__
    out: dict[str, int] = {}
    for name, per_op in counts.items():
        if name == "Global":
            key = ""
        elif name == root or name.startswith(root + "."):
            key = name[len(root) + 1 :]
        else:
            continue
        if depth is not None and key and key.count(".") + 1 > depth:
            continue
        out[key] = int(sum(per_op.values())) // 2
    return out


__all__ = ["DEFAULT_INPUT_SHAPE", "count_macs", "macs_by_module"]
