"""Two bundles whose similarity scales differ make the same decisions on real footage.

The second bundle is the shared OSNet behind a wrapper that L2-normalises its output and appends
a constant: every cosine becomes (cos + c^2) / (1 + c^2), pulled toward 1. Each bundle measures
its own scale at export (labelled PKU crops), derives different thresholds from its manifest, and
the follow loop must take the same decision on every frame of the walking video.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edgereid.benchmarks.follow import bench_follow
from edgereid.runtime.thresholds import derive_thresholds

pytestmark = pytest.mark.assets
C = 1.0  # cos' = (cos + 1) / 2


def squeezing_wrapper(src, dst, c=C):
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    out = graph.output[0].name
    graph.node.extend([
        helper.make_node("LpNormalization", [out], ["unit"], axis=1, p=2),
        helper.make_node("Shape", ["unit"], ["unit_shape"]),
        helper.make_node("Gather", ["unit_shape", "zero"], ["batch"], axis=0),
        helper.make_node("Unsqueeze", ["batch", "axes0"], ["batch1"]),
        helper.make_node("Concat", ["batch1", "one"], ["pad_shape"], axis=0),
        helper.make_node("ConstantOfShape", ["pad_shape"], ["pad"],
                         value=numpy_helper.from_array(np.array([c], np.float32))),
        helper.make_node("Concat", ["unit", "pad"], ["squeezed"], axis=1),
    ])
    graph.initializer.extend([numpy_helper.from_array(np.array(0, np.int64), "zero"),
                              numpy_helper.from_array(np.array([0], np.int64), "axes0"),
                              numpy_helper.from_array(np.array([1], np.int64), "one")])
    del graph.output[:]
    graph.output.extend([helper.make_tensor_value_info("squeezed", onnx.TensorProto.FLOAT, ["batch", 513])])
    if model.opset_import[0].version < 13:  # Unsqueeze takes axes as an input from opset 13
        model = onnx.version_converter.convert_version(model, 13)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))


def test_osnet_and_a_cosine_squeezing_wrapper_make_the_same_decisions(tmp_path, osnet_onnx, pku_dir, walking_video,
                                                                      yolox_onnx):
    pytest.importorskip("onnxslim", reason="exporting needs the export extra (not on the car)")
    from edgereid.export.api import export_bundle

    wrapped = tmp_path / "squeezed.onnx"
    squeezing_wrapper(osnet_onnx, wrapped)
    bundles, thresholds = [], []
    for name, model in (("osnet", osnet_onnx), ("squeezed", wrapped)):
        bundle = export_bundle(tmp_path / name, onnx=str(model), target="cpu", calib_data=str(pku_dir),
                               calib_size=64, progress=False)
        bundles.append(tmp_path / name)
        thresholds.append(derive_thresholds(bundle.manifest.extra["similarity"]))
    plain, squeezed = thresholds
    assert squeezed["accept_threshold"] == pytest.approx((plain["accept_threshold"] + C) / (1 + C), abs=2e-3)
    assert squeezed["accept_margin"] == pytest.approx(plain["accept_margin"] / (1 + C), abs=2e-3)
    assert squeezed["reject_threshold"] > plain["reject_threshold"] + 0.2  # really another scale
    gt = Path(__file__).resolve().parents[1] / "data" / "one_by_one_gt.txt"
    runs = [bench_follow(str(walking_video), str(b), str(yolox_onnx), max_frames=260, det_conf=0.3,
                         tegrastats=False, gt=str(gt), target_id=1)["ground_truth"]["per_frame"] for b in bundles]
    decisions = [[(r["frame"], r["state"], r["commanded"]) for r in run] for run in runs]
    assert decisions[0] == decisions[1]
    assert sum(state == "LOCKED" for _, state, _ in decisions[0]) >= 100
