"""TF1's tf.nn namespace: softmax, the softmax cross-entropies,
embedding_lookup, and the recurrent functions (dynamic_rnn, static_rnn and
their bidirectional forms). Each op is one C++ call; their gradients are
the backward of the layers built on them (SoftmaxCrossEntropy, Embedding,
RNN)."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _core
from ._checks import as_float, contiguous, float_dtype, indices, shape_str
from ._typing import ArrayLike, FloatArray, NDArray
from .bidirectional import bidirectional_dynamic_rnn, static_bidirectional_rnn
from .rnn import dynamic_rnn, last_output, static_rnn

__all__ = [
    "softmax", "softmax_cross_entropy_with_logits", "softmax_cross_entropy_with_logits_v2",
    "sparse_softmax_cross_entropy_with_logits", "embedding_lookup", "dynamic_rnn", "bidirectional_dynamic_rnn",
    "static_rnn", "static_bidirectional_rnn", "last_output",
]


def _logits(logits: ArrayLike, name: str = "logits") -> NDArray[Any]:
    """Float logits [..., C] (rank >= 1) as a C-contiguous float32/float64 array."""
    x = np.asarray(logits)
    if x.dtype.kind != "f":
        raise TypeError(f"{name} must be a float array (float32 or float64), got dtype {x.dtype}")
    float_dtype(x.dtype, name)
    if x.ndim < 1 or x.shape[-1] < 1:
        raise ValueError(f"{name} must have rank >= 1 and at least one class [..., C], got shape {shape_str(x.shape)}")
    return np.ascontiguousarray(x)


def _axis(axis: object, ndim: int, name: str = "axis") -> int:
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(axis).__name__}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name} must lie in [{-ndim}, {ndim}) for rank {ndim}, got {axis}")
    return int(axis) % ndim


def softmax(logits: ArrayLike, axis: int = -1) -> FloatArray:
    """tf.nn.softmax: exp(logits) / Σ exp(logits) along `axis` (max-shifted).

    Args:
      logits: float32 or float64, any shape of rank >= 1.
      axis: the class axis (the last by default).
    Returns:
      An array of logits' shape and dtype.
    """
    x = np.asarray(logits)
    axis = _axis(axis, max(x.ndim, 1))
    if axis == x.ndim - 1:
        return _core.softmax(_logits(x))
    moved = _logits(np.moveaxis(x, axis, -1))
    return np.ascontiguousarray(np.moveaxis(_core.softmax(moved), -1, axis))


def _cross_entropy_args(labels: ArrayLike, logits: ArrayLike, sparse: bool, logits_name: str = "logits",
                        labels_name: str = "labels") -> tuple[NDArray[Any], NDArray[Any]]:
    """(logits [..., C], labels) checked: integer labels [...] in [0, C)
    (int32/int64) when sparse, else distributions [..., C] in logits' dtype."""
    x = _logits(logits, logits_name)
    y = np.asarray(labels)
    if sparse:
        if y.dtype.kind not in "iu":
            raise TypeError(f"{labels_name} must be integer class indices (sparse), got dtype {y.dtype}")
        if y.shape != x.shape[:-1]:
            raise ValueError(f"{labels_name} must have shape {shape_str(x.shape[:-1])} ({logits_name}' shape without "
                             f"its class axis), got {shape_str(y.shape)}")
        return x, indices(y, x.shape[-1], labels_name)
    if y.dtype.kind not in "fiu":
        raise TypeError(f"{labels_name} must be a float array of class distributions, got dtype {y.dtype}")
    if y.shape != x.shape:
        raise ValueError(f"{labels_name} must have {logits_name}' shape {shape_str(x.shape)} (a distribution per row), "
                         f"got {shape_str(y.shape)}")
    return x, contiguous(y, x.dtype)


def softmax_cross_entropy_with_logits(labels: ArrayLike, logits: ArrayLike, axis: int = -1) -> FloatArray:
    """TF1's tf.nn.softmax_cross_entropy_with_logits_v2 (and the deprecated
    form without `_v2`, which gives the same values): per row,
    −Σ_c labels · log_softmax(logits).

    Args:
      labels: a distribution over the class axis per row, logits' shape.
      logits: float32 or float64 [..., C].
      axis: the class axis (the last by default).
    Returns:
      The loss per row: logits' shape without the class axis, logits' dtype.
    """
    x = np.asarray(logits)
    axis = _axis(axis, max(x.ndim, 1))
    if axis != x.ndim - 1:
        x, labels = np.moveaxis(x, axis, -1), np.moveaxis(np.asarray(labels), axis, -1)
    return _core.softmax_cross_entropy(*_cross_entropy_args(labels, x, sparse=False))


softmax_cross_entropy_with_logits_v2 = softmax_cross_entropy_with_logits


def sparse_softmax_cross_entropy_with_logits(labels: ArrayLike, logits: ArrayLike) -> FloatArray:
    """TF1's tf.nn.sparse_softmax_cross_entropy_with_logits: per row,
    logsumexp(logits) − logits[label].

    Args:
      labels: integer classes of shape logits.shape[:-1], each in [0, C)
        (a label outside is an error naming it and its index).
      logits: float32 or float64 [..., C].
    Returns:
      The loss per row, labels' shape, logits' dtype.
    """
    return _core.sparse_softmax_cross_entropy(*_cross_entropy_args(labels, logits, sparse=True))


def embedding_lookup(params: ArrayLike, ids: ArrayLike) -> FloatArray:
    """tf.nn.embedding_lookup(params, ids) = params[ids].

    Args:
      params: float32 or float64 [V, E].
      ids: integers of any shape, each in [0, V) (an id outside is an error
        naming it and its index).
    Returns:
      [*ids.shape, E] in params' dtype.
    """
    table = as_float(params, "params", None, ndim=2, layout="[V, E]")
    float_dtype(table.dtype, "params")
    return _core.embedding_lookup(table, indices(ids, table.shape[0], "ids"))
