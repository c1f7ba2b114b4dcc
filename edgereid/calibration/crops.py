"""Calibration crop sets: person crops from a folder, a frame folder or a video.

Why one module: INT8 calibration, the hold-out accuracy report and the X3 calibration files
must all see the *same* deterministic crops. Sampling is by seed (``--seed``), the hold-out split
is by identity when the crops carry labels (so calibration never sees the people it is scored
on), and only the sampled files are decoded, so a 12k-image dataset costs no memory.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgereid.errors import InputError
from edgereid.evaluation.naming import IMAGE_SUFFIXES, identity_of, list_images, read_image
from edgereid.progress import progress_iter

LOG = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v")
MIN_CROP_SIDE = 16  # px; detections smaller than this carry no identity


@dataclass
class CropSet:
    """Calibration and hold-out crops, BGR uint8 (h_i, w_i, 3) each.

    Attributes:
        calib: crops used to compute activation ranges.
        holdout: crops for the FP32-vs-INT8 accuracy report (never used for calibration).
        holdout_labels: (pid, cam) per hold-out crop, or None when the source is unlabelled.
        source: description for the manifest (path, kind, counts, seed).
    """

    calib: list[np.ndarray]
    holdout: list[np.ndarray]
    holdout_labels: list[tuple[int, int]] | None
    source: dict[str, Any]


def sample_indices(n: int, k: int, seed: int) -> list[int]:
    """k distinct indices of range(n), sorted, the same for the same (n, k, seed)."""
    if k >= n:
        return list(range(n))
    rng = np.random.default_rng(seed)
    return sorted(int(i) for i in rng.choice(n, size=k, replace=False))


def split_by_identity(
    labels: Sequence[tuple[int, int] | None], holdout: float, seed: int
) -> tuple[list[int], list[int]]:
    """Split item indices into (calibration, hold-out) so no identity is in both.

    Args:
        labels: (pid, cam) or None per item; unlabelled items and junk ids (< 0) always
            go to calibration.
        holdout: share of identities held out, 0..1.
        seed: shuffling seed.
    """
    pids = sorted({lab[0] for lab in labels if lab is not None and lab[0] >= 0})
    n_hold = int(round(len(pids) * holdout))
    if holdout > 0 and len(pids) >= 2:
        n_hold = min(max(n_hold, 1), len(pids) - 1)
    held = {pids[i] for i in sample_indices(len(pids), n_hold, seed)} if n_hold else set()
    calib = [i for i, lab in enumerate(labels) if lab is None or lab[0] not in held]
    hold = [i for i, lab in enumerate(labels) if lab is not None and lab[0] in held]
    return calib, hold


def split_random(n: int, holdout: float, seed: int) -> tuple[list[int], list[int]]:
    """(calibration, hold-out) index lists for unlabelled items."""
    hold = set(sample_indices(n, int(round(n * holdout)), seed + 1))
    return [i for i in range(n) if i not in hold], sorted(hold)


def load_crop_dir(
    root: str | Path,
    calib_size: int,
    seed: int = 0,
    holdout: float = 0.25,
    max_holdout: int = 256,
) -> CropSet:
    """Person crops from ``root`` (recursive), labelled by Market-1501 names or ``<pid>/`` folders.

    Raises:
        InputError: missing/empty directory, unreadable image, or fewer crops than ``calib_size``.
    """
    root = Path(root)
    paths = _check_image_dir(root)
    labels = [identity_of(p) for p in paths]
    labelled = sum(lab is not None for lab in labels) == len(paths)
    if labelled:
        calib_idx, hold_idx = split_by_identity(labels, holdout, seed)
    else:
        calib_idx, hold_idx = split_random(len(paths), holdout, seed)
    if len(calib_idx) < calib_size:
        raise InputError(
            f"--calib-data {str(root)!r}: {len(calib_idx)} crops are left for calibration after the "
            f"hold-out split ({len(hold_idx)} held out), but --calib-size is {calib_size}. "
            f"Add crops or pass --calib-size {max(1, len(calib_idx))} (or a smaller --holdout)."
        )
    calib_pick = [calib_idx[i] for i in sample_indices(len(calib_idx), calib_size, seed)]
    hold_pick = [hold_idx[i] for i in sample_indices(len(hold_idx), max_holdout, seed + 2)]
    calib = [read_image(paths[i], "calibration image") for i in progress_iter(calib_pick, "reading calibration crops")]
    hold = [read_image(paths[i], "calibration image") for i in hold_pick]
    return CropSet(
        calib=calib,
        holdout=hold,
        holdout_labels=[labels[i] for i in hold_pick] if labelled and hold_pick else None,  # type: ignore[misc]
        source={
            "kind": "crops",
            "path": str(root),
            "images": len(paths),
            "labelled": labelled,
            "calib": len(calib),
            "holdout": len(hold),
            "seed": seed,
        },
    )


def load_frames_or_video(
    path: str | Path,
    calib_size: int,
    seed: int = 0,
    holdout: float = 0.25,
    detector: Any = None,
    detector_path: str | None = None,
    frame_step: int = 5,
) -> CropSet:
    """Cut person crops from a video file or a folder of frames with a person detector.

    Args:
        detector: anything with ``detect(frame_bgr) -> Detections``; None loads
            ``edgereid.runtime.detector.load_detector(detector_path)``.
        frame_step: video only: use every n-th frame (neighbouring frames hold nearly the same
            crop); a frame folder is used whole.
    """
    path = Path(path)
    if detector is None:
        from edgereid.runtime.detector import load_detector

        detector = load_detector(detector_path)
    need = calib_size + max(1, int(round(calib_size * holdout / max(1e-9, 1 - holdout))))
    crops: list[np.ndarray] = []
    for frame in progress_iter(_iter_frames(path, frame_step), "cutting crops"):
        crops.extend(cut_crops(frame, detector.detect(frame)))
        if len(crops) >= need:
            break
    if len(crops) < calib_size + 1:
        raise InputError(
            f"--calib-data {str(path)!r}: the detector found {len(crops)} person crops, "
            f"{calib_size + 1} are needed (--calib-size {calib_size} plus a hold-out). "
            "Use a longer video, a lower --calib-size, or a folder of crops."
        )
    calib_idx, hold_idx = split_random(len(crops), holdout, seed)
    calib_pick = [calib_idx[i] for i in sample_indices(len(calib_idx), calib_size, seed)]
    return CropSet(
        calib=[crops[i] for i in calib_pick],
        holdout=[crops[i] for i in hold_idx],
        holdout_labels=None,
        source={
            "kind": "video" if path.is_file() else "frames",
            "path": str(path),
            "crops_found": len(crops),
            "calib": len(calib_pick),
            "holdout": len(hold_idx),
            "seed": seed,
        },
    )


def cut_crops(frame: np.ndarray, detections: Any) -> list[np.ndarray]:
    """Crops of ``frame`` (H, W, 3) at each detection's xyxy box, clipped; tiny boxes skipped."""
    h, w = frame.shape[:2]
    out = []
    for x1, y1, x2, y2 in np.asarray(detections.xyxy, np.float64).reshape(-1, 4):
        a, b = int(max(0, np.floor(x1))), int(max(0, np.floor(y1)))
        c, d = int(min(w, np.ceil(x2))), int(min(h, np.ceil(y2)))
        if c - a >= MIN_CROP_SIDE and d - b >= MIN_CROP_SIDE:
            out.append(np.ascontiguousarray(frame[b:d, a:c]))
    return out


def load_calibration_set(
    path: str | Path,
    calib_size: int = 512,
    seed: int = 0,
    holdout: float = 0.25,
    frames: bool = False,
    detector_path: str | None = None,
    max_holdout: int = 256,
) -> CropSet:
    """Crops from a crop folder (default), a video file, or a frame folder (``frames=True``)."""
    path = Path(path)
    if calib_size < 1:
        raise InputError(f"--calib-size must be at least 1, received {calib_size}.")
    if not 0.0 <= holdout < 1.0:
        raise InputError(f"--holdout must be in [0, 1), received {holdout}.")
    if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
        return load_frames_or_video(path, calib_size, seed, holdout, detector_path=detector_path)
    if path.is_file():
        raise InputError(
            f"--calib-data {str(path)!r} is a file but not a video ({', '.join(VIDEO_SUFFIXES)}); "
            "pass a folder of person crops, a frame folder with --calib-frames, or a video."
        )
    if frames:
        _check_image_dir(path)
        return load_frames_or_video(path, calib_size, seed, holdout, detector_path=detector_path)
    return load_crop_dir(path, calib_size, seed, holdout, max_holdout)


def _check_image_dir(root: Path) -> list[Path]:
    if not root.is_dir():
        raise InputError(
            f"--calib-data {str(root)!r} does not exist or is not a directory "
            "(expected a folder of person crops, a frame folder or a video file)."
        )
    paths = list_images(root)
    if not paths:
        raise InputError(
            f"--calib-data {str(root)!r} holds no images ({', '.join(IMAGE_SUFFIXES)}, searched "
            "recursively). Point it at a folder of person crops."
        )
    return paths


def _iter_frames(path: Path, step: int):
    import cv2

    if path.is_dir():  # a frame folder may be a few photos: use every one
        for p in list_images(path):
            yield read_image(p, "calibration image")
        return
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise InputError(f"--calib-data {str(path)!r}: OpenCV cannot open this video.")
    try:
        i = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if i % step == 0:
                yield frame
            i += 1
    finally:
        cap.release()


