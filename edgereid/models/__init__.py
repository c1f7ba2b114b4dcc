"""Host half: RGA (rga_sc, rga_s, rga_c) and RRID in PyTorch with the official key layouts.

``load_model(arch, checkpoint=None, **options)`` is the one entry point. Importing this package
needs only numpy; torch is imported when a model is built.
"""

from __future__ import annotations

import warnings
from typing import Any

from edgereid.errors import CheckpointError, InputError
from edgereid.preprocess import PreprocessSpec

ARCHS = ("rga_sc", "rga_s", "rga_c", "rrid")

# Input contracts of the official training code (RGA: 256x128; RRID: 384x128), both RGB with
# ImageNet mean/std and bilinear resize. The single source for export, calibration, evaluation
# and the runtime (through the bundle manifest).
_PREPROCESS = {
    "rga_sc": PreprocessSpec(height=256, width=128),
    "rga_s": PreprocessSpec(height=256, width=128),
    "rga_c": PreprocessSpec(height=256, width=128),
    "rrid": PreprocessSpec(height=384, width=128),
}

# Post-processing the runtime applies after the model (written into the manifest).
_POSTPROCESS = {
    "rga_sc": {"l2_normalize": True, "flip_average": False},
    "rga_s": {"l2_normalize": True, "flip_average": False},
    "rga_c": {"l2_normalize": True, "flip_average": False},
    "rrid": {"l2_normalize": True, "flip_average": True},
}


class UntrainedWeightsWarning(UserWarning):
    """The model was built with deterministic random weights: its embeddings mean nothing."""


def check_arch(arch: str) -> str:
    if arch not in ARCHS:
        raise InputError(f"unknown architecture {arch!r}; valid names: {list(ARCHS)}.")
    return arch


def preprocess_for(arch: str) -> PreprocessSpec:
    """The PreprocessSpec of an architecture's official training code."""
    return _PREPROCESS[check_arch(arch)]


def postprocess_for(arch: str) -> dict[str, bool]:
    return dict(_POSTPROCESS[check_arch(arch)])


def build_model(arch: str, **options: Any):
    """Build ``arch`` with deterministic (seeded) weights, in eval mode, no checkpoint."""
    check_arch(arch)
    import torch

    torch.manual_seed(0)
    if arch.startswith("rga"):
        from edgereid.models.rga import build_rga

        model = build_rga(branch=arch.split("_")[1], **options)
    else:
        from edgereid.models.rrid import build_rrid

        model = build_rrid(**options)
    return model.eval()


def load_model(arch: str, checkpoint: str | None = None, **options: Any):
    """Return an eval-mode ``torch.nn.Module`` for ``arch``.

    Args:
        arch: ``rga_sc``, ``rga_s``, ``rga_c`` or ``rrid``.
        checkpoint: an official checkpoint (RGA ``{'state_dict', ...}`` .pth.tar; RRID pickled
            module, read without executing code) or a plain state dict. None builds
            deterministic untrained weights and warns.
        options: architecture options, e.g. ``folded=True`` (RGA), ``return_prebn=True`` (RGA
            ``feat_``), ``flip_average=True`` (RRID official evaluation output).

    Raises:
        CheckpointError: missing/corrupt/unsafe file, wrong architecture, missing or unexpected keys.
    """
    model = build_model(arch, **options)
    if checkpoint is None:
        warnings.warn(
            f"{arch}: no checkpoint given, built deterministic UNTRAINED weights (seed 0); "
            "embeddings from this model do not identify people.",
            UntrainedWeightsWarning,
            stacklevel=2,
        )
        return model
    from edgereid.models.checkpoint import load_official_weights, read_checkpoint

    state = read_checkpoint(checkpoint)
    try:
        load_official_weights(model, state, arch=arch)
    except CheckpointError as exc:
        raise CheckpointError(f"{checkpoint}: {exc}") from exc
    return model.eval()


__all__ = [
    "ARCHS",
    "UntrainedWeightsWarning",
    "build_model",
    "check_arch",
    "load_model",
    "postprocess_for",
    "preprocess_for",
]
