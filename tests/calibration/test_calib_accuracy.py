"""The manifest's accuracy report gives the rank-1 delta with its 95 % paired interval."""

from __future__ import annotations

import numpy as np

from edgereid.calibration.accuracy import accuracy_report
from edgereid.preprocess import PreprocessSpec
from edgereid.runtime.embedder import EmbedderRunner


class ColourEmbedder(EmbedderRunner):
    """Embedding = mean colour of the crop, plus seeded noise (the 'INT8' side)."""

    def __init__(self, noise: float, **kw) -> None:
        super().__init__(PreprocessSpec(16, 8), **kw)
        self.noise, self.rng = noise, np.random.default_rng(0)

    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        out = batch.mean(axis=(2, 3)).astype(np.float64) + 3.0
        return out + self.noise * self.rng.normal(size=out.shape)


def _crops(n_ids: int = 60):
    rng = np.random.default_rng(1)
    crops, labels = [], []
    for pid in range(n_ids):
        colour = rng.integers(0, 256, 3)
        for cam in (1, 2):
            crops.append(np.zeros((16, 8, 3), np.uint8) + colour.astype(np.uint8))
            labels.append((pid, cam))
    return crops, labels


def test_rank1_delta_comes_with_its_interval():
    crops, labels = _crops()
    same = accuracy_report(ColourEmbedder(0.0), ColourEmbedder(0.0), crops, labels)
    assert same["delta_rank1_points"] == 0.0 and same["delta_rank1_ci95_points"] == [0.0, 0.0]
    noisy = accuracy_report(ColourEmbedder(0.0), ColourEmbedder(0.15), crops, labels)
    lo, hi = noisy["delta_rank1_ci95_points"]
    assert noisy["delta_rank1_points"] < 0  # the noise cost some queries
    assert lo <= noisy["delta_rank1_points"] <= hi and hi - lo > 1.0  # 60 queries: a wide interval
    assert hi < 0  # a loss this large is told apart from none
