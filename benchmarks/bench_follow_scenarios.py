"""Follow-scenario benchmark: the real follow loop on generated scenes, scored per frame.

Scenes (edgereid.scenario.library.build_scenarios) are composited from PKU-Reid crops; people
are found by an ORACLE detector (ground-truth boxes, 10 % random misses, 2 % box jitter), so
the numbers measure tracker + target lock + embedder, not a person detector.

    .venv/bin/python benchmarks/bench_follow_scenarios.py                # OSNet, 5 targets x 2 seeds
    .venv/bin/python benchmarks/bench_follow_scenarios.py --rga-sc       # + a deterministic RGA-SC bundle
    .venv/bin/python benchmarks/bench_follow_scenarios.py --write benchmarks/results/follow_scenarios.md
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgereid.preprocess import PreprocessSpec  # noqa: E402
from edgereid.runtime.embedder import OnnxruntimeEmbedder, load_embedder  # noqa: E402
from edgereid.scenario.library import build_scenarios, identities, rank_by_likeness  # noqa: E402
from edgereid.scenario.runner import run_scene  # noqa: E402

ASSETS = ROOT.parent / "shared" / "assets"
DEFAULT_TARGETS = ("003", "001", "007", "013", "020")


def pick_distractors(pku: Path, embedder, target: str, pool: List[str]):
    ranked = rank_by_likeness(pku, embedder, target, pool)
    return [ranked[-1][0], ranked[-2][0]], ranked[0][0], ranked[0][1], ranked[-1][1]


def measured_scale(embedder, pku: Path) -> Dict:
    """The embedder's similarity scale on PKU identities outside the scenes' pool (the 31st on), as a
    bundle exported with labelled crops carries it: the lock derives its thresholds from it."""
    from edgereid.evaluation.similarity import measure_bundle_similarity
    from edgereid.scenario.library import load_views

    others = identities(pku)[30:]
    crops = [c for pid in others for cam in (1, 2) for c in load_views(pku, pid, cam, range(1, 9))]
    return measure_bundle_similarity(embedder, crops, [int(pid) for pid in others for _ in range(16)],
                                     source=f"{len(others)} PKU identities outside the scenes")


def run_model(name: str, embedder, pku: Path, targets, frames: int, seeds: int, picker=None,
              detector=None) -> Dict:
    """scenario -> list of metric dicts over targets x seeds; plus choices, latency and the scale."""
    pool = identities(pku)[:30]
    scale = measured_scale(embedder, pku)
    per_scene: Dict[str, List[dict]] = {}
    embed_ms: List[float] = []
    choices = []
    for target in targets:
        different, alike, s_alike, s_diff = pick_distractors(pku, picker or embedder, target, pool)
        choices.append((target, different, alike, s_alike, s_diff))
        scenes = build_scenarios(pku, target, different, alike, frames=frames)
        for seed in range(seeds):
            for scene_name, scene in scenes.items():
                run = run_scene(scene, embedder, dropout=0.1, jitter=0.02, seed=seed, detector=detector,
                                similarity_scale=scale)
                per_scene.setdefault(scene_name, []).append(run.metrics.to_dict())
                if "embed" in run.summary.latency_ms:
                    embed_ms.append(run.summary.latency_ms["embed"]["mean"])
        print(f"[{name}] target {target}: done", file=sys.stderr)
    return {"scenes": per_scene, "choices": choices, "embed_ms": float(np.mean(embed_ms)) if embed_ms else None,
            "scale": scale["impostor"]}


def table(result: Dict) -> str:
    lines = ["| scenario | runs | lock precision mean (min) | target-visible frames LOCKED | switches to a "
             "distractor | frames on a distractor (driven toward) | re-lock frames median / max | never re-locked |",
             "|---|---|---|---|---|---|---|---|"]
    for name, runs in result["scenes"].items():
        prec = [r["lock_precision"] for r in runs]
        vis = [r["locked_visible"] for r in runs]
        relocks = [x for r in runs for x in r["relock_frames"]]
        done = [x for x in relocks if x is not None]
        never = sum(x is None for x in relocks)
        relock = f"{np.median(done):.0f} / {max(done)}" if done else "-"
        lines.append(f"| {name} | {len(runs)} | {np.mean(prec):.3f} ({min(prec):.3f}) | {np.mean(vis):.3f} | "
                     f"{sum(r['switches'] for r in runs)} | {sum(r['distractor_frames'] for r in runs)} "
                     f"({sum(r['drive_distractor_frames'] for r in runs)}) | "
                     f"{relock} | {never} of {len(relocks)} |")
    return "\n".join(lines)


def rga_sc_embedder(tmp: Path):
    try:
        from edgereid.export import export_bundle
    except ImportError as exc:  # pragma: no cover - depends on the export engineer's package
        return None, f"edgereid.export is not importable ({exc})"
    try:
        bundle = export_bundle(tmp / "rga_sc", arch="rga_sc", target="cpu", precision="fp32", progress=False)
    except Exception as exc:  # report, do not hide
        return None, f"export_bundle(arch='rga_sc') failed: {type(exc).__name__}: {exc}"
    return load_embedder(bundle, backend="ort", threads=1), None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pku", default=str(ASSETS / "reid_data" / "pku_reid"))
    p.add_argument("--osnet", default=str(ASSETS / "reid" / "osnet_x0_25_msmt17.onnx"))
    p.add_argument("--targets", nargs="+", default=list(DEFAULT_TARGETS))
    p.add_argument("--frames", type=int, default=120)
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--rga-sc", action="store_true", help="also run a deterministic (untrained) RGA-SC bundle")
    p.add_argument("--rga-targets", type=int, default=1, help="targets for the (slow) RGA-SC run")
    p.add_argument("--detector", help="a real person detector (e.g. yolox_nano.onnx) instead of the oracle")
    p.add_argument("--write", help="write the markdown report here")
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    pku = Path(args.pku)
    start = time.time()
    osnet = OnnxruntimeEmbedder(args.osnet, PreprocessSpec(256, 128), threads=1).activate()
    detector = None
    if args.detector:
        from edgereid.runtime.detector import load_detector

        detector = load_detector(args.detector, conf=0.3, threads=1)
    results = {"OSNet x0.25 (MSMT17, trained)": run_model("osnet", osnet, pku, args.targets, args.frames, args.seeds,
                                                          detector=detector)}
    rga_note = "not run (pass --rga-sc)"
    if args.rga_sc:
        with tempfile.TemporaryDirectory() as tmp:
            rga, why = rga_sc_embedder(Path(tmp))
            if rga is None:
                rga_note = why
            else:
                with rga:
                    results["RGA-SC (deterministic untrained weights)"] = run_model(
                        "rga_sc", rga, pku, args.targets[: args.rga_targets], args.frames, 1, picker=osnet)
                rga_note = "run"
    seconds = time.time() - start
    report = render(results, args, rga_note, seconds)
    print(report)
    if args.write:
        Path(args.write).write_text(report)
    return 0


def render(results: Dict, args, rga_note: str, seconds: float) -> str:
    import cv2
    import onnxruntime

    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?") \
        if os.path.exists("/proc/cpuinfo") else platform.processor()
    out = ["# Follow scenarios", "",
           f"Machine: {cpu}, {os.cpu_count()} cores (shared with other jobs); Python {platform.python_version()}, "
           f"numpy {np.__version__}, OpenCV {cv2.__version__}, onnxruntime {onnxruntime.__version__}. "
           f"Run time {seconds:.0f} s.", "",
           f"Reproduce: `.venv/bin/python benchmarks/bench_follow_scenarios.py --targets {' '.join(args.targets)} "
           f"--frames {args.frames} --seeds {args.seeds}{' --rga-sc' if args.rga_sc else ''}"
           f"{' --detector ' + Path(args.detector).name if args.detector else ''}`", "",
           "Scenes: PKU-Reid crops composited on a synthetic street, 640x360, 10 fps, "
           f"{args.frames} frames each; ORACLE detector (ground-truth boxes of people >= 50 % visible, 10 % "
           "random misses, 2 % box jitter, score 0.45 when 50-80 % visible): these numbers measure the "
           "tracker, the target lock and the embedder, not a person detector. Default config "
           "(edgereid/runtime/follow_defaults.ini). A run = one target identity x one detector-noise seed.", "",
           "Metrics (edgereid/scenario/metrics.py): lock precision = LOCKED frames whose box is the target / "
           "LOCKED frames; target-visible frames LOCKED = share of frames with the target >= 50 % visible in "
           "which the lock is on the target; switches = times the lock moved onto a distractor; re-lock = "
           "frames from the target's reappearance (after >= 3 hidden frames) to LOCKED on it again; driven toward = "
           "frames on a distractor with a drive command (not STOP) and IoU < 0.5 with the target (boxes of two "
           "people walking side by side can match the other slightly better: counted on a distractor, not "
           "driven toward).", ""]
    for model, result in results.items():
        out += [f"## {model}", "", f"Detector: {'YOLOX-Nano (real)' if args.detector else 'oracle'}; lock thresholds "
                f"derived from the embedder's measured scale, impostor quantiles {result['scale']}.", "",
                table(result), ""]
        if result["embed_ms"] is not None:
            out += [f"Mean embed stage per frame: {result['embed_ms']:.1f} ms (only the crops that need a check "
                    "are embedded: the target while LOCKED, every person while LOST).", ""]
        out += ["Targets and distractors (likeness = mean OSNet cosine to the target's back views):", ""]
        for target, diff, alike, s_alike, s_diff in result["choices"]:
            out.append(f"- target {target}: different {diff[0]}, {diff[1]} (likeness {s_diff:.2f}); "
                       f"alike {alike} (likeness {s_alike:.2f})")
        out.append("")
    if "RGA-SC (deterministic untrained weights)" not in results:
        out += ["## RGA-SC", "", f"Deterministic RGA-SC bundle: {rga_note}.", ""]
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
