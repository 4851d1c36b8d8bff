"""BasicRNNCell: h' = act([x, h] · kernel + bias)."""

import numpy as np

from .. import _core
from .base import RNNCell

ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear")


def activation_name(activation):
    """'tanh' etc., or the same numpy-style callables by their __name__."""
    name = activation if isinstance(activation, str) else getattr(activation, "__name__", None)
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    return name


class BasicRNNCell(RNNCell):
    """TF1's BasicRNNCell. Variables: kernel [D + H, H], bias [H]."""

    scope_name = "basic_rnn_cell"
    _kernel_steps = True

    def __init__(self, num_units, activation="tanh", dtype=np.float32, input_depth=None, seed=None,
                 kernel_initializer=None, bias_initializer=None):
        self.activation = activation_name(activation)
        super().__init__(num_units, dtype=dtype, input_depth=input_depth, seed=seed,
                         kernel_initializer=kernel_initializer, bias_initializer=bias_initializer)

    def _variable_specs(self, rng, input_depth):
        H = self.num_units
        return [
            ("kernel", self._kernel(rng, (input_depth + H, H))),
            ("bias", self._bias(rng, (H,))),
        ]

    def _step_cell(self):
        """(kind, weight args) of the C++ step cell that runs this cell one step at a time."""
        return "basic_rnn", (*self._variable_arrays(), self.activation)

    def _forward(self, x, lengths, state, time_major, tape, training=False, state_masks=None):
        # positional: a keyword argument costs the binding about a microsecond
        outputs, h = _core.basic_rnn_forward(x, *self._variable_arrays(), state[0], lengths, time_major,
                                             self.activation, state_masks[0] if state_masks else None, tape)
        return outputs, [h]

    def _backward(self, tape, d_outputs, d_final, input_grad=True):
        dx, dh0, grads = _core.basic_rnn_backward(tape, d_outputs, d_final[0], *self._variable_arrays(),
                                                  self.activation, input_grad)
        return dx, [dh0], grads
