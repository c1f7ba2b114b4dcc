"""Read official RGA / RRID checkpoints (never executing code) and load them strictly.

Two calls:

- :func:`read_checkpoint` turns a file into a flat ``{key: tensor}`` dict. It understands the RGA
  ``{'state_dict', 'epoch', 'best_top1', 'optimizer'}`` files, plain state dicts, and RRID's whole
  pickled modules (``torch.save(model)`` from torch 0.4, usually ``nn.DataParallel``-wrapped), in
  both torch's zip format (since 1.6) and the legacy torch 0.4 stream. Everything is unpickled by
  :mod:`edgereid.models.safe_unpickle`, whose allowlist never imports or calls user code.
- :func:`load_official_weights` puts such a dict into one of our models: ``module.`` prefixes are
  stripped, the model's ``TRAINING_ONLY_PREFIXES`` (classifier layers) are ignored, and every
  other key must match by name and shape, or a :class:`CheckpointError` says what is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgereid.errors import CheckpointError

_WRAPPER_PREFIX = "module."
_MAX_LISTED = 5
_MAX_DEPTH = 64
_MAX_MODULES = 100_000  # RRID has ~400 modules


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint file into a flat state dict, without executing any code from it.

    Args:
        path: an RGA ``checkpoint_<epoch>.pth.tar`` dict, a plain state dict, or an RRID pickled
            module (``model.pth``), in the zip or the legacy (torch 0.4) format.

    Returns:
        ``{key: torch.Tensor}`` with the keys as saved (``module.`` prefixes still present; use
        :func:`load_official_weights` to apply them). Tensors are on the CPU.

    Raises:
        CheckpointError: the file is missing, corrupt, unsafe (a global outside the allowlist),
            or holds no state dict.
    """
    from edgereid.models.safe_unpickle import load_file

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint {str(path)!r} does not exist or is not a file; pass the path of an official "
            "RGA .pth.tar / RRID .pth file or a state dict saved with torch.save."
        )
    obj = load_file(path)
    return _state_of(obj, str(path))


def _state_of(obj: Any, where: str) -> dict[str, Any]:
    """Find the state dict inside an unpickled object (dict wrapper, plain dict or module tree)."""
    import torch

    from edgereid.models.safe_unpickle import InertModule

    if isinstance(obj, InertModule):
        return module_state(obj)
    if isinstance(obj, Mapping):
        for wrapper_key in ("state_dict", "model", "model_state_dict"):
            if wrapper_key in obj and isinstance(obj[wrapper_key], (Mapping, InertModule)):
                return _state_of(obj[wrapper_key], where)
        state = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if state and len(state) == len(obj):
            return state
        if state:
            others = sorted(str(k) for k, v in obj.items() if not isinstance(v, torch.Tensor))
            raise CheckpointError(
                f"{where}: expected a state dict (every value a tensor) or a dict with a 'state_dict' "
                f"entry; found non-tensor entries {others[:_MAX_LISTED]}. Save with "
                "torch.save(model.state_dict(), path) or torch.save({'state_dict': ...}, path)."
            )
        keys = sorted(str(k) for k in obj)[:_MAX_LISTED]
        raise CheckpointError(
            f"{where}: expected a state dict or a dict with a 'state_dict' entry; found a dict with "
            f"keys {keys} and no tensors."
        )
    raise CheckpointError(
        f"{where}: expected a state dict, an RGA {{'state_dict': ...}} checkpoint or an RRID pickled "
        f"module; found a {type(obj).__name__}."
    )


def module_state(root: Any) -> dict[str, Any]:
    """Flatten an :class:`InertModule` tree into ``{dotted.name: tensor}`` like ``state_dict()``."""
    import torch

    from edgereid.models.safe_unpickle import InertModule

    out: dict[str, Any] = {}
    visits = [0]

    def entries(state: dict, group: str) -> Mapping:
        found = state.get(group)
        return found if isinstance(found, Mapping) else {}

    def walk(module: InertModule, prefix: str, depth: int) -> None:
        visits[0] += 1
        if depth > _MAX_DEPTH or visits[0] > _MAX_MODULES:
            raise CheckpointError(
                f"pickled module tree deeper than {_MAX_DEPTH} levels or larger than {_MAX_MODULES} "
                f"modules (cyclic or crafted?) at {prefix!r}."
            )
        state = module.state
        skip = state.get("_non_persistent_buffers_set")
        skip = skip if isinstance(skip, (set, frozenset)) else set()
        for group in ("_parameters", "_buffers"):
            for name, value in entries(state, group).items():
                if isinstance(value, torch.Tensor) and name not in skip:
                    out[prefix + str(name)] = value
        for name, child in entries(state, "_modules").items():
            if isinstance(child, InertModule):
                walk(child, f"{prefix}{name}.", depth + 1)

    walk(root, "", 0)
    return out


def strip_wrapper_prefix(state: Mapping[str, Any]) -> dict[str, Any]:
    """Remove the ``module.`` prefix that ``nn.DataParallel`` adds (possibly nested) from every key."""
    out = {}
    for key, value in state.items():
        while key.startswith(_WRAPPER_PREFIX):
            key = key[len(_WRAPPER_PREFIX) :]
        out[key] = value
    return out


def guess_arch(keys: Any) -> str | None:
    """Name the architecture whose official key layout these keys follow, or None if unknown.

    RRID has the ``relation_6_conv_list`` / ``local_6_conv_list`` stripe modules; RGA has
    ``rga_att<k>`` modules whose ``*_spatial`` / ``*_channel`` sub-modules tell rga_s / rga_c /
    rga_sc apart.
    """
    keys = [k[len(_WRAPPER_PREFIX) :] if k.startswith(_WRAPPER_PREFIX) else k for k in keys]
    if any(k.startswith(("relation_6_conv_list.", "local_6_conv_list.")) for k in keys):
        return "rrid"
    att = [k for k in keys if "rga_att" in k]
    if att:
        spatial = any("_spatial" in k for k in att)
        channel = any("_channel" in k for k in att)
        if spatial and channel:
            return "rga_sc"
        if spatial:
            return "rga_s"
        if channel:
            return "rga_c"
    return None


def _listed(keys: list[str]) -> str:
    more = f" (+{len(keys) - _MAX_LISTED} more)" if len(keys) > _MAX_LISTED else ""
    return ", ".join(keys[:_MAX_LISTED]) + more


def _is_training_only(key: str, prefixes: tuple[str, ...]) -> bool:
    return any(key == p.rstrip(".") or key.startswith(p if p.endswith(".") else p + ".") for p in prefixes)


def load_official_weights(model: Any, state: Mapping[str, Any], arch: str) -> None:
    """Copy an official state dict into ``model`` strictly (in place).

    ``module.`` prefixes are stripped; keys under ``type(model).TRAINING_ONLY_PREFIXES`` (the
    training classifiers) are ignored; ``num_batches_tracked`` may be absent (torch 0.4 files).
    Every other model key must be present with the same shape, and no other key may remain.

    Args:
        model: one of our models (``build_rga`` / ``build_rrid``), whose key layout is the official one.
        state: ``{key: tensor}``, e.g. from :func:`read_checkpoint`.
        arch: the architecture the caller asked for (``rga_sc``, ``rga_s``, ``rga_c``, ``rrid``),
            used to recognise a checkpoint of another architecture.

    Raises:
        CheckpointError: wrong architecture, missing keys, unexpected keys or shape mismatches.
    """
    import torch

    state = strip_wrapper_prefix(state)
    not_tensors = sorted(k for k, v in state.items() if not isinstance(v, torch.Tensor))
    if not_tensors:
        raise CheckpointError(f"expected only tensors in the state dict; not tensors: {_listed(not_tensors)}.")
    expected = model.state_dict()
    guessed = guess_arch(state)
    if guessed is not None and guessed != arch and guess_arch(expected) != guessed:
        raise CheckpointError(
            f"this looks like an {guessed} checkpoint, but the architecture asked for is {arch!r}; "
            f"load it with arch={guessed!r} (e.g. reid-export --arch {guessed})."
        )
    prefixes = tuple(getattr(type(model), "TRAINING_ONLY_PREFIXES", ()))
    # Training-only keys are dropped unless this model was built with them (e.g. num_classes > 0).
    kept = {k: v for k, v in state.items() if k in expected or not _is_training_only(k, prefixes)}
    missing = sorted(k for k in expected if k not in kept and not k.endswith("num_batches_tracked"))
    unexpected = sorted(k for k in kept if k not in expected)
    if missing and len(missing) == len([k for k in expected if not k.endswith("num_batches_tracked")]):
        raise CheckpointError(
            f"none of the {arch} keys were found (checkpoint keys look like {_listed(sorted(kept))}); "
            f"this is not an official {arch} checkpoint."
        )
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s): {_listed(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s): {_listed(unexpected)}")
    mismatched = [
        f"{k} (checkpoint {tuple(v.shape)}, model {tuple(expected[k].shape)})"
        for k, v in sorted(kept.items())
        if k in expected and tuple(v.shape) != tuple(expected[k].shape)
    ]
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatch(es): {_listed(mismatched)}")
    if problems:
        raise CheckpointError(
            f"checkpoint does not fit the official {arch} layout: "
            + "; ".join(problems)
            + ". Use a checkpoint trained with the official code at its default options."
        )
    result = model.load_state_dict(kept, strict=False)
    leftover = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if leftover or result.unexpected_keys:  # pragma: no cover - guarded by the checks above
        raise CheckpointError(f"load_state_dict disagreed: missing {leftover}, unexpected {result.unexpected_keys}")


__all__ = ["guess_arch", "load_official_weights", "module_state", "read_checkpoint", "strip_wrapper_prefix"]
