"""sequence_loss (tf.contrib.seq2seq, TF 1.15) and its trainable form,
SequenceLoss, whose backward gives d loss / d logits. Each direction is one
C++ call."""

import numpy as np

from . import _core
from ._checks import as_float, as_ints, check_shape, float_dtype, shape_str
from ._guard import InUse


def _check_flags(average_across_timesteps, average_across_batch, sum_over_timesteps, sum_over_batch):
    flags = tuple(bool(f) for f in (average_across_timesteps, average_across_batch, sum_over_timesteps, sum_over_batch))
    if flags[0] and flags[2]:
        raise ValueError("average_across_timesteps and sum_over_timesteps cannot be set to True at same time.")
    if flags[1] and flags[3]:
        raise ValueError("average_across_batch and sum_over_batch cannot be set to True at same time.")
    return flags


def _prepare(logits, targets, weights):
    """logits [B, T, C] (float32/float64), targets ints [B, T] in [0, C) as
    int32/int64, weights [B, T] in the logits' dtype."""
    x = as_float(logits, "logits", None, ndim=3, layout="[B, T, C]")
    float_dtype(x.dtype, "logits")
    batch, steps, classes = x.shape
    labels = check_shape(as_ints(targets, "targets"), "targets", (batch, steps))
    bad = (labels < 0) | (labels >= classes)
    if bad.any():
        index = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), bad.shape))
        raise ValueError(f"targets values must lie in [0, {classes}), got {int(labels[index])} at index {index}")
    label_dtype = np.int32 if labels.dtype == np.int32 else np.int64
    labels = np.ascontiguousarray(labels, dtype=label_dtype)
    w = check_shape(as_float(weights, "weights", x.dtype), "weights", (batch, steps))
    return x, labels, w


def _unwrap(loss):
    """A 0-d result as a numpy scalar of its dtype."""
    return loss[()] if loss.ndim == 0 else loss


class SequenceLoss:
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

    forward keeps the softmax and copies of targets and weights for backward.
    One thread at a time may run forward or backward (a second gets a
    RuntimeError); calling the loss (no backward) may run in many at once.
    """

    def __init__(self, average_across_timesteps=True, average_across_batch=True,
                 sum_over_timesteps=False, sum_over_batch=False):
        (self.average_across_timesteps, self.average_across_batch,
         self.sum_over_timesteps, self.sum_over_batch) = _check_flags(
            average_across_timesteps, average_across_batch, sum_over_timesteps, sum_over_batch)
        self._tape = {}
        self._loss_shape = None  # shape and dtype of the last forward's loss
        self._in_use = InUse(type(self).__name__)

    def _flags(self):
        return (self.average_across_timesteps, self.average_across_batch,
                self.sum_over_timesteps, self.sum_over_batch)

    def forward(self, logits, targets, weights):
        """logits: [B, T, C] float; targets: ints [B, T] in [0, C); weights:
        [B, T]. Returns the loss in the logits' dtype: a numpy scalar, [B],
        [T] or [B, T] by the flags. Keeps the softmax for backward."""
        with self._in_use:
            self._loss_shape = None  # a forward that fails leaves no tape for backward
            x, labels, w = _prepare(logits, targets, weights)
            loss = _core.sequence_loss_forward(x, labels, w, *self._flags(), tape=self._tape)
            self._loss_shape = (loss.shape, loss.dtype)
            return _unwrap(loss)

    def __call__(self, logits, targets, weights):
        """The loss without recording anything for backward."""
        x, labels, w = _prepare(logits, targets, weights)
        return _unwrap(_core.sequence_loss_forward(x, labels, w, *self._flags()))

    def backward(self, d_loss=None):
        """d_loss: the loss's shape (ones when None). Returns d_logits [B, T, C]."""
        with self._in_use:
            return self._backward(d_loss)

    def _backward(self, d_loss):
        if self._loss_shape is None:
            raise RuntimeError("SequenceLoss.backward called before forward: call forward(logits, targets, weights) first")
        shape, dtype = self._loss_shape
        if d_loss is None:
            d = np.ones(shape, dtype)
        else:
            d = np.asarray(d_loss)
            if d.shape != shape:
                raise ValueError(f"d_loss must have shape {shape_str(shape)} (the loss's), got {shape_str(d.shape)}")
            # as_float makes a 0-d array 1-d (np.ascontiguousarray): restore the shape
            d = as_float(d, "d_loss", dtype).reshape(shape)
        return _core.sequence_loss_backward(self._tape, d)

    def __repr__(self):
        names = ("average_across_timesteps", "average_across_batch", "sum_over_timesteps", "sum_over_batch")
        return "SequenceLoss(" + ", ".join(f"{n}={v}" for n, v in zip(names, self._flags())) + ")"


def sequence_loss(logits, targets, weights, average_across_timesteps=True, average_across_batch=True,
                  sum_over_timesteps=False, sum_over_batch=False):
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
