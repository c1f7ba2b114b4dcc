"""Bad input: one clear message, exit status 2, nothing half-written (through reid-export's main)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edgereid.cli.export import main


def _run(capsys, out: Path, *argv: str) -> str:
    code = main([*argv, "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    assert err.startswith("reid-export: error:")
    if out.parent.is_dir():
        leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")]
        assert leftovers == []
    return err


def _crops(root: Path, n_ids: int = 3, per: int = 2) -> Path:
    rng = np.random.default_rng(0)
    for pid in range(1, n_ids + 1):
        (root / f"{pid:03d}").mkdir(parents=True)
        for k in range(per):
            cv2.imwrite(str(root / f"{pid:03d}" / f"{k + 1}_a.png"), rng.integers(0, 255, (48, 24, 3), np.uint8))
    return root


def test_missing_checkpoint(tmp_path, capsys):
    err = _run(capsys, tmp_path / "b", "--arch", "rga_sc", "--checkpoint", str(tmp_path / "nope.pth.tar"))
    assert "does not exist" in err and not (tmp_path / "b").exists()


def test_corrupt_checkpoint(tmp_path, capsys):
    bad = tmp_path / "ckpt.pth.tar"
    bad.write_bytes(b"\x00garbage, not a checkpoint" * 10)
    err = _run(capsys, tmp_path / "b", "--arch", "rga_sc", "--checkpoint", str(bad))
    assert "ckpt.pth.tar" in err and not (tmp_path / "b").exists()


def test_checkpoint_of_another_architecture(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    from edgereid.models import build_model

    ckpt = tmp_path / "rrid_as_rga.pth.tar"
    torch.save({"state_dict": build_model("rrid").state_dict(), "epoch": 1}, ckpt)
    err = _run(capsys, tmp_path / "b", "--arch", "rga_sc", "--checkpoint", str(ckpt))
    assert "rrid_as_rga.pth.tar" in err and not (tmp_path / "b").exists()


@pytest.mark.assets
def test_onnx_without_the_named_input(tmp_path, capsys, osnet_onnx):
    err = _run(capsys, tmp_path / "b", "--onnx", str(osnet_onnx), "--input-name", "input.1")
    assert "has no input named 'input.1'" in err and "['images']" in err


@pytest.mark.assets
@pytest.mark.parametrize("case", ["missing", "empty", "unreadable", "too_few"])
def test_bad_calibration_dir(tmp_path, capsys, osnet_onnx, case):
    calib = tmp_path / "calib"
    expected = {"missing": "does not exist", "empty": "holds no images", "unreadable": "cannot be read",
                "too_few": "--calib-size"}[case]
    if case == "empty":
        calib.mkdir()
    elif case == "unreadable":
        _crops(calib)
        (calib / "001" / "2_b.jpg").write_bytes(b"broken")
    elif case == "too_few":
        _crops(calib)
    size = "7" if case == "unreadable" else "100"  # 7 = every image, so the broken one is read
    err = _run(capsys, tmp_path / "b", "--onnx", str(osnet_onnx), "--target", "cpu", "--int8",
               "--calib-data", str(calib), "--calib-size", size, "--holdout", "0")
    assert expected in err and not (tmp_path / "b").exists()


@pytest.mark.assets
def test_out_not_empty_without_force(tmp_path, capsys, osnet_onnx):
    out = tmp_path / "b"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    err = _run(capsys, out, "--onnx", str(osnet_onnx))
    assert "not empty" in err and "--force" in err
    assert (out / "keep.txt").read_text() == "mine"


@pytest.mark.assets
def test_out_not_creatable(tmp_path, capsys, osnet_onnx):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    err = _run(capsys, blocker / "b", "--onnx", str(osnet_onnx))
    assert "is a file, not a directory" in err


@pytest.mark.assets
def test_int8_without_calibration_data(tmp_path, capsys, osnet_onnx):
    err = _run(capsys, tmp_path / "b", "--onnx", str(osnet_onnx), "--target", "xavier", "--int8")
    assert "needs calibration data" in err and "--calib-data" in err and not (tmp_path / "b").exists()


@pytest.mark.assets
def test_dla_with_dynamic_batch(tmp_path, capsys, osnet_onnx):
    err = _run(capsys, tmp_path / "b", "--onnx", str(osnet_onnx), "--target", "xavier", "--dla",
               "--dynamic-batch", "1:4:8")
    assert "--dla needs a static batch" in err and not (tmp_path / "b").exists()


def test_x3_absent_or_unavailable_is_clear(tmp_path, capsys, monkeypatch):
    import importlib

    real = importlib.import_module

    def fake(name, *a, **k):
        if name == "edgereid.x3.export":
            raise ImportError("No module named 'edgereid.x3.export'")
        return real(name, *a, **k)

    monkeypatch.setattr(importlib, "import_module", fake)
    calib = _crops(tmp_path / "calib", n_ids=4, per=2)
    err = _run(capsys, tmp_path / "b", "--arch", "rga_sc", "--target", "x3", "--calib-data", str(calib),
               "--calib-size", "2", "--x3-cores", "2")
    assert "--target x3 is not available" in err
