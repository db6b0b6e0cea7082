"""Scoring in slices gives the same scores, in the same order, as one call."""

from __future__ import annotations

import numpy as np
import pandas as pd

from orchestration.core.decisioning.scoring import predict_in_chunks


class _RowModel:
    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        self.calls.append(len(frame))
        return frame["a"].to_numpy() * 2.0 - frame["b"].to_numpy()


def test_slices_give_the_scores_of_one_call() -> None:
    rng = np.random.default_rng(0)
    inputs = pd.DataFrame({"a": rng.normal(size=1_001), "b": rng.normal(size=1_001)})
    model = _RowModel()
    chunked = predict_in_chunks(model, inputs, chunk_rows=250)
    assert model.calls == [250, 250, 250, 250, 1]
    np.testing.assert_array_equal(chunked, _RowModel().predict(inputs))
    assert predict_in_chunks(_RowModel(), inputs.iloc[:0]).size == 0
