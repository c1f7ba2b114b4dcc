"""Accuracy: Market-1501 protocol metrics, dataset readers, reid-eval."""

from __future__ import annotations

from edgereid.evaluation.metrics import average_precision, cosine_distmat, evaluate

__all__ = ["average_precision", "cosine_distmat", "evaluate"]
