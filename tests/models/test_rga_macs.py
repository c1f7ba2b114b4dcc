"""MAC counts: the counter on hand-countable layers, then RGA-SC official vs folded."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from edgereid.models.macs import count_macs, macs_by_module  # noqa: E402
from edgereid.models.rga import build_rga  # noqa: E402

GMAC = 1e9


def test_counter_on_hand_counted_layers():
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1, bias=False),  # 8 x 3*3*3 per output pixel, 8x8 pixels
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(8 * 8 * 8, 10),  # 512 x 10
    )
    assert count_macs(model, (2, 3, 8, 8)) == 2 * (8 * 27 * 64 + 512 * 10)
    per_module = macs_by_module(model, (1, 3, 8, 8))
    assert per_module == {"": 8 * 27 * 64 + 5120, "0": 8 * 27 * 64, "3": 5120}


@pytest.fixture(scope="module")
def meta_rga_sc():
    with torch.device("meta"):
        return build_rga("sc")


def test_rga_sc_official_and_folded_macs(meta_rga_sc):
    meta_rga_sc.set_folded(False)
    official = count_macs(meta_rga_sc)
    by_module = macs_by_module(meta_rga_sc)
    meta_rga_sc.set_folded(True)
    folded = count_macs(meta_rga_sc)
    meta_rga_sc.set_folded(False)

    assert official / GMAC == pytest.approx(9.82, abs=0.05)  # the figure per 256x128 crop
    # The two largest relation convs: rga_att1 spatial (4096 -> 256 channels on 64x32) and
    # rga_att4 channel (4096 -> 256 "channels" over 2048 positions): 2 x 2.147 GMAC.
    largest = by_module["backbone.rga_att1.gg_spatial"] + by_module["backbone.rga_att4.gg_channel"]
    assert largest == 2 * 4096 * 256 * 2048
    assert largest / GMAC == pytest.approx(4.3, abs=0.05)
    assert official / folded >= 1.6
    # Folding removes exactly the relation matmuls + convs and adds 4*C_out*K*N per relation.
    assert official - folded > largest


def test_macs_scale_with_batch(meta_rga_sc):
    meta_rga_sc.set_folded(True)
    try:
        assert count_macs(meta_rga_sc, (2, 3, 256, 128)) == 2 * count_macs(meta_rga_sc)
    finally:
        meta_rga_sc.set_folded(False)
