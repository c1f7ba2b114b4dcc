"""INT8's rank-1 cost on every PKU identity, each scored by bundles that never saw it.

bench_int8_mixed.py --out-of-sample scores 31 identities one way (camera 1 -> 2): 248 queries, a
rank-1 interval of about +-2.5 points, too wide to tell a 1-point loss from none. Here:

- two folds: calibrate and search on half A and score half B, then the other way round;
- both directions in each half (camera 1 -> 2 and 2 -> 1),

so all 62 identities x 2 directions x 8 views = 992 queries are scored, each by an export that
never calibrated nor searched on that identity. The 95 % interval resamples identities (a person's
16 queries succeed or fail together), so it is honest about the correlated views.

For each calibration seed and target (default settings, ``--max-drop 1.0``): FP32 (``ort``) vs
fake-quant (``ort-int8-sim``, what TensorRT computes) and, for ``--target cpu``, ONNX Runtime's
integer kernels on this host (``ort-int8``).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_int8_crossfold.py --seeds 0 1 \
        --targets xavier cpu --cpu-isa avx2 --out /tmp/crossfold.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

DIRECTIONS = ((1, 2), (2, 1))


def embed_folder(bundle, folder: Path, backend: str) -> dict:
    """{path: embedding} of every crop under ``folder`` by one backend (flip-average as reid-eval)."""
    from edgereid.evaluation.naming import list_images
    from edgereid.evaluation.reid_eval import embed_paths
    from edgereid.runtime.embedder import load_embedder

    paths = list_images(folder)
    with load_embedder(bundle, backend) as runner:
        feats = embed_paths(runner, paths)
    return {str(p): f for p, f in zip(paths, feats)}


def score_fold(feats: dict, folder: Path) -> dict:
    """Per-query results of one backend in both directions of ``folder``, pooled."""
    from edgereid.evaluation.datasets import read_folders
    from edgereid.evaluation.metrics import cosine_distmat, evaluate, pool_results

    parts = []
    for q_cam, g_cam in DIRECTIONS:
        split = read_folders(folder, query_cam=q_cam, gallery_cam=g_cam)
        q = np.stack([feats[str(p)] for p in split.query])
        g = np.stack([feats[str(p)] for p in split.gallery])
        parts.append(evaluate(cosine_distmat(q, g), split.q_ids, split.g_ids, split.q_cams, split.g_cams))
    return pool_results(parts)


def pooled_row(ref: dict, other: dict, feats: np.ndarray, ref_feats: np.ndarray) -> dict:
    """Loss of ``other`` vs ``ref`` (pooled results) with reid-eval's identity-bootstrap intervals, in points."""
    from edgereid.evaluation.reid_eval import compare_to_reference

    c = compare_to_reference(other, ref, (feats,), (ref_feats,))
    ids = ref["query_ids"]
    return {
        "queries": int(len(ids)), "identities": int(len(np.unique(ids))),
        "fp32_rank1": round(100 * ref["rank1"], 2), "rank1": round(100 * other["rank1"], 2),
        "rank1_loss": round(100 * c["loss_vs_reference"]["rank1"], 2),
        "rank1_loss_ci95": [round(100 * v, 2) for v in c["loss_ci95"]["rank1"]],
        "mAP_loss": round(100 * c["loss_vs_reference"]["mAP"], 2),
        "mAP_loss_ci95": [round(100 * v, 2) for v in c["loss_ci95"]["mAP"]],
        **c["rank1_changed_queries"], "cos_mean": round(c["cosine_vs_reference"]["mean"], 4),
    }


def run(seeds, targets, cpu_isa: str, out: str | None) -> list:
    import bench_eval

    from edgereid.benchmarks.conditions import collect_conditions
    from edgereid.evaluation.metrics import pool_results
    from edgereid.export import export_bundle

    root = Path(tempfile.mkdtemp(prefix="bench-int8-crossfold-"))
    half_a, half_b = bench_eval.split_pku(root)
    folds = ((half_a, half_b), (half_b, half_a))
    rows = []
    for seed in seeds:
        for target in targets:
            backends = ["ort-int8-sim"] + (["ort-int8"] if target == "cpu" else [])
            pooled = {name: [] for name in ["ort", *backends]}
            feats_by = {name: [] for name in pooled}
            folds_info = []
            for k, (calib, scored) in enumerate(folds):
                t = time.time()
                b = export_bundle(root / f"{target}-{seed}-fold{k}", onnx=str(bench_eval.OSNET), target=target,
                                  precision="int8", calib_data=str(calib),
                                  calib_size=bench_eval._calibration_crop_count(calib),
                                  holdout=bench_eval.EXPORT_HOLDOUT, seed=seed, max_drop=1.0, cpu_isa=cpu_isa,
                                  progress=False, force=True)
                int8 = b.manifest.extra["int8"]
                folds_info.append({"fold": k, "int8_mac_share": int8["int8_mac_share"],
                                   "float_layers": len((int8.get("mixed_precision") or {}).get("float_layers", [])),
                                   "reduce_range": int8.get("reduce_range"), "export_s": round(time.time() - t, 1)})
                for name in pooled:
                    feats = embed_folder(b, scored, name)
                    pooled[name].append(score_fold(feats, scored))
                    feats_by[name].append(np.stack([feats[p] for p in sorted(feats)]))
                print(json.dumps({"seed": seed, "target": target, **folds_info[-1]}), flush=True)
            ref, ref_feats = pool_results(pooled["ort"]), np.concatenate(feats_by["ort"])
            for name in backends:
                row = {"seed": seed, "target": target, "backend": name, "cpu_isa": cpu_isa if target == "cpu" else None,
                       "folds": folds_info,
                       **pooled_row(ref, pool_results(pooled[name]), np.concatenate(feats_by[name]), ref_feats)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    if out:
        cond = collect_conditions()
        Path(out).write_text(json.dumps({"conditions": {k: cond[k] for k in ("cpu_model", "cpu_isa", "libraries")},
                                         "rows": rows}, indent=1) + "\n")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--targets", nargs="+", default=["xavier", "cpu"])
    ap.add_argument("--cpu-isa", default="avx2", help="the CPU the cpu bundles are built for")
    ap.add_argument("--out", default=None, help="JSON file for all rows")
    args = ap.parse_args()
    run(args.seeds, args.targets, args.cpu_isa, args.out)


if __name__ == "__main__":
    main()
