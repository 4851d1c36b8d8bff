"""Losses: sequence_loss (tf.contrib.seq2seq, TF 1.15),
mean_squared_error (tf.losses), and the loss layers that Sequential trains
with: SequenceLoss, SoftmaxCrossEntropy, MeanSquaredError. A loss layer's
forward(outputs, targets, weights=None) returns the loss and its
backward(d_loss=None) d loss / d outputs. Each direction is C++ calls."""

from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np

from . import _core
from ._checks import as_float, as_ints, check_shape, contiguous, float_dtype, scalar, shape_str, unshared
from ._guard import InUse
from ._typing import ArrayLike, DTypeLike, FloatArray, NDArray
from .nn import _cross_entropy_args

# A loss: a numpy float scalar, or an array by SequenceLoss's flags.
Loss = Union[np.floating[Any], FloatArray]


def _check_flags(average_across_timesteps: bool, average_across_batch: bool, sum_over_timesteps: bool,
                 sum_over_batch: bool) -> tuple[bool, bool, bool, bool]:
    flags = tuple(bool(f) for f in (average_across_timesteps, average_across_batch, sum_over_timesteps, sum_over_batch))
    if flags[0] and flags[2]:
        raise ValueError("average_across_timesteps and sum_over_timesteps cannot be set to True at same time.")
    if flags[1] and flags[3]:
        raise ValueError("average_across_batch and sum_over_batch cannot be set to True at same time.")
    return flags[0], flags[1], flags[2], flags[3]


def _prepare(logits: ArrayLike, targets: ArrayLike,
             weights: Optional[ArrayLike]) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any]]:
    """logits [B, T, C] (float32/float64), targets ints [B, T] in [0, C) as
    int32/int64, weights [B, T] in the logits' dtype (ones when None)."""
    x = as_float(logits, "logits", None, ndim=3, layout="[B, T, C]")
    float_dtype(x.dtype, "logits")
    batch, steps, classes = x.shape
    labels = check_shape(as_ints(targets, "targets"), "targets", (batch, steps))
    bad = (labels < 0) | (labels >= classes)
    if bad.any():
        index = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), bad.shape))
        raise ValueError(f"targets values must lie in [0, {classes}), got {int(labels[index])} at index {index}")
    label_dtype = np.int32 if labels.dtype == np.int32 else np.int64
    labels = contiguous(labels, label_dtype)
    if weights is None:
        return x, labels, np.ones((batch, steps), x.dtype)
    w = check_shape(as_float(weights, "weights", x.dtype), "weights", (batch, steps))
    return x, labels, w


def _unwrap(loss: FloatArray) -> Loss:
    """A 0-d result as a numpy scalar of its dtype."""
    return scalar(loss) if loss.ndim == 0 else loss


class _LossLayer:
    """What the loss layers share: forward records what backward reads (a
    forward that fails records nothing), and one thread at a time may run
    forward or backward (a second gets a RuntimeError); calling the loss
    (no backward) may run in many at once."""

    _forward_args = "outputs, targets"  # for the message of a backward before any forward

    def __init__(self) -> None:
        self._recorded: Any = None  # what the last forward left for backward
        self._in_use = InUse(type(self).__name__)

    def backward(self, d_loss: Optional[ArrayLike] = None) -> FloatArray:
        """d_loss: the loss's shape (a scalar but for SequenceLoss's
        unreduced forms; ones when None). Returns d loss / d outputs, the
        outputs' shape."""
        with self._in_use:
            if self._recorded is None:
                raise RuntimeError(f"{type(self).__name__}.backward called before forward: "
                                   f"call forward({self._forward_args}) first")
            return self._backward(self._recorded, d_loss)

    def _backward(self, recorded: Any, d_loss: Optional[ArrayLike]) -> FloatArray:
        raise NotImplementedError


class SequenceLoss(_LossLayer):
    """Weighted softmax cross-entropy over [B, T] positions, TF 1.15's
    sequence_loss, with the gradient with respect to the logits.

    The flags reduce ce ⊙ weights exactly as TF 1.15 does:
      - average_across_timesteps and average_across_batch: Σc / Σw (scalar);
      - sum_over_timesteps and sum_over_batch: Σc / count(w != 0) (scalar);
      - else one average_across_X (any sum_over_* is then ignored): over
        axis X, / Σw -> [B] (timesteps) or [T] (batch);
      - else one sum_over_X: over axis X, / count(w != 0);
      - else: ce ⊙ weights [B, T].
    A zero denominator gives 0 (div_no_nan), with a zero gradient.

    forward keeps the softmax and copies of targets and weights for backward,
    which returns d_logits [B, T, C]. One thread at a time may run forward or
    backward (a second gets a RuntimeError); calling the loss (no backward)
    may run in many at once.
    """

    _forward_args = "logits, targets, weights"

    def __init__(self, average_across_timesteps: bool = True, average_across_batch: bool = True,
                 sum_over_timesteps: bool = False, sum_over_batch: bool = False) -> None:
        super().__init__()
        (self.average_across_timesteps, self.average_across_batch,
         self.sum_over_timesteps, self.sum_over_batch) = _check_flags(
            average_across_timesteps, average_across_batch, sum_over_timesteps, sum_over_batch)
        self._tape: dict[str, Any] = {}

    def _flags(self) -> tuple[bool, bool, bool, bool]:
        return (self.average_across_timesteps, self.average_across_batch,
                self.sum_over_timesteps, self.sum_over_batch)

    def forward(self, logits: ArrayLike, targets: ArrayLike, weights: Optional[ArrayLike] = None) -> Loss:
        """logits: [B, T, C] float; targets: ints [B, T] in [0, C); weights:
        [B, T] (ones when None). Returns the loss in the logits' dtype: a numpy scalar, [B],
        [T] or [B, T] by the flags. Keeps the softmax for backward."""
        with self._in_use:
            self._recorded = None
            x, labels, w = _prepare(logits, targets, weights)
            loss = _core.sequence_loss_forward(x, labels, w, *self._flags(), tape=self._tape)
            self._recorded = (loss.shape, loss.dtype)  # what d_loss must be
            return _unwrap(loss)

    def __call__(self, logits: ArrayLike, targets: ArrayLike, weights: Optional[ArrayLike] = None) -> Loss:
        """The loss without recording anything for backward."""
        x, labels, w = _prepare(logits, targets, weights)
        return _unwrap(_core.sequence_loss_forward(x, labels, w, *self._flags()))

    def _backward(self, recorded: tuple[tuple[int, ...], np.dtype[Any]], d_loss: Optional[ArrayLike]) -> FloatArray:
        shape, dtype = recorded
        if d_loss is None:
            d = np.ones(shape, dtype)
        else:
            d = np.asarray(d_loss)
            if d.shape != shape:
                raise ValueError(f"d_loss must have shape {shape_str(shape)} (the loss's), got {shape_str(d.shape)}")
            d = as_float(d, "d_loss", dtype)
        return _core.sequence_loss_backward(self._tape, d)

    def __repr__(self) -> str:
        names = ("average_across_timesteps", "average_across_batch", "sum_over_timesteps", "sum_over_batch")
        return "SequenceLoss(" + ", ".join(f"{n}={v}" for n, v in zip(names, self._flags())) + ")"


def sequence_loss(logits: ArrayLike, targets: ArrayLike, weights: Optional[ArrayLike],
                  average_across_timesteps: bool = True, average_across_batch: bool = True,
                  sum_over_timesteps: bool = False, sum_over_batch: bool = False) -> Loss:
    """TF 1.15's tf.contrib.seq2seq.sequence_loss (see SequenceLoss for the
    reductions).

    Args:
      logits: [B, T, C] float32 or float64.
      targets: integer [B, T], each in [0, C).
      weights: [B, T] float (converted to the logits' dtype).
    Returns:
      The loss in the logits' dtype: scalar, [B], [T] or [B, T].
    """
    return SequenceLoss(average_across_timesteps, average_across_batch,
                        sum_over_timesteps, sum_over_batch)(logits, targets, weights)


# ---- tf.losses.mean_squared_error and the classification / regression loss layers ----
def _broadcast_weights(weights: ArrayLike, shape: tuple[int, ...], dtype: DTypeLike,
                       name: str = "weights") -> NDArray[Any]:
    """`weights` broadcast (numpy's rules, as TF's) to `shape`, contiguous, in `dtype`."""
    w = np.asarray(weights)
    if w.dtype.kind not in "fiub":
        raise TypeError(f"{name} must be a float array or number, got dtype {w.dtype}")
    try:
        w = np.broadcast_to(w, shape)
    except ValueError:
        raise ValueError(f"{name} must broadcast to shape {shape_str(shape)}, got shape {shape_str(w.shape)}") from None
    return contiguous(w, dtype)


def _regression_args(predictions: ArrayLike, labels: ArrayLike, weights: Optional[ArrayLike],
                     predictions_name: str = "predictions") -> tuple[NDArray[Any], NDArray[Any], NDArray[Any]]:
    """(predictions, labels, broadcast weights), all of the predictions' float dtype."""
    p = np.asarray(predictions)
    if p.dtype.kind != "f":
        raise TypeError(f"{predictions_name} must be a float array (float32 or float64), got dtype {p.dtype}")
    p = contiguous(p, float_dtype(p.dtype, predictions_name))
    y = np.asarray(labels)
    if y.dtype.kind not in "fiu":
        raise TypeError(f"labels must be a float or integer array, got dtype {y.dtype}")
    if y.shape != p.shape:
        raise ValueError(f"labels must have {predictions_name}' shape {shape_str(p.shape)}, got {shape_str(y.shape)}")
    y = contiguous(y, p.dtype)
    return p, y, _broadcast_weights(1.0 if weights is None else weights, p.shape, p.dtype)


def mean_squared_error(labels: ArrayLike, predictions: ArrayLike, weights: ArrayLike = 1.0) -> np.floating[Any]:
    """TF1's tf.losses.mean_squared_error with its default reduction,
    SUM_BY_NONZERO_WEIGHTS: Σ w·(p − y)² / count_nonzero(w), 0 when no
    weight is non-zero (with weights=1.0: the mean of (p − y)²).

    Args:
      labels: like predictions (converted to its dtype).
      predictions: float32 or float64, any shape.
      weights: a number or an array that broadcasts to predictions' shape.
    Returns:
      A numpy scalar of predictions' dtype.
    """
    p, y, w = _regression_args(predictions, labels, weights)
    return scalar(_core.mean_squared_error(p, y, w))


class MeanSquaredError(_LossLayer):
    """The loss layer of tf.losses.mean_squared_error: forward(outputs,
    targets, weights=None) -> Σ w·(outputs − targets)² / count_nonzero(w)
    (the mean with no weights; weights broadcast to outputs' shape);
    backward(d_loss=None) -> d_outputs."""

    def forward(self, outputs: ArrayLike, targets: ArrayLike, weights: Optional[ArrayLike] = None) -> np.floating[Any]:
        """outputs: float [...]; targets: like outputs. Returns a numpy scalar."""
        with self._in_use:
            self._recorded = None
            p, y, w = _regression_args(outputs, targets, weights, "outputs")
            p, y, w = unshared(p, outputs), unshared(y, targets), unshared(w, weights)
            self._recorded = (p, y, w)  # copies where they were the caller's arrays
            return scalar(_core.mean_squared_error(p, y, w))

    def __call__(self, outputs: ArrayLike, targets: ArrayLike, weights: Optional[ArrayLike] = None) -> np.floating[Any]:
        """The loss without recording anything for backward."""
        return scalar(_core.mean_squared_error(*_regression_args(outputs, targets, weights, "outputs")))

    def _backward(self, recorded: tuple[NDArray[Any], NDArray[Any], NDArray[Any]],
                  d_loss: Optional[ArrayLike]) -> FloatArray:
        p, y, w = recorded
        return _core.mean_squared_error_backward(p, y, w, _scalar_grad(d_loss, p.dtype))

    def __repr__(self) -> str:
        return "MeanSquaredError()"


def _scalar_grad(d_loss: Optional[ArrayLike], dtype: DTypeLike) -> NDArray[Any]:
    """A scalar loss's incoming gradient as a 0-d array of `dtype` (1 when None)."""
    if d_loss is None:
        return np.ones((), dtype)
    d = np.asarray(d_loss)
    if d.shape != () or d.dtype.kind not in "fiu":
        raise ValueError(f"d_loss must be a number (the loss is a scalar), got shape {shape_str(d.shape)} "
                         f"and dtype {d.dtype}")
    return d.astype(dtype)


def _row_weights(weights: Optional[ArrayLike], lead: tuple[int, ...], dtype: DTypeLike) -> NDArray[Any]:
    """Weights of the rows `lead` (labels' shape): None (ones), a number, or
    an array whose shape is a prefix of `lead` (per-row weights [B] for
    labels [B, T] apply to every step of a row)."""
    if weights is None:
        return np.ones(lead, dtype)
    w = np.asarray(weights)
    if w.dtype.kind not in "fiub":
        raise TypeError(f"weights must be a float array or number, got dtype {w.dtype}")
    if w.shape != tuple(lead[:w.ndim]):
        raise ValueError(f"weights must have shape {shape_str(lead)} (the labels' shape) or a prefix of it, "
                         f"got {shape_str(w.shape)}")
    w = w.reshape(w.shape + (1,) * (len(lead) - w.ndim))
    return contiguous(np.broadcast_to(w, lead), dtype)


class SoftmaxCrossEntropy(_LossLayer):
    """Softmax cross-entropy over the last axis of the outputs (logits
    [..., C]), averaged over rows as TF1's tf.losses.*softmax_cross_entropy
    (SUM_BY_NONZERO_WEIGHTS): Σ w·ce / count_nonzero(w), the mean with no
    weights.

    sparse=True: targets are integer classes [...] (logits' leading shape),
    ce = sparse_softmax_cross_entropy_with_logits; sparse=False: targets
    are distributions [..., C], ce = softmax_cross_entropy_with_logits.
    weights: None, a number, per-row weights [B], or weights of the targets'
    leading shape."""

    def __init__(self, sparse: bool = True) -> None:
        if not isinstance(sparse, (bool, np.bool_)):
            raise TypeError(f"sparse must be a bool, got {type(sparse).__name__}")
        super().__init__()
        self.sparse = bool(sparse)

    def _prepare(self, outputs: ArrayLike, targets: ArrayLike,
                 weights: Optional[ArrayLike]) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any]]:
        logits, labels = _cross_entropy_args(targets, outputs, self.sparse, logits_name="outputs",
                                             labels_name="targets")
        return logits, labels, _row_weights(weights, logits.shape[:-1], logits.dtype)

    def _per_row(self, logits: NDArray[Any], labels: NDArray[Any], with_probs: bool) -> Any:
        run = _core.sparse_softmax_cross_entropy if self.sparse else _core.softmax_cross_entropy
        return run(logits, labels, with_probs)

    def forward(self, outputs: ArrayLike, targets: ArrayLike, weights: Optional[ArrayLike] = None) -> np.floating[Any]:
        """outputs: logits [..., C]. Returns a numpy scalar of their dtype."""
        with self._in_use:
            self._recorded = None
            logits, labels, w = self._prepare(outputs, targets, weights)
            ce, probs = self._per_row(logits, labels, True)
            self._recorded = (unshared(labels, targets), probs, unshared(w, weights))
            return scalar(_core.sum_by_nonzero_weights(ce, w))

    def __call__(self, outputs: ArrayLike, targets: ArrayLike, weights: Optional[ArrayLike] = None) -> np.floating[Any]:
        """The loss without recording anything for backward."""
        logits, labels, w = self._prepare(outputs, targets, weights)
        return scalar(_core.sum_by_nonzero_weights(self._per_row(logits, labels, False), w))

    def _backward(self, recorded: tuple[NDArray[Any], FloatArray, FloatArray],
                  d_loss: Optional[ArrayLike]) -> FloatArray:
        labels, probs, w = recorded
        d_ce = _core.sum_by_nonzero_weights_backward(w, _scalar_grad(d_loss, probs.dtype))
        run = _core.sparse_softmax_cross_entropy_backward if self.sparse else _core.softmax_cross_entropy_backward
        return run(labels, probs, d_ce)

    def __repr__(self) -> str:
        return f"SoftmaxCrossEntropy(sparse={self.sparse})"
