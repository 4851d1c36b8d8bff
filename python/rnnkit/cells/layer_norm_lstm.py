"""LayerNormBasicLSTMCell: TF1's tf.contrib.rnn.LayerNormBasicLSTMCell."""

from __future__ import annotations

import numbers
import warnings
from typing import Optional, Union

import numpy as np

from .._checks import activation_name
from .._typing import Activation, DTypeLike, InitializerFn
from ..variables import glorot_uniform
from .. import random
from .base import RNNCell
from .dropout_stream import DropoutStream
from .lstm import LSTMCell

# The layer norms in TF's creation order, each with a gamma and a beta [H].
NORMS = ("input", "transform", "forget", "output", "state")


def _number(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise TypeError(f"{name} must be a finite number, got {value!r}")
    return float(value)


class LayerNormBasicLSTMCell(RNNCell, DropoutStream):
    """TF1's tf.contrib.rnn.LayerNormBasicLSTMCell: an LSTM whose gate
    pre-activations and new cell state are each layer-normalised over their
    H units, with optional dropout on the candidate.

    Per step, with LN_q(v) = (v - mean(v)) / sqrt(var(v) + 1e-12) ⊙ q/gamma + q/beta:
        i, j, f, o = split([x, h] · kernel)          (+ bias when layer_norm=False)
        i, j, f, o = LN_input(i), LN_transform(j), LN_forget(f), LN_output(o)
        c' = LN_state(c ⊙ σ(f + forget_bias) + σ(i) ⊙ dropout(act(j)))
        h' = act(c') ⊙ σ(o)
    With layer_norm=False every LN is the identity: BasicLSTMCell's math.

    Variables, in TF's creation order: kernel [D + H, 4H]; bias [4H] only
    when layer_norm=False (TF1 gives it no initializer, so its default is
    Glorot-uniform over [4H], not zeros); else input/gamma, input/beta,
    transform/..., forget/..., output/..., state/gamma, state/beta [H], the
    gammas starting at `norm_gain`, the betas at `norm_shift`.
    State: LSTMStateTuple(c [B, H], h [B, H]). The arguments are TF's, in
    TF's order (`input_size`: deprecated and unused, as in TF1; no `reuse`),
    then rnnkit's own (every cell's).

    dropout_keep_prob < 1 drops entries of act(j) (inverted dropout: kept
    values are scaled by 1 / keep_prob) with a fresh mask at every step and
    row, as TF does; here only when training (`RNN.forward(..., training=True)`,
    `Sequential.train_step`), like DropoutWrapper and with the same counters
    (`calls`, `first_row`; see DropoutWrapper): entry k of batch row b at
    step t of training call `call` is kept when
    `rnnkit.random.uniforms(subseed(dropout_prob_seed, call) >> 11, n)[((first_row + b) * T + t) * H + k]
    < dropout_keep_prob`, so a row's mask does not depend on how a batch is
    split over gradient groups or MPI ranks. `dropout_prob_seed`: an int in
    [0, 2**64), or None for fresh entropy (kept in `.dropout_prob_seed`);
    the same seed and `calls` give the same masks, but not TF's (its seeds
    drive another generator)."""

    scope_name = "layer_norm_basic_lstm_cell"
    _kernel_steps = True
    state_is_tuple = True  # TF's cell has no other state form

    # The LSTM state (c, h) is handled as LSTMCell handles it. This cell is
    # no LSTMCell: exporters that take an LSTMCell must not take it.
    state_size = LSTMCell.state_size
    _state_widths = LSTMCell._state_widths
    _pack_state = LSTMCell._pack_state
    _kernel_state = LSTMCell._kernel_state
    _flatten_state = LSTMCell._flatten_state
    _state_droppable = LSTMCell._state_droppable

    def __init__(self, num_units: int, forget_bias: float = 1.0, input_size: Optional[int] = None,
                 activation: Activation = "tanh", layer_norm: bool = True, norm_gain: float = 1.0,
                 norm_shift: float = 0.0, dropout_keep_prob: float = 1.0, dropout_prob_seed: Optional[int] = None,
                 dtype: DTypeLike = np.float32, input_depth: Optional[int] = None, seed: Optional[int] = None,
                 kernel_initializer: Union[None, str, InitializerFn] = None,
                 bias_initializer: Union[None, str, InitializerFn] = None) -> None:
        if input_size is not None:  # kept in TF's position, so that TF's positional calls work
            warnings.warn("LayerNormBasicLSTMCell: input_size is deprecated and unused (as in TF1)",
                          DeprecationWarning, stacklevel=2)
        self.forget_bias = _number(forget_bias, "forget_bias")
        self.activation = activation_name(activation)
        if not isinstance(layer_norm, (bool, np.bool_)):
            raise TypeError(f"layer_norm must be a bool, got {type(layer_norm).__name__}")
        self.layer_norm = bool(layer_norm)
        self.norm_gain = _number(norm_gain, "norm_gain")
        self.norm_shift = _number(norm_shift, "norm_shift")
        keep = _number(dropout_keep_prob, "dropout_keep_prob")
        if not 0.0 < keep <= 1.0:
            raise ValueError(f"dropout_keep_prob must lie in (0, 1], got {keep}")
        self.dropout_keep_prob = keep
        self._set_stream_seed(dropout_prob_seed, "dropout_prob_seed")
        super().__init__(num_units, dtype=dtype, input_depth=input_depth, seed=seed,
                         kernel_initializer=kernel_initializer, bias_initializer=bias_initializer)

    # ---- variables --------------------------------------------------------------
    def _variable_specs(self, rng, input_depth):
        H = self.num_units
        specs = [("kernel", self._kernel(rng, (input_depth + H, 4 * H)))]
        if not self.layer_norm:
            bias = (glorot_uniform(rng, (4 * H,), self.dtype) if self.bias_initializer is None
                    else self._bias(rng, (4 * H,)))
            return specs + [("bias", bias)]
        for norm in NORMS:
            specs += [(f"{norm}/gamma", np.full(H, self.norm_gain, self.dtype)),
                      (f"{norm}/beta", np.full(H, self.norm_shift, self.dtype))]
        return specs

    # ---- kernels ----------------------------------------------------------------
    _kernel_name = "layer_norm_lstm"

    def _kernel_variables(self):
        v = self.variables
        if self.layer_norm:
            return (v["kernel"], None, *(v[f"{norm}/{part}"] for norm in NORMS for part in ("gamma", "beta")))
        return (v["kernel"], v["bias"]) + (None,) * (2 * len(NORMS))

    @property
    def dropout_prob_seed(self) -> int:
        """The candidate masks' seed (the dropout stream's)."""
        return self.stream_seed

    @dropout_prob_seed.setter
    def dropout_prob_seed(self, value: int) -> None:
        self.stream_seed = value

    def _kernel_options(self):
        """(forget_bias, activation, dropout_keep_prob, dropout_seed,
        dropout_first_row) without dropout: inference and generation (see
        _forward)."""
        return (self.forget_bias, self.activation, 1.0, 0, 0)

    # Dropout draws a fresh mask at every training forward: its seed (53
    # bits, exact in the kernel's double option) and first row are options
    # of that forward's kernel call, and of its backward's.
    def _forward(self, x, lengths, state, time_major, tape, training=False, state_masks=None):
        if not (training and self.dropout_keep_prob < 1.0):
            if tape is not None:
                tape["dropout_options"] = None
            return super()._forward(x, lengths, state, time_major, tape, training, state_masks)
        forward, _, variables, (forget_bias, activation, _, _, _) = self._kernel_calls()
        options = (forget_bias, activation, self.dropout_keep_prob,
                   random.subseed(self.stream_seed, self._next_call()) >> 11, self.first_row)
        outputs, *final = forward(x, *variables, *state, lengths, time_major, *options,
                                  state_masks[-1] if state_masks else None, tape)
        if tape is not None:
            tape["dropout_options"] = options
        return outputs, final

    def _backward(self, tape, d_outputs, d_final, input_grad=True):
        options = tape.get("dropout_options")
        if options is None:
            return super()._backward(tape, d_outputs, d_final, input_grad)
        _, backward, variables, _ = self._kernel_calls()
        dx, *d_initial, grads = backward(tape, d_outputs, *d_final, *variables, *options, input_grad)
        return dx, d_initial, grads

    def __repr__(self) -> str:
        return (f"LayerNormBasicLSTMCell(num_units={self.num_units}, layer_norm={self.layer_norm}, "
                f"dropout_keep_prob={self.dropout_keep_prob}, dtype={self.dtype.name})")
