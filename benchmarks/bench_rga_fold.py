"""Official vs folded RGA-SC on this machine: latency (interleaved), MACs and output parity.

Both models share one state dict (seed 0, as ``load_model("rga_sc")`` builds it); latency does not
depend on the weights. Calls alternate official, folded, official, folded ... for each batch size
(edgereid.benchmarks.harness.compare_interleaved), so load on a shared machine hits both members
of a pair; the speed-up is the median of the per-pair ratios with its inter-quartile range.

    .venv/bin/python benchmarks/bench_rga_fold.py                       # writes benchmarks/results/rga_fold.md
    .venv/bin/python benchmarks/bench_rga_fold.py --batch-sizes 1 --iters 5 --no-write   # quick look
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgereid.benchmarks.conditions import collect_conditions  # noqa: E402
from edgereid.benchmarks.harness import compare_interleaved  # noqa: E402
from edgereid.benchmarks.stats import latency_summary, ratio_summary  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "rga_fold.md"
PKU_DIR = ROOT.parent / "shared" / "assets" / "reid_data" / "pku_reid"


class TorchTarget:
    """A torch model as a harness target: one forward on a prepared batch per ``run``."""

    def __init__(self, name: str, model: Any, seed: int = 0) -> None:
        self.name, self.model, self.seed = name, model, seed
        self._batches: Dict[int, Any] = {}

    def setup(self, batch_sizes: Sequence[int]) -> None:
        import torch

        gen = torch.Generator().manual_seed(self.seed)
        self._batches = {bs: torch.randn(bs, 3, 256, 128, generator=gen) for bs in batch_sizes}

    def run(self, batch_size: int) -> None:
        import torch

        with torch.inference_mode():
            self.model(self._batches[batch_size])

    def teardown(self) -> None:
        self._batches = {}

    def describe(self) -> Dict[str, Any]:
        return {"name": self.name, "folded": bool(self.model.folded)}


def _parity(reference: np.ndarray, got: np.ndarray) -> Dict[str, float]:
    cos = (reference * got).sum(1) / np.linalg.norm(reference, axis=1) / np.linalg.norm(got, axis=1)
    max_err = float(np.abs(got - reference).max() / np.abs(reference).max())
    return {"cos_min": float(cos.min()), "max_abs_over_scale": max_err}


def parity_report(official: Any, folded: Any) -> List[Dict[str, Any]]:
    """Folded vs official (fp32), and each against a float64 run of the official formulation."""
    import copy

    import torch

    inputs = [("random N(0,1), 4 inputs", torch.randn(4, 3, 256, 128, generator=torch.Generator().manual_seed(1)))]
    if PKU_DIR.is_dir():
        import cv2

        from edgereid.models import preprocess_for

        paths = sorted(PKU_DIR.glob("*/*.png"))[:64:8][:4]
        crops = [cv2.imread(str(p)) for p in paths]
        inputs.append(("4 real PKU-Reid crops", torch.from_numpy(preprocess_for("rga_sc")(crops))))
    reference64 = copy.deepcopy(official).double()
    rows = []
    with torch.inference_mode():
        for label, x in inputs:
            a, b = official(x).numpy(), folded(x).numpy()
            r = reference64(x.double()).numpy()
            rows.append({"input": label, "folded_vs_official": _parity(a, b),
                         "official_vs_fp64": _parity(r, a), "folded_vs_fp64": _parity(r, b)})  # fmt: skip
    return rows


def run(batch_sizes: Sequence[int], iters: int, warmup: int, threads: int) -> Dict[str, Any]:
    import torch

    from edgereid.models.macs import count_macs
    from edgereid.models.rga import build_rga

    torch.set_num_threads(threads)
    with torch.device("meta"):
        meta = build_rga("sc")
        macs_official = count_macs(meta)
        meta.set_folded(True)
        macs_folded = count_macs(meta)
    torch.manual_seed(0)
    official = build_rga("sc")
    folded = build_rga("sc", folded=True)
    folded.load_state_dict(official.state_dict())

    load_before = os.getloadavg()
    start = time.time()
    targets = (TorchTarget("official", official), TorchTarget("folded", folded))
    for target in targets:
        target.setup(batch_sizes)
    try:
        pairs = compare_interleaved(*targets, batch_sizes, warmup=warmup, iters=iters)
    finally:
        for target in targets:
            target.teardown()
    rows = []
    for bs, (t_official, t_folded) in pairs.items():
        rows.append({"batch": bs, "official": latency_summary(t_official, bs), "folded": latency_summary(t_folded, bs),
                     "ratio": ratio_summary(t_official, t_folded)})  # fmt: skip
    elapsed = time.time() - start
    load_after = os.getloadavg()
    return {
        "threads": threads,
        "iters": iters,
        "warmup": warmup,
        "macs": {"official": macs_official, "folded": macs_folded},
        "latency": rows,
        "parity": parity_report(official, folded),
        "conditions": collect_conditions(),
        "load_avg_before": load_before,
        "load_avg_after": load_after,
        "elapsed_s": elapsed,
        "torch": torch.__version__,
    }


def to_markdown(report: Dict[str, Any], command: str) -> str:
    cond = report["conditions"]
    libs = ", ".join(f"{k} {v}" for k, v in sorted(cond["libraries"].items()) if k in ("torch", "numpy", "onnxruntime"))
    macs = report["macs"]
    lines = [
        "# RGA-SC: official formulation vs folded relation convs",
        "",
        f"Machine: {cond['cpu_model']}, {cond['usable_cpus']} usable cores (shared with other jobs: load average "
        f"{report['load_avg_before'][0]:.2f} before, {report['load_avg_after'][0]:.2f} after), torch threads = "
        f"{report['threads']}; {libs}; Python {cond['python']}.",
        f"Run took {report['elapsed_s']:.0f} s: {report['warmup']} warm-up + {report['iters']} timed calls per model "
        "and batch size, interleaved official, folded, official, folded ...; input 256x128, float32, CPU.",
        "",
        f"Reproduce: `{command}`",
        "",
        "## MACs per 256x128 crop (torch.utils.flop_counter: convs, linears, matmuls)",
        "",
        "| model | GMAC | |",
        "|---|---:|---|",
        f"| official RGA-SC | {macs['official'] / 1e9:.3f} | |",
        f"| folded RGA-SC | {macs['folded'] / 1e9:.3f} | {macs['official'] / macs['folded']:.2f}x fewer |",
        "",
        "## Latency (median ms per call; speed-up = median of per-pair official/folded ratios, [IQR])",
        "",
        "| batch | official p50 ms | folded p50 ms | speed-up | IQR of per-pair speed-up | folded faster in |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report["latency"]:
        o, f, r = row["official"], row["folded"], row["ratio"]
        lines.append(
            f"| {row['batch']} | {o['p50_ms']:.0f} | {f['p50_ms']:.0f} | {r['speedup_median']:.2f}x | "
            f"[{r['speedup_q1']:.2f}, {r['speedup_q3']:.2f}] | "
            f"{100 * r['b_faster_fraction']:.0f}% of {r['n_pairs']} pairs |"
        )
    lines += [
        "",
        "## Output parity (untrained seed-0 weights; max abs error / max |reference|)",
        "",
        "| input | folded vs official: min cosine | max err | official fp32 vs fp64 | folded fp32 vs fp64 |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in report["parity"]:
        fo, of, ff = row["folded_vs_official"], row["official_vs_fp64"], row["folded_vs_fp64"]
        lines.append(
            f"| {row['input']} | {fo['cos_min']:.8f} | {fo['max_abs_over_scale']:.1e} | "
            f"{of['max_abs_over_scale']:.1e} | {ff['max_abs_over_scale']:.1e} |"
        )
    lines += [
        "",
        "The fp64 columns run the official formulation in float64: the folded model's float32 error",
        "is of the same size as the official formulation's own float32 rounding error.",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--iters", type=int, default=20, help="timed calls per model and batch size")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="markdown file to (over)write")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args(argv)
    report = run(args.batch_sizes, args.iters, args.warmup, args.threads)
    command = "OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_rga_fold.py " + " ".join(
        f"--batch-sizes {' '.join(map(str, args.batch_sizes))} --iters {args.iters} --warmup {args.warmup}".split()
    )
    text = to_markdown(report, command)
    print(text)
    if not args.no_write:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
