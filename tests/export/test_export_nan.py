"""A model that outputs NaN or Inf stops the export: one message, exit 2, nothing written."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgereid.bundle import json_text
from edgereid.cli.export import main
from edgereid.errors import InputError
from edgereid.export.parity import check_finite


def _model(path: Path, kind: str) -> Path:
    """Conv -> (MVN over a constant channel: 0/0 = NaN | Div by a zero constant: Inf) -> pooled (N, 4)."""
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.3, (4, 3, 3, 3)).astype(np.float32)
    w[1] = 0.0  # channel 1 is constant zero: its variance is 0
    inits = [numpy_helper.from_array(w, "w")]
    nodes = [helper.make_node("Conv", ["images", "w"], ["c"], pads=[1, 1, 1, 1])]
    if kind == "nan":
        nodes.append(helper.make_node("MeanVarianceNormalization", ["c"], ["n"], axes=[2, 3]))
    else:
        inits.append(numpy_helper.from_array(np.zeros((1, 4, 1, 1), np.float32), "z"))
        nodes += [helper.make_node("Abs", ["c"], ["a"]), helper.make_node("Div", ["a", "z"], ["n"])]
    nodes += [helper.make_node("GlobalAveragePool", ["n"], ["p"]),
              helper.make_node("Flatten", ["p"], ["emb"])]
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["n", 3, 32, 16])
    y = helper.make_tensor_value_info("emb", TensorProto.FLOAT, ["n", 4])
    graph = helper.make_graph(nodes, "g", [x], [y], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _crops(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for pid in range(1, 5):
        (root / f"{pid:03d}").mkdir(parents=True)
        for k in range(3):
            cv2.imwrite(str(root / f"{pid:03d}" / f"{k + 1}_a.png"), rng.integers(0, 255, (64, 32, 3), np.uint8))
    return root


@pytest.mark.parametrize("kind, extra", [("nan", []), ("nan", ["--int8"]), ("inf", [])])
def test_non_finite_model_is_refused(tmp_path, capsys, kind, extra):
    path = _model(tmp_path / f"{kind}.onnx", kind)
    out = tmp_path / "b"
    calib = _crops(tmp_path / "crops")
    code = main(["--onnx", str(path), "--target", "cpu", *extra, "--calib-data", str(calib), "--calib-size", "6",
                 "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and err.count("\n") == 1
    assert err.startswith("reid-export: error: the model outputs NaN or Inf")
    assert "model.onnx on " in err and "nothing was written" in err
    assert not out.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".b")] == []


def test_check_finite_counts_crops():
    ok = np.ones((3, 4), np.float32)
    check_finite({"a": ok, "b": ok})
    bad = ok.copy()
    bad[1, 2] = np.inf
    bad[2] = np.nan
    with pytest.raises(InputError, match="b on 2 of 3 crops"):
        check_finite({"a": ok, "b": bad})


def test_project_json_never_holds_nan():
    with pytest.raises(ValueError):
        json_text({"cosine": math.nan})
    text = json_text({"a": [1.0, math.inf], "b": {"c": math.nan}, "d": 2}, nan_as_null=True)
    assert json.loads(text) == {"a": [1.0, None], "b": {"c": None}, "d": 2}
