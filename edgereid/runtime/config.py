"""FollowConfig: every threshold of the follow loop in one place.

The defaults live in the dataclasses below; ``follow_defaults.ini`` beside this module repeats
them with the trade-off of each knob (a test keeps the two equal). ``load_config(path)`` reads
an INI file of the same shape (any subset of keys) over the defaults, so a car can carry one
small file of its own overrides: ``reid-follow --config car.ini``. INI because Python 3.8's
standard library reads it and it allows comments (JSON does not; TOML needs 3.11).
"""

from __future__ import annotations

import configparser
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Dict, Optional

from edgereid.errors import InputError

DEFAULTS_FILE = Path(__file__).with_name("follow_defaults.ini")


@dataclass
class TrackerConfig:
    """ByteTrack knobs (see ``tracker.ByteTracker``)."""

    high_score: float = 0.5
    low_score: float = 0.1
    new_track_score: float = 0.6
    match_iou: float = 0.2
    low_match_iou: float = 0.5
    max_lost_frames: int = 30
    min_hits: int = 2


@dataclass
class GalleryConfig:
    """Gallery of the followed person's embeddings (see ``gallery.Gallery``)."""

    max_size: int = 16
    max_anchors: int = 16
    similarity: str = "max_cosine"
    update_threshold: Optional[float] = None
    update_interval: int = 5


@dataclass
class LockConfig:
    """Target lock state machine (see ``target_lock.TargetLock``).

    The similarity thresholds default to None: derived from the bundle's measured similarity
    scale (``thresholds.derive_thresholds``); a number set here (or in the INI) wins.
    """

    enroll_frames: int = 5
    enroll_center_band: float = 0.5
    enroll_min_height: float = 0.2
    accept_threshold: Optional[float] = None
    anchor_threshold: Optional[float] = None
    accept_margin: Optional[float] = None
    accept_drop: Optional[float] = None
    accept_frames: int = 3
    reject_threshold: Optional[float] = None
    reject_drop: Optional[float] = None
    reject_frames: int = 1
    evidence_frames: int = 3
    stranger_margin: Optional[float] = None
    jump_threshold: Optional[float] = None
    sustained_drop: Optional[float] = None
    sustained_frames: int = 10
    max_strangers: int = 64
    stranger_checks_per_frame: int = 1
    block_bottom_entry: bool = True
    lost_recheck_frames: int = 5
    verify_interval: int = 1
    coast_frames: int = 5
    reenroll_timeout_s: float = 0.0


@dataclass
class QualityConfig:
    """Crop quality gates (see ``quality.crop_quality``): which crops may enroll, re-acquire or
    update the gallery. A crop failing one only lets an already locked track coast."""

    border_margin: float = 0.01
    min_height_px: float = 24.0
    min_aspect: float = 1.2
    max_aspect: float = 5.0
    max_overlap_iou: float = 0.0


@dataclass
class CommandConfig:
    """Set-point mapping (see ``command.CommandMapper``); ROS convention: +z yaw = turn left."""

    yaw_gain: float = 1.0
    yaw_deadband: float = 0.05
    max_yaw_rate: float = 0.8
    max_yaw_accel: float = 2.0
    speed_gain: float = 1.5
    speed_deadband: float = 0.05
    max_speed: float = 1.0
    max_accel: float = 0.5
    allow_reverse: bool = False
    smoothing: float = 0.5


@dataclass
class LoopConfig:
    """Follow loop safety and timing (see ``loop.FollowLoop``)."""

    latency_budget_s: float = 0.3
    capture_timeout_s: float = 1.0
    heartbeat_timeout_s: float = 1.0


@dataclass
class FollowConfig:
    """All sections. ``FollowConfig()`` is the documented default."""

    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    gallery: GalleryConfig = field(default_factory=GalleryConfig)
    lock: LockConfig = field(default_factory=LockConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    command: CommandConfig = field(default_factory=CommandConfig)
    loop: LoopConfig = field(default_factory=LoopConfig)

    def to_dict(self) -> Dict[str, Dict[str, Any]]:
        return {f.name: {g.name: getattr(getattr(self, f.name), g.name) for g in fields(getattr(self, f.name))}
                for f in fields(self)}

    def with_overrides(self, overrides: Dict[str, Dict[str, Any]], where: str = "overrides") -> FollowConfig:
        """A copy with ``{section: {key: value}}`` applied; unknown names raise InputError."""
        out = self
        for section, values in overrides.items():
            current = _section(out, section, where)
            kwargs = {}
            known = {f.name: f for f in fields(current)}
            for key, value in values.items():
                if key not in known:
                    raise InputError(
                        f"{where}: unknown key {key!r} in section [{section}]; valid keys: {sorted(known)}."
                    )
                kwargs[key] = _coerce(value, _field_kind(known[key]), f"{where} [{section}] {key}")
            out = replace(out, **{section: replace(current, **kwargs)})
        out.validate(where)
        return out

    def validate(self, where: str = "config") -> None:
        """Raise InputError for values that would make the loop unsafe or meaningless."""
        checks = [
            (0.0 <= self.tracker.low_score <= self.tracker.high_score <= 1.0,
             "tracker: need 0 <= low_score <= high_score <= 1"),
            (self.gallery.max_size >= 1 and self.gallery.max_anchors >= 1,
             "gallery.max_size and gallery.max_anchors must be >= 1"),
            (self.lock.enroll_frames >= 1, "lock.enroll_frames must be >= 1"),
            (self.lock.accept_frames >= 1, "lock.accept_frames must be >= 1"),
            (self.lock.reject_threshold is None or self.lock.accept_threshold is None
             or self.lock.reject_threshold <= self.lock.accept_threshold,
             "lock.reject_threshold must be <= lock.accept_threshold"),
            (self.lock.sustained_frames >= 1 and self.lock.max_strangers >= 1, "lock: sustained_frames and "
             "max_strangers must be >= 1"),
            (0.0 <= self.quality.border_margin < 0.5, "quality.border_margin must be in [0, 0.5)"),
            (0 < self.quality.min_aspect <= self.quality.max_aspect, "quality: need 0 < min_aspect <= max_aspect"),
            (self.lock.verify_interval >= 1, "lock.verify_interval must be >= 1"),
            (self.command.max_speed >= 0 and self.command.max_yaw_rate >= 0, "command limits must be >= 0"),
            (0.0 <= self.command.smoothing < 1.0, "command.smoothing must be in [0, 1)"),
            (self.loop.latency_budget_s > 0, "loop.latency_budget_s must be > 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(f"{where}: {message}.")


def load_config(path: str | Path | None = None) -> FollowConfig:
    """Defaults, with the INI file at ``path`` (any subset of sections/keys) applied over them."""
    config = FollowConfig()
    if path is None:
        return config
    path = Path(path)
    if not path.is_file():
        raise InputError(f"--config {str(path)!r} does not exist (expected an INI file like {DEFAULTS_FILE.name}).")
    parser = configparser.ConfigParser(inline_comment_prefixes=("#", ";"))
    try:
        parser.read(path)
    except configparser.Error as exc:
        raise InputError(f"--config {str(path)!r} is not a valid INI file: {exc}") from exc
    overrides = {name: dict(parser[name]) for name in parser.sections()}
    return config.with_overrides(overrides, where=str(path))


def _section(config: FollowConfig, name: str, where: str) -> Any:
    valid = [f.name for f in fields(config)]
    if name not in valid:
        raise InputError(f"{where}: unknown section [{name}]; valid sections: {valid}.")
    value = getattr(config, name)
    assert is_dataclass(value)
    return value


def _field_kind(f: Any) -> type:
    """The value type of a dataclass field (``Optional[float]`` -> float); annotations are strings here."""
    text = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    for name, kind in (("bool", bool), ("int", int), ("float", float)):
        if name in text:
            return kind
    return str


def _coerce(value: Any, kind: type, where: str) -> Any:
    """INI strings (or JSON-ish values) -> the field's type, with a clear error."""
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    text = str(value).strip()
    try:
        if kind is bool:
            low = text.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        return kind(text)
    except ValueError:
        raise InputError(f"{where}: expected a {kind.__name__}, received {text!r}.") from None
