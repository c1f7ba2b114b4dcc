"""reid-eval's library half: embed a query/gallery split with a bundle's backends and score it.

Every backend is scored under the Market-1501 protocol (:func:`edgereid.evaluation.metrics.evaluate`)
and compared with the FP32 reference (backend ``ort`` on the bundle's ``onnx`` file): the *loss*
of a backend is reference minus backend, in fractions (positive = accuracy lost).

Embeddings are cached as ``.npz`` files keyed by the bundle (manifest bytes and every bundle
file's size/mtime), the backend and the dataset's file list, so a second run on the same data
only re-reads the cache. Delete the cache directory (``--cache-dir``, default
``$EDGEREID_CACHE_DIR`` or ``~/.cache/edgereid/embeddings``) to force a fresh run.

Report schema (``edgereid.reid_eval/1``, also in docs/bench-eval.md)::

    schema              "edgereid.reid_eval/1"
    bundle              {path, arch, target, precision, fingerprint}
    dataset             {format, root, num_query, num_gallery, num_query_ids, num_gallery_ids,
                         num_valid_queries, ...reader details}
    reference_backend   "ort" | null (null: the bundle has no FP32 ONNX, or --reference none)
    backends            {name: {rank1, rank5, rank10, mAP (fractions), num_valid_queries,
                                embedding_dim, embed_seconds, cached,
                                loss_vs_reference {rank1, rank5, rank10, mAP} | null,
                                cosine_vs_reference {mean, min} | null,
                                loss_ci95 {rank1: [lo, hi], mAP: [lo, hi]} | null (95 % paired
                                    bootstrap over the queries, fractions),
                                rank1_changed_queries {lost, gained} | null}}
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path
from typing import Any, Dict, Sequence, Tuple

import numpy as np

from edgereid.bundle import MANIFEST_NAME, Bundle, atomic_write_bytes, json_text
from edgereid.errors import EdgeReidError, InputError
from edgereid.evaluation.datasets import ReidSplit, read_split
from edgereid.evaluation.metrics import cosine_distmat, evaluate, paired_bootstrap_ci, rowwise_cosine
from edgereid.evaluation.naming import read_image
from edgereid.progress import progress_bar
from edgereid.runtime.embedder import EmbedderRunner, load_embedder

log = logging.getLogger(__name__)

SCHEMA = "edgereid.reid_eval/1"
REFERENCE_BACKEND = "ort"
METRIC_KEYS = ("rank1", "rank5", "rank10", "mAP")
CACHE_VERSION = 1


def default_cache_dir() -> Path:
    env = os.environ.get("EDGEREID_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "edgereid" / "embeddings"


def bundle_fingerprint(bundle: Bundle) -> str:
    """sha256 of the manifest bytes plus (role, path, size, mtime) of every bundle file.

    Re-exporting a bundle changes its manifest or its files' mtimes, so stale caches are never hit.
    """
    h = hashlib.sha256((bundle.root / MANIFEST_NAME).read_bytes())
    for role, rel in sorted(bundle.manifest.files.items()):
        p = bundle.root / rel
        paths = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
        for q in paths:
            st = q.stat()
            h.update(f"{role}|{q.relative_to(bundle.root)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


class EmbeddingCache:
    """Query/gallery embeddings on disk, one ``.npz`` per (bundle, backend, dataset).

    Args:
        directory: where the files live; None disables caching.
    """

    def __init__(self, directory: str | Path | None) -> None:
        self.directory = Path(directory) if directory is not None else None

    @staticmethod
    def key(bundle_fp: str, backend: str, split_fp: str) -> str:
        text = f"v{CACHE_VERSION}|{bundle_fp}|{backend}|{split_fp}"
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def _path(self, key: str) -> Path | None:
        return None if self.directory is None else self.directory / f"{key}.npz"

    def load(self, key: str) -> Tuple[np.ndarray, np.ndarray] | None:
        path = self._path(key)
        if path is None or not path.is_file():
            return None
        try:
            with np.load(path) as data:
                return data["query"], data["gallery"]
        except (OSError, KeyError, ValueError) as exc:
            log.warning("ignoring unreadable embedding cache %s (%s)", path, exc)
            return None

    def save(self, key: str, query: np.ndarray, gallery: np.ndarray) -> None:
        path = self._path(key)
        if path is None:
            return
        import io

        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            buf = io.BytesIO()
            np.savez(buf, query=query, gallery=gallery)
            atomic_write_bytes(path, buf.getvalue())
        except OSError as exc:  # a read-only cache must not fail an evaluation
            log.warning("cannot write embedding cache %s (%s)", path, exc)


def embed_paths(embedder: EmbedderRunner, paths: Sequence[Path], batch_size: int = 32,
                progress: bool = False, desc: str = "embed") -> np.ndarray:
    """(N, D) float32 embeddings of the images at ``paths``, read and preprocessed batch by batch.

    Reading in batches keeps memory flat on Market-size galleries (20k crops).
    """
    if batch_size < 1:
        raise InputError(f"batch size must be >= 1, got {batch_size}.")
    bar = progress_bar(len(paths), desc, progress, unit="crop")
    chunks = []
    try:
        for start in range(0, len(paths), batch_size):
            crops = [read_image(p, "dataset image") for p in paths[start : start + batch_size]]
            chunks.append(embedder.embed(crops))
            bar.update(len(crops))
    finally:
        bar.close()
    return np.concatenate(chunks, axis=0) if chunks else np.zeros((0, 0), np.float32)


def _evaluate(query: np.ndarray, gallery: np.ndarray, split: ReidSplit) -> Dict[str, Any]:
    """Market-1501 metrics of embeddings (cosine distance), per-query arrays included."""
    return evaluate(cosine_distmat(query, gallery), split.q_ids, split.g_ids, split.q_cams, split.g_cams)


def _summary(result: Dict[str, Any]) -> Dict[str, Any]:
    """The JSON-ready part of an :func:`_evaluate` result (no arrays)."""
    out = {k: float(result[k]) for k in METRIC_KEYS}
    out["num_valid_queries"] = int(result["num_valid_queries"])
    return out


def compare_to_reference(result: Dict[str, Any], ref_result: Dict[str, Any], feats: Tuple[np.ndarray, ...],
                         ref_feats: Tuple[np.ndarray, ...]) -> Dict[str, Any]:
    """Loss (reference - backend, fractions) with its 95 % paired bootstrap interval (resampling the
    query identities, whose views succeed or fail together), the queries whose rank-1 changed, and
    the per-crop cosine similarity to the reference.

    ``result`` / ``ref_result``: :func:`_evaluate` of the backend and of the reference.
    """
    loss = {k: float(ref_result[k] - result[k]) for k in METRIC_KEYS}
    cos = rowwise_cosine(np.concatenate(feats), np.concatenate(ref_feats))
    hits, ref_hits = result["rank1_hits"], ref_result["rank1_hits"]
    ids = ref_result["query_ids"]
    return {
        "loss_vs_reference": loss,
        "cosine_vs_reference": {"mean": float(cos.mean()), "min": float(cos.min())},
        "loss_ci95": {"rank1": list(paired_bootstrap_ci(ref_hits, hits, groups=ids)),
                      "mAP": list(paired_bootstrap_ci(ref_result["ap"], result["ap"], groups=ids))},
        "rank1_changed_queries": {"lost": int((ref_hits & ~hits).sum()), "gained": int((~ref_hits & hits).sum())},
    }


def evaluate_bundle(
    bundle: Bundle | str | Path,
    data: str | Path | ReidSplit,
    backends: Sequence[str] = (REFERENCE_BACKEND,),
    fmt: str = "auto",
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    batch_size: int = 32,
    threads: int | None = None,
    progress: bool = False,
    split_options: Dict[str, Any] | None = None,
    reference: str | None = REFERENCE_BACKEND,
) -> Dict[str, Any]:
    """Score one bundle's backends on a ReID split (see the module docstring for the report).

    Args:
        bundle: a Bundle or its directory.
        data: the dataset folder (or an already read split).
        backends: backend names for :func:`load_embedder`, e.g. ``("ort", "ort-int8")``.
        fmt: dataset format, ``auto`` to detect.
        cache_dir: embedding cache folder; None = :func:`default_cache_dir`.
        use_cache: False ignores and does not write the cache.
        batch_size: crops per inference call.
        threads: intra-op threads for the backends (None = backend default).
        progress: show a tqdm bar per pass.
        split_options: reader options (``query_cam``, ``gallery_cam``, ``variant``).
        reference: backend the losses are measured against (``ort`` = FP32 ONNX); None skips it
            (e.g. on an X3 board without onnxruntime: compare with a host report instead).
    """
    if not isinstance(bundle, Bundle):
        bundle = Bundle.load(bundle)
    backends = list(dict.fromkeys(b.strip() for b in backends if b.strip()))
    if not backends:
        raise InputError("no backend given; pass e.g. --backend ort,ort-int8.")
    split = data if isinstance(data, ReidSplit) else read_split(data, fmt, **(split_options or {}))
    valid = int(split.valid_query_mask().sum())
    if valid == 0:
        raise InputError(
            f"none of the {len(split.query)} queries in {str(split.root)!r} has a gallery image of the same "
            "id from another camera, so nothing can be scored. Check the split (query/gallery cameras)."
        )
    if reference is not None and reference == REFERENCE_BACKEND and not bundle.has("onnx"):
        reference = None  # nothing FP32 to compare with; the report says reference_backend: null
    order = ([reference] if reference and reference not in backends else []) + backends
    from edgereid.runtime.backends import backend_options

    runners = {name: load_embedder(bundle, name, **backend_options(name, threads)) for name in order}

    cache = EmbeddingCache((cache_dir if cache_dir is not None else default_cache_dir()) if use_cache else None)
    bundle_fp, split_fp = bundle_fingerprint(bundle), split.fingerprint()
    keys = {name: cache.key(bundle_fp, name, split_fp) for name in order}
    cached = {name: cache.load(keys[name]) for name in order}
    for name in order:  # fail fast (missing tensorrt etc.) before the first long pass
        if cached[name] is None:
            try:
                runners[name].activate()
            except EdgeReidError as exc:
                if name == reference and name not in backends:
                    raise type(exc)(f"{exc} (this is the FP32 reference for the loss column; pass "
                                    "--reference none to skip it)") from exc
                raise

    feats: Dict[str, Tuple[np.ndarray, np.ndarray]] = {}
    timing: Dict[str, float] = {}
    try:
        for name in order:
            start = time.perf_counter()
            if cached[name] is not None:
                feats[name] = cached[name]
            else:
                q = embed_paths(runners[name], split.query, batch_size, progress, f"{name} query")
                g = embed_paths(runners[name], split.gallery, batch_size, progress, f"{name} gallery")
                feats[name] = (q, g)
                cache.save(keys[name], q, g)
            timing[name] = time.perf_counter() - start
    finally:
        for runner in runners.values():
            runner.deactivate()

    results: Dict[str, Dict[str, Any]] = {}
    raw = {name: _evaluate(*feats[name], split) for name in order}
    for name in backends:
        entry = _summary(raw[name])
        entry.update(embedding_dim=int(feats[name][0].shape[1]), embed_seconds=round(timing[name], 3),
                     cached=cached[name] is not None)
        if reference is not None:
            entry.update(compare_to_reference(raw[name], raw[reference], feats[name], feats[reference]))
        else:
            entry.update(loss_vs_reference=None, cosine_vs_reference=None, loss_ci95=None, rank1_changed_queries=None)
        results[name] = entry
    m = bundle.manifest
    return {
        "schema": SCHEMA,
        "bundle": {"path": str(bundle.root), "arch": m.arch, "target": m.target, "precision": m.precision,
                   "fingerprint": bundle_fp},
        "dataset": {**split.summary(), "num_valid_queries": valid},
        "reference_backend": reference,
        "backends": results,
    }


def format_table(report: Dict[str, Any]) -> str:
    """Plain-text table: one row per backend, metrics in percent, loss in percentage points."""
    ds = report["dataset"]
    head = (f"dataset {ds['format']} {ds['root']}: {ds['num_query']} query / {ds['num_gallery']} gallery, "
            f"{ds['num_valid_queries']} valid queries; reference: {report['reference_backend']}")
    cols = f"{'backend':<12} {'rank1':>7} {'rank5':>7} {'rank10':>7} {'mAP':>7} {'d_rank1':>8} {'95% CI':>15} " \
           f"{'d_mAP':>7} {'cos_min':>7} {'cached':>6}"
    lines = [head, cols, "-" * len(cols)]
    for name, r in report["backends"].items():
        loss = r.get("loss_vs_reference") or {}
        cos = r.get("cosine_vs_reference") or {}

        def pp(v: float | None) -> str:
            return "n/a" if v is None else f"{-100 * v + 0.0:+.2f}"

        ci = (r.get("loss_ci95") or {}).get("rank1")
        ci_text = "n/a" if not ci else f"[{-100 * ci[1] + 0.0:+.1f}, {-100 * ci[0] + 0.0:+.1f}]"

        lines.append(
            f"{name:<12} {100 * r['rank1']:7.2f} {100 * r['rank5']:7.2f} {100 * r['rank10']:7.2f} "
            f"{100 * r['mAP']:7.2f} {pp(loss.get('rank1')):>8} {ci_text:>15} {pp(loss.get('mAP')):>7} "
            f"{cos.get('min', float('nan')):7.4f} {'yes' if r['cached'] else 'no':>6}"
        )
    lines.append("metrics in %; d_* = backend - reference in percentage points (95% CI: paired bootstrap over "
                 "the queries); cos_min = lowest per-crop cosine similarity to the reference embedding")
    return "\n".join(lines)


def report_json(report: Dict[str, Any]) -> str:
    return json_text(report, nan_as_null=True)


