"""Query/gallery splits of ReID test sets, read from the folders users already have.

Three layouts, one result type (:class:`ReidSplit`):

* ``market1501`` — Market-1501 / DukeMTMC-reID / CUHK03-NP folders: ``query/`` and
  ``bounding_box_test/`` holding ``<pid>_c<cam>...jpg``. Id ``-1`` images are junk (left out);
  id ``0`` images are distractors (kept in the gallery as negatives, never queried).
* ``cuhk03`` — the CUHK03 new protocol (Zhong et al., 2017) from the user's
  ``cuhk03_new_protocol_config_{labeled,detected}.mat`` and the extracted image folder
  (``images_labeled/`` etc., names ``<campaign>_<pid>_<cam>_<idx>.png``).
* ``folders`` — ``<pid>/<cam>_<anything>.png`` (PKU-Reid as in ../shared/assets/reid_data);
  one camera is the query side, another the gallery side (1 and 2 by default).

``read_split(root, fmt="auto")`` detects the layout; a folder in no known layout is an
:class:`InputError` that lists what was looked for.
"""

from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import numpy as np

from edgereid.errors import InputError
from edgereid.evaluation.naming import IMAGE_SUFFIXES, list_images, parse_folder_path, parse_market_name

FORMATS = ("market1501", "cuhk03", "folders")
JUNK_PID = -1
DISTRACTOR_PID = 0
CUHK03_VARIANTS = ("labeled", "detected")


@dataclass
class ReidSplit:
    """A labelled query set and gallery set.

    Attributes:
        fmt: the layout it was read from (one of :data:`FORMATS`).
        root: the dataset folder.
        query: (Q,) image paths; ``q_ids`` / ``q_cams`` their (Q,) int64 labels.
        gallery: (G,) image paths; ``g_ids`` / ``g_cams`` their (G,) int64 labels.
        info: reader details for the report (skipped junk count, variant, cameras used).
    """

    fmt: str
    root: Path
    query: List[Path]
    q_ids: np.ndarray
    q_cams: np.ndarray
    gallery: List[Path]
    g_ids: np.ndarray
    g_cams: np.ndarray
    info: Dict[str, Any] = field(default_factory=dict)

    def valid_query_mask(self) -> np.ndarray:
        """(Q,) bool: queries with at least one gallery match of the same id from another camera.

        The Market-1501 protocol skips the others, so a split where none is valid cannot be scored.
        """
        same_id = self.q_ids[:, None] == self.g_ids[None, :]
        other_cam = self.q_cams[:, None] != self.g_cams[None, :]
        return np.any(same_id & other_cam, axis=1) if len(self.gallery) else np.zeros(len(self.query), bool)

    def fingerprint(self) -> str:
        """sha256 over the relative paths, sizes and mtimes of every image (the cache key's data part)."""
        h = hashlib.sha256(self.fmt.encode())
        for side, paths in (("q", self.query), ("g", self.gallery)):
            for p in paths:
                st = p.stat()
                h.update(f"{side}|{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        return h.hexdigest()

    def summary(self) -> Dict[str, Any]:
        return {
            "format": self.fmt,
            "root": str(self.root),
            "num_query": len(self.query),
            "num_gallery": len(self.gallery),
            "num_query_ids": int(len(np.unique(self.q_ids))),
            "num_gallery_ids": int(len(np.unique(self.g_ids))),
            **self.info,
        }


def _split(fmt: str, root: Path, query: List[Tuple[Path, int, int]], gallery: List[Tuple[Path, int, int]],
           info: Dict[str, Any]) -> ReidSplit:
    def cols(items: List[Tuple[Path, int, int]]) -> Tuple[List[Path], np.ndarray, np.ndarray]:
        paths = [p for p, _, _ in items]
        ids = np.asarray([i for _, i, _ in items], np.int64)
        cams = np.asarray([c for _, _, c in items], np.int64)
        return paths, ids, cams

    qp, qi, qc = cols(query)
    gp, gi, gc = cols(gallery)
    if not qp or not gp:
        raise InputError(
            f"{fmt} dataset at {str(root)!r}: found {len(qp)} query and {len(gp)} gallery images; "
            "both must be non-empty. Check the folder and --format."
        )
    return ReidSplit(fmt, root, qp, qi, qc, gp, gi, gc, info)


# -- Market-1501 / DukeMTMC ---------------------------------------------------------------------
def _read_market_dir(folder: Path) -> Tuple[List[Tuple[Path, int, int]], int, int]:
    """(path, pid, cam) of labelled images, plus the count of junk and unparsable names skipped."""
    items, junk, unparsed = [], 0, 0
    for p in sorted(q for q in folder.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES and q.is_file()):
        label = parse_market_name(p.name)
        if label is None:
            unparsed += 1
            continue
        pid, cam = label
        if pid == JUNK_PID:
            junk += 1
            continue
        items.append((p, pid, cam))
    return items, junk, unparsed


def read_market1501(root: str | Path, query_dir: str = "query", gallery_dir: str = "bounding_box_test") -> ReidSplit:
    """Market-1501 / DukeMTMC-reID / CUHK03-NP test split.

    Junk (pid -1) is left out of both sides; distractors (pid 0) stay in the gallery only.
    """
    root = Path(root)
    qdir, gdir = root / query_dir, root / gallery_dir
    missing = [str(d.name) for d in (qdir, gdir) if not d.is_dir()]
    if missing:
        raise InputError(
            f"{str(root)!r} is not a Market-1501/Duke folder: it lacks {missing}. Expected "
            f"'{query_dir}/' and '{gallery_dir}/' holding <pid>_c<cam>s<seq>_<frame>_<idx>.jpg images."
        )
    query, q_junk, q_bad = _read_market_dir(qdir)
    distractor_queries = sum(1 for _, pid, _ in query if pid == DISTRACTOR_PID)
    query = [item for item in query if item[1] != DISTRACTOR_PID]
    gallery, g_junk, g_bad = _read_market_dir(gdir)
    info = {
        "skipped_junk": q_junk + g_junk,
        "skipped_unparsable": q_bad + g_bad,
        "skipped_distractor_queries": distractor_queries,
        "gallery_distractors": sum(1 for _, pid, _ in gallery if pid == DISTRACTOR_PID),
    }
    return _split("market1501", root, query, gallery, info)


def check_dataset_dir(root: Path) -> None:
    """A clear error for a missing dataset folder, and a different one for a file given instead."""
    if root.is_file():
        raise InputError(f"--data {str(root)!r} is a file; expected the dataset folder (Market-1501, CUHK03, "
                         "or <pid>/<cam>_*.png folders).")
    if not root.is_dir():
        raise InputError(f"dataset folder {str(root)!r} does not exist.")


# -- plain <pid>/<cam>_*.png folders ----------------------------------------------------------------
def read_folders(root: str | Path, query_cam: int = 1, gallery_cam: int = 2) -> ReidSplit:
    """``<pid>/<cam>_<anything>.<ext>`` folders: camera ``query_cam`` queries, ``gallery_cam`` is the gallery."""
    root = Path(root)
    check_dataset_dir(root)
    query, gallery, cams_seen, unparsed = [], [], set(), 0
    for p in list_images(root):
        if p.parent.parent != root:
            unparsed += 1
            continue
        label = parse_folder_path(p)
        if label is None or label[1] < 0:
            unparsed += 1
            continue
        pid, cam = label
        cams_seen.add(cam)
        if cam == query_cam:
            query.append((p, pid, cam))
        elif cam == gallery_cam:
            gallery.append((p, pid, cam))
    if not query or not gallery:
        raise InputError(
            f"folders dataset at {str(root)!r}: cameras found {sorted(cams_seen)}, but query camera "
            f"{query_cam} has {len(query)} images and gallery camera {gallery_cam} has {len(gallery)}. "
            "Expected <pid>/<cam>_<anything>.png; choose the cameras with query_cam/gallery_cam."
        )
    info = {"query_cam": query_cam, "gallery_cam": gallery_cam, "cameras_found": sorted(cams_seen),
            "skipped_unparsable": unparsed}
    return _split("folders", root, query, gallery, info)


# -- CUHK03 new protocol ------------------------------------------------------------------------------
def _mat_str(value: Any) -> str:
    """Unwrap scipy.io.loadmat's nested cell/char arrays down to one Python string."""
    while isinstance(value, np.ndarray):
        if value.size != 1 and value.dtype.kind != "U":
            raise InputError(f"expected one file name in the CUHK03 filelist, got an array of shape {value.shape}.")
        value = value.reshape(-1)[0] if value.size else ""
    return str(value)


def _find_cuhk03_mat(root: Path, variant: str) -> Path:
    name = f"cuhk03_new_protocol_config_{variant}.mat"
    for cand in (root / name, *sorted(root.glob(f"*/{name}"))):
        if cand.is_file():
            return cand
    raise InputError(
        f"{str(root)!r}: no {name} found (looked in the folder and one level below). Download the "
        "CUHK03 new-protocol configs (Zhong et al., re-ranking repo) next to the extracted images."
    )


def _find_cuhk03_images(root: Path, mat: Path, variant: str, first_name: str) -> Path:
    candidates = [root / f"images_{variant}", root / variant, root / "images_cuhk03", root / "images",
                  mat.parent / f"images_{variant}", mat.parent / variant, root, mat.parent]
    for cand in candidates:
        if (cand / first_name).is_file():
            return cand
    raise InputError(
        f"CUHK03 ({variant}): {mat.name} names images like {first_name!r}, but none was found in "
        f"{[str(c) for c in candidates]}. Extract them from cuhk-03.mat into images_{variant}/."
    )


def read_cuhk03(root: str | Path, variant: str = "labeled") -> ReidSplit:
    """CUHK03 new-protocol test split (767/700 ids) from the .mat config and the extracted images.

    The .mat holds 1-based ``query_idx`` / ``gallery_idx`` into ``filelist`` / ``labels`` /
    ``camId``; names are ``<campaign>_<pid>_<cam>_<idx>.png`` (camera taken from ``camId`` when
    present, else from the name).
    """
    if variant not in CUHK03_VARIANTS:
        raise InputError(f"CUHK03 variant must be one of {CUHK03_VARIANTS}, got {variant!r}.")
    root = Path(root)
    mat_path = _find_cuhk03_mat(root, variant)
    sio = _scipy_io()
    try:
        mat = sio.loadmat(str(mat_path))
    except Exception as exc:  # scipy raises several types for corrupt files
        raise InputError(f"cannot read {mat_path}: {exc}") from exc
    need = ("filelist", "labels", "query_idx", "gallery_idx")
    missing = [k for k in need if k not in mat]
    if missing:
        raise InputError(f"{mat_path}: not a CUHK03 new-protocol config, it lacks {missing}.")
    names = [_mat_str(v) for v in np.asarray(mat["filelist"], dtype=object).reshape(-1)]
    labels = np.asarray(mat["labels"]).reshape(-1).astype(np.int64)
    cams = np.asarray(mat["camId"]).reshape(-1).astype(np.int64) if "camId" in mat else None
    if len(labels) != len(names) or (cams is not None and len(cams) != len(names)):
        raise InputError(f"{mat_path}: filelist, labels and camId differ in length.")
    image_dir = _find_cuhk03_images(root, mat_path, variant, names[0])

    def side(key: str) -> List[Tuple[Path, int, int]]:
        idx = np.asarray(mat[key]).reshape(-1).astype(np.int64) - 1
        if len(idx) and (idx.min() < 0 or idx.max() >= len(names)):
            raise InputError(f"{mat_path}: {key} holds indices outside 1..{len(names)}.")
        out = []
        for i in idx:
            cam = int(cams[i]) if cams is not None else int(names[i].split("_")[2])
            out.append((image_dir / names[i], int(labels[i]), cam))
        return out

    query, gallery = side("query_idx"), side("gallery_idx")
    absent = [str(p) for p, _, _ in query + gallery if not p.is_file()]
    if absent:
        raise InputError(f"CUHK03 ({variant}): {len(absent)} listed images are missing, e.g. {absent[0]!r}.")
    return _split("cuhk03", root, query, gallery, {"variant": variant, "config": str(mat_path)})


def _scipy_io():
    from edgereid.lazy import require

    return require("scipy.io", "reading CUHK03 .mat split files")


# -- detection ----------------------------------------------------------------------------------------
def detect_format(root: str | Path) -> str:
    """The layout of ``root``: ``market1501``, ``cuhk03`` or ``folders``; InputError if none fits."""
    root = Path(root)
    check_dataset_dir(root)
    if (root / "query").is_dir() and (root / "bounding_box_test").is_dir():
        return "market1501"
    if any(root.glob("cuhk03_new_protocol_config_*.mat")) or any(root.glob("*/cuhk03_new_protocol_config_*.mat")):
        return "cuhk03"
    for sub in root.iterdir():
        if sub.is_dir() and sub.name.isdigit():
            if any(parse_folder_path(p) is not None for p in sub.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
                return "folders"
    raise InputError(
        f"{str(root)!r} is in no known dataset format. Expected one of: Market-1501/Duke "
        "('query/' + 'bounding_box_test/'), CUHK03 new protocol ('cuhk03_new_protocol_config_*.mat' + "
        "images), or '<pid>/<cam>_<anything>.png' folders. Pass --format to force one."
    )


_READERS: Dict[str, Callable[..., ReidSplit]] = {
    "market1501": read_market1501,
    "cuhk03": read_cuhk03,
    "folders": read_folders,
}


def read_split(root: str | Path, fmt: str = "auto", **options: Any) -> ReidSplit:
    """Read a query/gallery split; ``fmt="auto"`` detects the layout.

    Args:
        root: the dataset folder.
        fmt: ``auto`` or one of :data:`FORMATS`.
        options: reader options (``query_cam``/``gallery_cam`` for folders, ``variant`` for cuhk03);
            options the chosen reader does not take, or that are None, are ignored.
    """
    if fmt == "auto":
        fmt = detect_format(root)
    if fmt not in _READERS:
        raise InputError(f"unknown dataset format {fmt!r}; valid: {['auto', *FORMATS]}.")
    reader = _READERS[fmt]
    accepted = inspect.signature(reader).parameters
    return reader(root, **{k: v for k, v in options.items() if k in accepted and v is not None})
