"""``make demo``: export a bundle, then follow a person in a scene made offline.

Runs on a fresh machine with no network and no ../shared assets:

1. export the folded RGA-SC (deterministic UNTRAINED weights: no official checkpoint can be
   downloaded here) for Xavier with INT8 (model.onnx, QDQ model, TensorRT cache, trtexec script,
   DLA report) and for the CPU, calibrating on crops cut from the two street photos inside the
   Ultralytics wheel (so few crops that the accuracy report is labelled a demo);
2. write a short scene video from those photos (edgereid.scenario.demo);
3. run the follow loop on it (OpenCV's HOG people detector, since no detector weights can be
   downloaded), writing the JSON-lines log and an annotated video.

Untrained RGA-SC embeddings cannot tell people apart, so when the trained OSNet of
../shared/assets is present the follow step uses it (exported with ``--onnx``) instead, and
says which it used.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from pathlib import Path

import numpy as np

LOG = logging.getLogger("edgereid.demo")
SHARED_OSNET = Path(__file__).resolve().parents[2] / "shared" / "assets" / "reid" / "osnet_x0_25_msmt17.onnx"


def demo_calibration_crops(copies: int = 4) -> list[np.ndarray]:
    """The demo people plus mirrored / shifted copies: a tiny but valid calibration set."""
    from edgereid.scenario.demo import demo_crops

    crops = []
    for crop in demo_crops().values():
        h, w = crop.shape[:2]
        for k in range(copies):
            dy, dx = (k * h) // 20, (k * w) // 20
            view = crop[dy : h - dy // 2, dx : w - dx // 2]
            crops.append(np.ascontiguousarray(view[:, ::-1] if k % 2 else view))
    return crops


def run_demo(out: Path, frames: int = 80) -> dict:
    """Everything ``make demo`` does; returns a summary dict (also written to summary.json)."""
    from edgereid.calibration.crops import CropSet
    from edgereid.export import export_bundle
    from edgereid.models import UntrainedWeightsWarning
    from edgereid.runtime.session import run_follow
    from edgereid.scenario.demo import write_demo_video

    out.mkdir(parents=True, exist_ok=True)
    crops = demo_calibration_crops()
    calib = CropSet(calib=crops[::2] + crops[1::4], holdout=crops[3::4], holdout_labels=None,
                    source={"kind": "demo", "what": "people cut from ultralytics/assets bus.jpg, zidane.jpg"})
    summary: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UntrainedWeightsWarning)
        LOG.info("1/3 exporting folded RGA-SC (untrained demo weights) for xavier INT8 and cpu ...")
        xavier = export_bundle(out / "rga_sc-xavier-int8", arch="rga_sc", target="xavier", precision="int8",
                               calib_crops=calib, calib_size=len(calib.calib), demo=True, force=True)
        cpu = export_bundle(out / "rga_sc-cpu", arch="rga_sc", target="cpu", force=True)
    summary["bundles"] = {"xavier_int8": str(xavier.root), "cpu": str(cpu.root)}
    summary["xavier_files"] = sorted(xavier.manifest.files)

    follow_bundle = cpu
    if SHARED_OSNET.is_file():
        LOG.info("   ../shared/assets has the trained OSNet: exporting it for the follow step ...")
        follow_bundle = export_bundle(out / "osnet-cpu", onnx=str(SHARED_OSNET), target="cpu", force=True)
    trained = follow_bundle is not cpu
    summary["follow_embedder"] = follow_bundle.manifest.arch + (
        " (trained OSNet from ../shared/assets)" if trained else " (UNTRAINED: cannot tell people apart)"
    )

    LOG.info("2/3 writing the offline demo scene ...")
    scene = write_demo_video(out / "scene", frames=frames)
    LOG.info("3/3 following the person in front of the car (HOG detector) ...")
    log_path, video_path = out / "follow.jsonl", out / "follow.mp4"
    if log_path.exists():
        log_path.unlink()
    result = run_follow(str(scene.video), follow_bundle.root, detector=None, output=str(log_path),
                        record=str(video_path))
    summary["follow"] = {"log": str(log_path), "video": str(video_path), "summary": result.one_line(),
                         "state_frames": dict(result.state_frames)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edgereid.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")
    parser.add_argument("--frames", type=int, default=80, help="length of the demo scene in frames")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("edgereid.runtime").setLevel(logging.WARNING)
    from edgereid.errors import EdgeReidError

    try:
        summary = run_demo(Path(args.out), frames=args.frames)
    except EdgeReidError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    print(f"\nDone. Open {summary['follow']['video']} to watch; JSON log: {summary['follow']['log']}.",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
