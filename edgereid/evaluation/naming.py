"""Identity and camera labels from ReID file names, shared by calibration and evaluation.

Market-1501 / DukeMTMC: ``<pid>_c<cam>s<seq>_<frame>_<idx>.jpg`` (Duke: ``<pid>_c<cam>_f<frame>.jpg``);
pid -1 = junk, 0000 = distractor. Folder layout: ``<pid>/<cam>_<anything>.png`` (PKU-Reid as in
../shared/assets/reid_data) where ``<cam>`` is a number.
"""

from __future__ import annotations

import re
from pathlib import Path

from edgereid.errors import InputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")

_MARKET = re.compile(r"^(-?\d+)_c(\d+)")
_FOLDER_CAM = re.compile(r"^(?:c|cam)?(\d+)")


def parse_market_name(name: str) -> tuple[int, int] | None:
    """(pid, cam) from a Market-1501/Duke file name, or None when it is not one."""
    m = _MARKET.match(Path(name).name)
    return (int(m.group(1)), int(m.group(2))) if m else None


def parse_folder_path(path: str | Path) -> tuple[int, int] | None:
    """(pid, cam) from ``<pid>/<cam>_<anything>.ext``, or None when the layout does not fit."""
    p = Path(path)
    if not p.parent.name.lstrip("-").isdigit():
        return None
    m = _FOLDER_CAM.match(p.stem)
    cam = int(m.group(1)) if m else -1
    return int(p.parent.name), cam


def identity_of(path: str | Path) -> tuple[int, int] | None:
    """(pid, cam) by the Market rule first, then the folder rule; None when unlabelled."""
    return parse_market_name(Path(path).name) or parse_folder_path(path)


def list_images(root: str | Path) -> list[Path]:
    """All images under ``root``, recursively, sorted (deterministic order)."""
    root = Path(root)
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def read_image(path: str | Path, what: str = "image"):
    """One BGR uint8 image, or an InputError naming the file (cv2.imread returns None silently).

    Args:
        path: image file.
        what: what the image is for, for the message (e.g. "calibration image").
    """
    from edgereid.lazy import require

    cv2 = require("cv2", f"reading {what}s")
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None or img.size == 0:
        raise InputError(f"{what} {str(path)!r} cannot be read (missing, corrupt or not an image). "
                         "Remove it or fix the file.")
    return img
