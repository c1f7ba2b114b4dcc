"""The relation conv of an RGA module, official formulation and folded.

In every RGA module a 1x1 conv ``W`` (``gg_spatial.0`` / ``gg_channel.0``, shape (C_out, 2N))
reads the stacked relation maps ``[G^T; G]`` where ``G = theta^T phi`` is an N x N matrix
(N = H*W positions for the spatial branch, N = C channels for the channel branch) built from
two K-dimensional embeddings ``theta, phi`` of shape (K, N), K = N_features / 8.

Because the conv is linear in G and G has rank <= K::

    W · [G^T; G] = W_in · (phi^T theta) + W_out · (theta^T phi)
                 = (W_in · phi^T) · theta + (W_out · theta^T) · phi

with ``W = [W_in | W_out]`` split along its 2N input channels. The right-hand side never forms
the N x N matrix: it costs 4·C_out·K·N multiply-adds instead of N²·K (the matmul) + 2·N²·C_out
(the conv). In RGA-SC's first module (spatial N = 2048, K = 32, C_out = 256) and fourth module
(channel N = 2048, K = 16, C_out = 256) that is 2.28 / 2.21 GMAC -> 0.07 / 0.03 GMAC.

Only the linear conv is folded; the BatchNorm and ReLU that follow it in ``gg_*`` are applied
unchanged by the caller, so the fold is exact up to float rounding.
"""

from __future__ import annotations


def relation_maps(theta, phi):
    """Official relation input ``[G^T; G]`` with ``G = theta^T phi``.

    Args:
        theta, phi: (B, K, N) embeddings (K features per position, N positions).

    Returns:
        (B, 2N, N): channel i of the first half at position p is G[p, i] (``G_in``), channel i
        of the second half at position p is G[i, p] (``G_out``), as ``torch.cat((G_in, G_out), 1)``
        in the official code.
    """
    import torch

    g = torch.matmul(theta.transpose(1, 2), phi)  # (B, N, N): g[i, j] = <theta[:, i], phi[:, j]>
    return torch.cat((g.transpose(1, 2), g), 1)


def relation_conv_reference(theta, phi, weight):
    """1x1 conv of ``weight`` over :func:`relation_maps` (the official formulation), (B, C_out, N)."""
    import torch

    return torch.matmul(weight.reshape(weight.shape[0], -1), relation_maps(theta, phi))


def relation_conv_folded(theta, phi, weight, n: int | None = None):
    """Same result as :func:`relation_conv_reference` without forming the N x N relation matrix.

    Args:
        theta, phi: (B, K, N).
        weight: the relation conv weight, (C_out, 2N, 1, 1) or (C_out, 2N).
        n: N as a Python int. Pass it when exporting: sizes read from tensors become shape
            arithmetic in a traced ONNX graph.

    Returns:
        (B, C_out, N), in the dtype of the inputs.
    """
    import torch

    n = int(theta.shape[2]) if n is None else n
    w = weight.reshape(-1, 2 * n)
    # (B, K, N) @ (N, C_out) folds the batch into one GEMM and keeps the weight un-broadcast.
    a = torch.matmul(phi, w[:, :n].t())  # (B, K, C_out) = (W_in phi^T)^T
    b = torch.matmul(theta, w[:, n:].t())  # (B, K, C_out) = (W_out theta^T)^T
    # One matmul with inner size 2K instead of two with K: fewer kernel calls, same MACs.
    return torch.matmul(torch.cat((a, b), 1).transpose(1, 2), torch.cat((theta, phi), 1))


def relation_conv_macs(n: int, k: int, c_out: int, folded: bool) -> int:
    """Multiply-adds of one relation conv (plus the G matmul when unfolded), per sample."""
    if folded:
        return 4 * c_out * k * n
    return n * n * k + 2 * n * n * c_out


__all__ = ["relation_conv_folded", "relation_conv_macs", "relation_conv_reference", "relation_maps"]
