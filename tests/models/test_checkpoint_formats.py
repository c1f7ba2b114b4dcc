"""Official checkpoint layouts load strictly and give back the saved tensors and outputs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from rrid_checkpoint_builders import official_classes, save_official_module, write_torch041_file

from edgereid.models import load_model
from edgereid.models.checkpoint import load_official_weights, read_checkpoint
from edgereid.models.rrid import build_rrid

NUM_CLASSES = 4  # the official files carry the training classifiers (fc_*_list)


@pytest.fixture(scope="module")
def source_rrid():
    """A trained-looking RRID (seed 7, different from load_model's seed 0) with classifiers."""
    torch.manual_seed(7)
    model = build_rrid(num_classes=NUM_CLASSES)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.num_batches_tracked.fill_(1234)
    return model


@pytest.fixture(scope="module")
def official_files(source_rrid, tmp_path_factory):
    """The same model saved the three ways an official RRID checkpoint can look."""
    folder = tmp_path_factory.mktemp("rrid_ckpt")
    files = {name: folder / f"{name}.pth" for name in ("zip", "legacy", "torch041")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch: "Couldn't retrieve source code for container"
        save_official_module(source_rrid, files["zip"])
        save_official_module(source_rrid, files["legacy"], legacy=True)
    write_torch041_file(source_rrid, files["torch041"])
    return files


@pytest.fixture(scope="module")
def crop():
    return torch.randn(1, 3, 384, 128, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("fmt", ["zip", "legacy", "torch041"])
def test_rrid_pickled_dataparallel_module_reads_back_every_tensor(fmt, official_files, source_rrid):
    state = read_checkpoint(official_files[fmt])
    expected = source_rrid.state_dict()
    assert sorted(state) == sorted(f"module.{k}" for k in expected)
    for key, value in expected.items():
        got = state[f"module.{key}"]
        assert got.dtype == value.dtype and got.device.type == "cpu"
        assert torch.equal(got, value), key


def test_handmade_torch041_file_is_a_real_torch_legacy_file(tmp_path):
    """torch's own (code-executing) legacy reader accepts our hand-made 0.4.1 file: the writer is faithful."""
    small = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4))
    path = tmp_path / "small041.pth"
    write_torch041_file(small, path)
    raw = path.read_bytes()
    for name in (b"torch.cuda\nFloatStorage", b"cuda:0", b"torch.nn.backends.thnn\n_get_thnn_function_backend"):
        assert name in raw
    with official_classes(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = torch.load(path, weights_only=False, map_location="cpu")
    assert type(loaded).__name__ == "DataParallel"
    ours = read_checkpoint(path)
    assert sorted(ours) == sorted(loaded.state_dict())
    assert all(torch.equal(ours[k], v) for k, v in loaded.state_dict().items())


def test_load_model_rrid_from_official_file_reproduces_the_source_outputs(official_files, source_rrid, crop):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a checkpoint given: no "untrained" warning
        model = load_model("rrid", str(official_files["torch041"]))
    ours = model.state_dict()
    source = source_rrid.state_dict()
    assert all(torch.equal(v, source[k]) for k, v in ours.items())  # fc_* ignored, everything else loaded
    with torch.no_grad():
        assert torch.allclose(model(crop), source_rrid(crop), atol=1e-5)


def test_load_model_rrid_flip_average_from_official_file(official_files, source_rrid, crop):
    model = load_model("rrid", official_files["zip"], flip_average=True)
    with torch.no_grad():
        raw = source_rrid(crop) + source_rrid(torch.flip(crop, [3]))
    expected = raw / raw.norm(dim=1, keepdim=True)
    with torch.no_grad():
        assert torch.allclose(model(crop), expected, atol=1e-5)


def test_num_batches_tracked_may_be_absent(source_rrid, tmp_path):
    path = tmp_path / "no_nbt.pth"
    write_torch041_file(source_rrid, path, drop_num_batches_tracked=True)
    state = read_checkpoint(path)
    assert not any(k.endswith("num_batches_tracked") for k in state)
    torch.manual_seed(0)
    model = build_rrid()
    load_official_weights(model, state, arch="rrid")
    assert torch.equal(model.base.conv1.weight, source_rrid.base.conv1.weight)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_plain_state_dict_with_and_without_module_prefix(legacy, source_rrid, tmp_path):
    saved = source_rrid.state_dict()  # a real state_dict(): OrderedDict with _metadata, fc_* included
    expected = {k: v for k, v in saved.items() if not k.startswith("fc_")}
    for name, state in (("plain", saved), ("prefixed", {f"module.{k}": v for k, v in expected.items()})):
        path = tmp_path / f"{name}.pth"
        torch.save(state, path, _use_new_zipfile_serialization=not legacy)
        torch.manual_seed(0)
        model = build_rrid()
        load_official_weights(model, read_checkpoint(path), arch="rrid")
        assert all(torch.equal(v, expected[k]) for k, v in model.state_dict().items()), name


@pytest.mark.parametrize("legacy", [True, False], ids=["torch04-stream", "zip"])
def test_rga_official_dict_loads_strictly(legacy, tmp_path):
    from edgereid.models.rga import build_rga

    torch.manual_seed(11)
    source = build_rga(branch="sc", num_classes=5)
    state = {k: v for k, v in source.state_dict().items() if not k.endswith("num_batches_tracked")}
    checkpoint = {
        "state_dict": state,  # includes the training classifier cls.weight
        "epoch": 600,
        "best_top1": np.float64(0.883),  # numpy scalar, as the official trainer stores it
        "optimizer": {"state": {0: {"momentum_buffer": torch.ones(3)}}, "param_groups": [{"lr": 8e-6}]},
    }
    path = tmp_path / "checkpoint_600.pth.tar"
    torch.save(checkpoint, path, _use_new_zipfile_serialization=not legacy)
    read = read_checkpoint(path)
    assert sorted(read) == sorted(state) and "cls.weight" in read
    model = load_model("rga_sc", path)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items() if k != "cls.weight")
