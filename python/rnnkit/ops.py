"""Small array helpers of the TF1 API."""

from __future__ import annotations

import numpy as np

from ._checks import float_dtype, positive_int, token_ids
from ._typing import ArrayLike, DTypeLike, FloatArray


def one_hot(ids: ArrayLike, depth: int, dtype: DTypeLike = np.float32) -> FloatArray:
    """tf.one_hot(ids, depth): [...] integer ids -> [..., depth] floats (a scalar id -> [depth]).
    Ids outside [0, depth) are an error (TF would give a zero row)."""
    depth = positive_int(depth, "depth")
    ids = token_ids(ids, depth, "ids")
    out = np.zeros(ids.shape + (depth,), dtype=float_dtype(dtype))
    # one write per id, into the [ids.size, depth] view: a 0-d id gives [depth]
    out.reshape(-1, depth)[np.arange(ids.size), ids.reshape(-1)] = 1
    return out
