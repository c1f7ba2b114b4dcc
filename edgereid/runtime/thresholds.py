"""Lock thresholds from the bundle's measured similarity scale, by one documented rule.

The manifest's ``similarity`` block (``edgereid.evaluation.similarity``) holds the genuine and
impostor cosine quantiles of the bundle's own embedder on identities held out of calibration.
From it (quantiles: impostor p50 = the typical stranger, p99, p99.9 = the similarity at a
false-accept rate of 1e-3), with the spread ``u = impostor p99 - impostor p50``:

=====================  ===========================  ====================================================
threshold              rule                         meaning
=====================  ===========================  ====================================================
accept_threshold       impostor p99.9               re-acquire only above what 1 stranger in 1000 reaches
anchor_threshold       impostor p99                 ... and matching the enrollment anchors at this level
update_threshold       impostor p99                 a view is learnt only when it matches the anchors so
reject_threshold       impostor p50                 while LOCKED, below the typical stranger = not her
accept_margin          0.4 u                        ahead of the runner-up candidate by this much
accept_drop            0.8 u                        re-acquire no lower than her typical level minus this
reject_drop            1.0 u                        a fall this far below her typical level is a swap
sustained_drop         0.5 u                        ... as is a smaller fall held for sustained_frames
stranger_margin        0.2 u                        nearer the anchors than every known stranger by this
jump_threshold         impostor p50 + 0.5 u         consecutive crops of one track less alike = a swap
=====================  ===========================  ====================================================

For OSNet x0.25 (PKU-Reid scale: impostor p50 0.44, p99 0.68, p99.9 0.76) this gives accept 0.76,
reject 0.44, margins 0.05-0.24. Every rule is a quantile or a multiple of a quantile spread, so a
model whose cosines are an increasing affine map of another's gets the same map of the thresholds
and makes the same decisions (tested with a wrapper that pulls every cosine toward 1). A number
set in the INI wins over the derived one. A bundle without the block gets ``FALLBACK_SCALE``, a
deliberately strict scale (strangers assumed up to 0.9), and a warning: measure the scale with
``reid-eval --bundle B --data CROPS --similarity``.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, Dict, Mapping, Optional, Tuple

from edgereid.errors import BundleError
from edgereid.runtime.config import FollowConfig, GalleryConfig, LockConfig

log = logging.getLogger("edgereid.follow")

# Strict stand-in when a bundle carries no measured scale: refuses more, follows the right person.
FALLBACK_SCALE = {"impostor": {"p50": 0.5, "p99": 0.8, "p999": 0.9}}

# threshold -> (section, (quantile weight of p50, of p99, of p999) or a multiple of u)
_LEVELS = {
    "accept_threshold": ("lock", "p999", 0.0),
    "anchor_threshold": ("lock", "p99", 0.0),
    "update_threshold": ("gallery", "p99", 0.0),
    "reject_threshold": ("lock", "p50", 0.0),
    "jump_threshold": ("lock", "p50", 0.5),
}
_SPREADS = {
    "accept_margin": 0.4,
    "accept_drop": 0.8,
    "reject_drop": 1.0,
    "sustained_drop": 0.5,
    "stranger_margin": 0.2,
}


def scale_of(similarity: Optional[Mapping[str, Any]]) -> Tuple[float, float, float]:
    """(impostor p50, p99, p99.9) of a manifest ``similarity`` block; raises BundleError when malformed."""
    try:
        imp = similarity["impostor"]  # type: ignore[index]
        p50, p99, p999 = float(imp["p50"]), float(imp["p99"]), float(imp["p999"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"the manifest's 'similarity' block lacks impostor p50/p99/p999 ({exc}); "
                          "re-measure it with reid-eval --similarity.") from None
    if not (-1.0 <= p50 < p99 <= p999 <= 1.0):
        raise BundleError(f"the manifest's similarity scale is not ordered: impostor p50 {p50}, p99 {p99}, "
                          f"p99.9 {p999} (expected -1 <= p50 < p99 <= p99.9 <= 1).")
    return p50, p99, p999


def derive_thresholds(similarity: Optional[Mapping[str, Any]]) -> Dict[str, float]:
    """threshold name -> value by the rule in the module docstring (``similarity`` None = fallback)."""
    p50, p99, p999 = scale_of(similarity if similarity is not None else FALLBACK_SCALE)
    unit = p99 - p50
    quantile = {"p50": p50, "p99": p99, "p999": p999}
    out = {name: quantile[q] + k * unit for name, (_, q, k) in _LEVELS.items()}
    out.update({name: k * unit for name, k in _SPREADS.items()})
    return {k: round(v, 4) for k, v in out.items()}


def resolve_thresholds(config: FollowConfig, similarity: Optional[Mapping[str, Any]] = None,
                       where: str = "bundle") -> FollowConfig:
    """``config`` with every threshold left at None filled from ``similarity`` (None = fallback + warning)."""
    sections = {name: section for name, (section, _, _) in _LEVELS.items()}
    sections.update({name: "lock" for name in _SPREADS})
    missing = {name: section for name, section in sections.items()
               if getattr(getattr(config, section), name) is None}
    if not missing:
        return config
    if similarity is None:
        log.warning("%s carries no measured similarity scale: using strict fallback thresholds (strangers "
                    "assumed up to 0.9; re-acquisition will be rare). Measure it: reid-eval --bundle B --data "
                    "CROPS --similarity, or export with labelled --calib-data.", where)
    derived = derive_thresholds(similarity)
    out = config
    for section in set(missing.values()):
        filled = {name: derived[name] for name, home in missing.items() if home == section}
        out = replace(out, **{section: replace(getattr(out, section), **filled)})
    out.validate(where)
    return out


def measured_scale(embedder: Any) -> Optional[Dict[str, Any]]:
    """The ``similarity`` block of the bundle an embedder runner was loaded from (``load_embedder``
    sets ``runner.bundle``), or None for a bare runner or a bundle that was never measured."""
    manifest = getattr(getattr(embedder, "bundle", None), "manifest", None)
    block = manifest.extra.get("similarity") if manifest is not None else None
    return block if isinstance(block, dict) and "impostor" in block else None


def resolve_lock_configs(lock: LockConfig, gallery: GalleryConfig,
                         similarity: Optional[Mapping[str, Any]] = None) -> Tuple[LockConfig, GalleryConfig]:
    """The [lock] and [gallery] sections with None thresholds filled (see :func:`resolve_thresholds`)."""
    out = resolve_thresholds(FollowConfig(lock=lock, gallery=gallery), similarity, where="the target lock")
    return out.lock, out.gallery
