"""Calibration data: a re-iterable of feed dicts, adapted to ONNX Runtime at the boundary.

Our contract (Polygraphy's): an object you can iterate any number of times, each pass yielding
``{input_name: (n, 3, H, W) float32}``. ONNX Runtime wants a single-pass reader with
``get_next()`` returning None at the end; :class:`OrtReader` adapts one to the other.
"""

from __future__ import annotations

from typing import Iterable, Iterator, Sequence

import numpy as np

from edgereid.preprocess import PreprocessSpec


class CropBatches:
    """Crops preprocessed exactly by the PreprocessSpec, in batches of ``batch`` (re-iterable).

    Preprocessing happens per batch, so memory holds one batch of inputs, not the whole set.

    Args:
        crops: BGR uint8 crops of any size.
        spec: the bundle's PreprocessSpec.
        input_name: the ONNX input name.
        batch: batch size per feed. With ``exact=True`` (static-batch models) the last batch is
            filled up by wrapping around to the first crops.
    """

    def __init__(
        self,
        crops: Sequence[np.ndarray],
        spec: PreprocessSpec,
        input_name: str,
        batch: int = 1,
        exact: bool = False,
    ) -> None:
        self.crops = list(crops)
        self.spec = spec
        self.input_name = input_name
        self.batch = max(1, int(batch))
        self.exact = exact

    def __len__(self) -> int:
        return (len(self.crops) + self.batch - 1) // self.batch

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        n = len(self.crops)
        for start in range(0, n, self.batch):
            idx = list(range(start, min(n, start + self.batch)))
            if self.exact and len(idx) < self.batch:
                idx += [i % n for i in range(self.batch - len(idx))]
            yield {self.input_name: self.spec([self.crops[i] for i in idx])}

    def chunks(self, feeds_per_chunk: int) -> Iterator[list[dict[str, np.ndarray]]]:
        """Lists of at most ``feeds_per_chunk`` feeds (what one calibrator pass may hold)."""
        chunk: list[dict[str, np.ndarray]] = []
        for feed in self:
            chunk.append(feed)
            if len(chunk) >= feeds_per_chunk:
                yield chunk
                chunk = []
        if chunk:
            yield chunk


class OrtReader:
    """Single-pass ``onnxruntime.quantization.CalibrationDataReader`` over given feeds."""

    def __init__(self, feeds: Iterable[dict[str, np.ndarray]]) -> None:
        self._it = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def __iter__(self):  # ORT's base class offers iteration; keep the same duck type
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        item = self.get_next()
        if item is None:
            raise StopIteration
        return item
