"""How far rank-1 moves on 31 PKU identities when the FP32 model is changed by as little as INT8 changes it.

The null model for every "INT8 loses N rank-1 points" figure: each Conv/Gemm weight of the FP32
OSNet x0.25 is multiplied by (1 + N(0, sigma)) — a structureless perturbation, not quantization —
and the perturbed model is scored like an INT8 bundle (bench_eval.py's split: the 31 identities
reid-eval scores, camera 1 -> 2, 248 queries). The spread over seeds is the noise floor a
rank-1 difference must clear before it says anything about INT8.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_rank1_noise.py --sigma 0.005 --seeds 8
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import numpy as np


def main() -> None:
    import bench_eval
    import onnx
    from onnx import numpy_helper

    from edgereid.evaluation.metrics import labelled_retrieval, rowwise_cosine
    from edgereid.evaluation.naming import identity_of, list_images, read_image
    from edgereid.export import export_bundle
    from edgereid.runtime.embedder import OnnxruntimeEmbedder

    ap = argparse.ArgumentParser()
    ap.add_argument("--sigma", type=float, nargs="+", default=[0.005])
    ap.add_argument("--seeds", type=int, default=8)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-rank1-noise-"))
    _, eval_dir = bench_eval.split_pku(root)
    bundle = export_bundle(root / "fp32", onnx=str(bench_eval.OSNET), target="cpu", progress=False)
    paths = list_images(eval_dir)
    crops, labels = [read_image(p) for p in paths], [identity_of(p) for p in paths]

    def embed(model_path: Path) -> np.ndarray:
        with OnnxruntimeEmbedder(str(model_path), bundle.preprocess, providers=["CPUExecutionProvider"]) as r:
            return np.concatenate([r.embed(crops[i:i + 32]) for i in range(0, len(crops), 32)])

    ref = embed(bundle.path("onnx"))
    base = labelled_retrieval(ref, labels)
    model = onnx.load(str(bundle.path("onnx")))
    weights = {n.input[1] for n in model.graph.node if n.op_type in ("Conv", "Gemm")}
    for sigma in args.sigma:
        rows = []
        for seed in range(args.seeds):
            rng = np.random.default_rng(seed)
            noisy = onnx.ModelProto()
            noisy.CopyFrom(model)
            for init in noisy.graph.initializer:
                if init.name in weights:
                    w = numpy_helper.to_array(init)
                    init.CopyFrom(numpy_helper.from_array(
                        (w * (1 + rng.normal(0, sigma, w.shape))).astype(w.dtype), init.name))
            path = root / "noisy.onnx"
            onnx.save(noisy, str(path))
            emb = embed(path)
            got = labelled_retrieval(emb, labels)
            rows.append({"seed": seed, "cos": round(float(rowwise_cosine(emb, ref).mean()), 4),
                         "d_rank1": round(100 * (got["rank1"] - base["rank1"]), 2),
                         "d_mAP": round(100 * (got["mAP"] - base["mAP"]), 2)})
            print(json.dumps({"sigma": sigma, **rows[-1]}), flush=True)
        summary = {k: (round(statistics.mean(r[k] for r in rows), 4), round(statistics.pstdev(r[k] for r in rows), 4))
                   for k in ("cos", "d_rank1", "d_mAP")}
        print(json.dumps({"sigma": sigma, "queries": base["queries"], "mean_sd": summary}), flush=True)


if __name__ == "__main__":
    main()
