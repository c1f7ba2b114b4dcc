"""An offline demo scene for ``make demo``: people cut from the two photos inside the ultralytics
wheel (``ultralytics/assets/bus.jpg``, ``zidane.jpg``), composited into a short video.

No ../shared assets needed. The crop boxes below were measured by eye on those photos (pixel
xyxy in the original images). The followed person (beige coat, bus.jpg) stands in front of the
car and walks away; a man in a black coat crosses in front of them, another passer-by walks
behind, and a third (zidane.jpg, upper body) crosses late.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

from edgereid.errors import MissingDependencyError
from edgereid.lazy import require
from edgereid.scenario.scene import Actor, Scene

# photo -> name -> (x1, y1, x2, y2) in the photo's pixels
DEMO_CROPS: Dict[str, Dict[str, Tuple[int, int, int, int]]] = {
    "bus.jpg": {"target": (48, 395, 250, 905), "black_coat": (228, 405, 352, 865), "walker": (670, 380, 810, 880)},
    "zidane.jpg": {"coach": (750, 40, 1150, 720)},
}


def ultralytics_assets() -> Path:
    """Folder of the photos shipped inside the installed ultralytics wheel."""
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("the offline demo scene cuts people from photos inside the ultralytics "
                                     "wheel; install it: pip install 'edgereid[ultralytics]'.")
    return Path(list(spec.submodule_search_locations)[0]) / "assets"


def demo_crops() -> Dict[str, np.ndarray]:
    """name -> BGR crop (numpy array) cut from the ultralytics photos."""
    cv2 = require("cv2", "cutting the demo crops")
    crops = {}
    for photo, boxes in DEMO_CROPS.items():
        image = cv2.imread(str(ultralytics_assets() / photo))
        if image is None:
            raise MissingDependencyError(f"cannot read {photo} from the ultralytics wheel's assets folder.")
        for name, (x1, y1, x2, y2) in boxes.items():
            crops[name] = image[y1:y2, x1:x2].copy()
    return crops


def demo_scene(frames: int = 80, width: int = 640, height: int = 360) -> Scene:
    """The demo :class:`Scene` (10 fps: 80 frames = 8 s)."""
    crops = demo_crops()
    n = frames
    actors = [
        Actor("target", [(0, crops["target"])], [(0, 0.5, 0.8), (n - 1, 0.56, 0.5)], "bus.jpg beige coat"),
        Actor("black_coat", [(0, crops["black_coat"])], [(n // 3, 1.2, 0.9), (n // 3 + 30, -0.2, 0.9)],
              "bus.jpg black coat"),
        Actor("walker", [(0, crops["walker"])], [(n // 5, -0.1, 0.45), (n // 5 + 40, 1.1, 0.45)], "bus.jpg right"),
        Actor("coach", [(0, crops["coach"])], [(2 * n // 3, -0.2, 0.55), (n - 1, 0.3, 0.55)], "zidane.jpg"),
    ]
    return Scene("demo", actors, n, width, height, seed=7,
                 description="offline demo: target walks away, one man crosses in front, two pass behind")


@dataclass
class DemoFiles:
    video: Path  # the scene as .mp4 (mp4v)
    truth: Path  # JSON lines: {"frame", "names", "boxes", "visible"} per frame
    enroll_dir: Path  # three crops of the target, for `reid-follow --enroll`


def write_demo_video(out_dir: str | Path, frames: int = 80, fps: float = 10.0) -> DemoFiles:
    """Render the demo scene into ``out_dir``: ``demo.mp4``, ``demo_truth.jsonl``, ``enroll/``.

    Example (what ``make demo`` runs)::

        python -m edgereid.scenario.demo build/demo          # or write_demo_video("build/demo") from Python
        reid-follow --source build/demo/demo.mp4 --bundle BUNDLE --output build/demo/follow.jsonl \\
            --record build/demo/follow.mp4
    """
    cv2 = require("cv2", "writing the demo video")
    out = Path(out_dir)
    (out / "enroll").mkdir(parents=True, exist_ok=True)
    scene = demo_scene(frames)
    video = out / "demo.mp4"
    tmp = out / ".demo.partial.mp4"
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (scene.width, scene.height))
    lines: List[str] = []
    try:
        for i in range(len(scene)):
            image, truth = scene.render(i)
            writer.write(image)
            lines.append(json.dumps({"frame": i, "names": truth.names, "boxes": truth.boxes.round(1).tolist(),
                                     "visible": truth.visible.round(3).tolist()}))
    finally:
        writer.release()
    tmp.replace(video)
    (out / "demo_truth.jsonl").write_text("\n".join(lines) + "\n")
    target = scene.actors[0].views[0][1]
    for k, scale in enumerate((1.0, 0.8, 0.6)):
        h, w = target.shape[:2]
        cv2.imwrite(str(out / "enroll" / f"target_{k}.png"),
                    cv2.resize(target, (max(int(w * scale), 8), max(int(h * scale), 16))))
    return DemoFiles(video, out / "demo_truth.jsonl", out / "enroll")


if __name__ == "__main__":  # python -m edgereid.scenario.demo OUT_DIR [FRAMES]
    import sys

    files = write_demo_video(sys.argv[1] if len(sys.argv) > 1 else "demo",
                             int(sys.argv[2]) if len(sys.argv) > 2 else 80)
    print(files.video)
