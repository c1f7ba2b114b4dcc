"""Official RGA checkpoints ({'state_dict', 'epoch', 'best_top1', 'optimizer'}, torch 0.4 era)
load strictly through edgereid.models.load_model, into the official and the folded model."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edgereid.errors import CheckpointError  # noqa: E402
from edgereid.models import UntrainedWeightsWarning, load_model  # noqa: E402
from edgereid.models.rga import build_rga  # noqa: E402

NUM_TRAIN_IDS = 751  # Market-1501's training identities: the size of the classifier cls


def _official_checkpoint(branch: str, path, seed: int):
    """Write a file shaped like main_imgreid.py's save_checkpoint output; return the source model."""
    torch.manual_seed(seed)
    source = build_rga(branch)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in source.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.copy_(0.1 * torch.randn(module.running_mean.shape, generator=gen))
                module.running_var.copy_(0.5 + torch.rand(module.running_var.shape, generator=gen))
    # torch 0.4.0 wrote no num_batches_tracked; the training classifier is saved with the model.
    state = {k: v for k, v in source.state_dict().items() if not k.endswith("num_batches_tracked")}
    state["cls.weight"] = 0.001 * torch.randn(NUM_TRAIN_IDS, 2048, generator=gen)
    checkpoint = {
        "state_dict": state,
        "epoch": 600,
        "best_top1": 0.883,
        "optimizer": {
            "state": {},
            "param_groups": [{"lr": 8e-6, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 5e-4,
                              "amsgrad": False, "params": list(range(len(state)))}],
        },
    }  # fmt: skip
    torch.save(checkpoint, path, _use_new_zipfile_serialization=False)
    return source


@pytest.fixture(scope="module")
def rga_sc_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("rga") / "checkpoint_600.pth.tar"
    source = _official_checkpoint("sc", path, seed=21)
    return path, source


def test_official_checkpoint_loads_strictly_and_reproduces_outputs(rga_sc_checkpoint):
    path, source = rga_sc_checkpoint
    with warnings.catch_warnings():
        warnings.simplefilter("error", UntrainedWeightsWarning)  # a checkpoint means no warning
        model = load_model("rga_sc", str(path))
    loaded = model.state_dict()
    for key, value in source.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(loaded[key], value), key
    x = torch.randn(1, 3, 256, 128, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.equal(model(x), source(x))
    assert not model.training


def test_official_checkpoint_loads_into_folded_model(rga_sc_checkpoint):
    path, source = rga_sc_checkpoint
    folded = load_model("rga_sc", str(path), folded=True)
    assert folded.folded
    x = torch.randn(1, 3, 256, 128, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected, got = source(x).numpy(), folded(x).numpy()
    cos = float((expected * got).sum() / np.linalg.norm(expected) / np.linalg.norm(got))
    assert cos >= 0.99999


def test_rga_s_checkpoint_is_refused_as_rga_sc(tmp_path):
    path = tmp_path / "checkpoint_600.pth.tar"
    torch.manual_seed(0)
    state = {k: v for k, v in build_rga("s").state_dict().items()}
    torch.save({"state_dict": state, "epoch": 1, "best_top1": 0.0, "optimizer": {}}, path)
    with pytest.raises(CheckpointError, match=r"looks like an rga_s checkpoint.*'rga_sc'"):
        load_model("rga_sc", str(path))


def test_missing_rga_key_is_named(rga_sc_checkpoint, tmp_path):
    path, source = rga_sc_checkpoint
    state = {k: v for k, v in source.state_dict().items() if k != "backbone.rga_att4.gg_channel.0.weight"}
    broken = tmp_path / "broken.pth.tar"
    torch.save({"state_dict": state}, broken)
    with pytest.raises(CheckpointError, match=r"missing key\(s\): backbone\.rga_att4\.gg_channel\.0\.weight"):
        load_model("rga_sc", str(broken))
