"""The folded RGA: same state dict, same outputs, ONNX-exportable with a dynamic batch."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edgereid.models import preprocess_for  # noqa: E402
from edgereid.models.rga import build_rga  # noqa: E402
from edgereid.models.rga_fold import (  # noqa: E402
    relation_conv_folded,
    relation_conv_macs,
    relation_conv_reference,
    relation_maps,
)


def _parity(reference: np.ndarray, got: np.ndarray) -> tuple[float, float]:
    """(smallest row cosine, max abs error / max abs reference)."""
    cos = (reference * got).sum(1) / np.linalg.norm(reference, axis=1) / np.linalg.norm(got, axis=1)
    return float(cos.min()), float(np.abs(got - reference).max() / np.abs(reference).max())


@pytest.fixture(scope="module")
def rga_sc():
    """RGA-SC as load_model builds it without a checkpoint (seed 0), switched between formulations."""
    torch.manual_seed(0)
    return build_rga("sc")


def _both(model, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        model.set_folded(False)
        official = model(x).numpy()
        model.set_folded(True)
        folded = model(x).numpy()
    model.set_folded(False)
    return official, folded


# -- the algebra ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("k", "n", "c_out"), [(4, 24, 3), (16, 128, 16), (1, 5, 2)])
def test_folded_relation_conv_equals_conv_over_relation_maps(k, n, c_out):
    gen = torch.Generator().manual_seed(k * n)
    theta = torch.randn(3, k, n, generator=gen, dtype=torch.float64)
    phi = torch.randn(3, k, n, generator=gen, dtype=torch.float64)
    weight = torch.randn(c_out, 2 * n, 1, 1, generator=gen, dtype=torch.float64)
    # Independent check of the reference: an explicit loop over G = theta^T phi.
    g = np.einsum("bki,bkj->bij", theta.numpy(), phi.numpy())
    w = weight.numpy()[:, :, 0, 0]
    by_hand = np.einsum("oi,bpi->bop", w[:, :n], g) + np.einsum("oi,bip->bop", w[:, n:], g)
    tol = 1e-12 * np.abs(by_hand).max()
    np.testing.assert_allclose(relation_conv_reference(theta, phi, weight).numpy(), by_hand, rtol=0, atol=tol)
    np.testing.assert_allclose(relation_conv_folded(theta, phi, weight).numpy(), by_hand, rtol=0, atol=tol)
    assert tuple(relation_maps(theta, phi).shape) == (3, 2 * n, n)


def test_relation_conv_mac_formula_for_the_two_largest_modules():
    # rga_att1 spatial: N = 64*32, K = 256/8, C_out = N/8; rga_att4 channel: N = 2048, K = 128/8.
    assert relation_conv_macs(2048, 32, 256, folded=False) == 2048 * 2048 * 32 + 2 * 2048 * 2048 * 256
    assert relation_conv_macs(2048, 32, 256, folded=True) == 67_108_864
    assert relation_conv_macs(2048, 16, 256, folded=True) == 33_554_432


# -- the whole model -----------------------------------------------------------------------------


def test_folded_matches_official_on_random_inputs(rga_sc):
    x = torch.randn(2, 3, 256, 128, generator=torch.Generator().manual_seed(1))
    official, folded = _both(rga_sc, x)
    cos, rel_err = _parity(official, folded)
    assert official.shape == (2, 2048)
    assert cos >= 0.99999
    assert rel_err <= 1e-4


@pytest.mark.assets
def test_folded_matches_official_on_real_crops(rga_sc, pku_crops):
    x = torch.from_numpy(preprocess_for("rga_sc")(pku_crops[:3]))
    official, folded = _both(rga_sc, x)
    cos, rel_err = _parity(official, folded)
    assert cos >= 0.99999
    assert rel_err <= 1e-4
    assert np.abs(official[0] - official[1]).max() > 1e-3 * np.abs(official).max()  # crops differ


def test_fold_is_exact_in_float64_with_nontrivial_batchnorm():
    """In float64 the two formulations agree to rounding: the fold (BN/ReLU kept after it) is exact."""
    torch.manual_seed(0)
    model = build_rga("sc").double()
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                shape = module.running_mean.shape
                module.running_mean.copy_(0.1 * torch.randn(shape, generator=gen, dtype=torch.float64))
                module.running_var.copy_(0.5 + torch.rand(shape, generator=gen, dtype=torch.float64))
                module.weight.copy_(0.5 + torch.rand(shape, generator=gen, dtype=torch.float64))
                module.bias.copy_(0.1 * torch.randn(shape, generator=gen, dtype=torch.float64))
    x = torch.randn(1, 3, 256, 128, generator=gen, dtype=torch.float64)
    official, folded = _both(model, x)
    assert np.abs(folded - official).max() <= 1e-9 * np.abs(official).max()


def test_prebn_option_returns_feat_underscore(rga_sc):
    x = torch.randn(1, 3, 256, 128, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        rga_sc.return_prebn = True
        feat_ = rga_sc(x)
        rga_sc.return_prebn = False
        feat = rga_sc(x)
    bn = rga_sc.feat_bn
    by_hand = (feat_ - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
    torch.testing.assert_close(feat, by_hand)
    with torch.device("meta"):
        assert build_rga("s", return_prebn=True).return_prebn


# -- export --------------------------------------------------------------------------------------


def test_folded_exports_to_onnx_opset17_with_dynamic_batch(rga_sc, tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    path = tmp_path / "rga_sc_folded.onnx"
    rga_sc.set_folded(True)
    try:
        torch.onnx.export(
            rga_sc,
            (torch.zeros(1, 3, 256, 128),),
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=["images"],
            output_names=["embeddings"],
            dynamic_axes={"images": {0: "batch"}, "embeddings": {0: "batch"}},
        )
        graph = onnx.load(str(path)).graph
        ops = {node.op_type for node in graph.node}
        # Static shapes only: no shape arithmetic, no N x N relation matrix anywhere.
        assert not ops & {"Shape", "Gather", "Expand"}
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        x = torch.randn(3, 3, 256, 128, generator=torch.Generator().manual_seed(4))
        got = session.run(None, {"images": x.numpy()})[0]
        with torch.no_grad():
            expected = rga_sc(x).numpy()
    finally:
        rga_sc.set_folded(False)
    assert got.shape == (3, 2048)
    cos, _ = _parity(expected, got)
    assert cos >= 0.9999
