"""BasicRNNCell: h' = act([x, h] · kernel + bias)."""

from __future__ import annotations

from typing import Optional, Union

import numpy as np

from .._checks import activation_name
from .._typing import Activation, DTypeLike, InitializerFn
from .base import RNNCell


class BasicRNNCell(RNNCell):
    """TF1's BasicRNNCell. Variables: kernel [D + H, H], bias [H]."""

    scope_name = "basic_rnn_cell"
    _kernel_name = "basic_rnn"
    _kernel_steps = True

    def __init__(self, num_units: int, activation: Activation = "tanh", dtype: DTypeLike = np.float32,
                 input_depth: Optional[int] = None, seed: Optional[int] = None,
                 kernel_initializer: Union[None, str, InitializerFn] = None,
                 bias_initializer: Union[None, str, InitializerFn] = None) -> None:
        self.activation = activation_name(activation)
        super().__init__(num_units, dtype=dtype, input_depth=input_depth, seed=seed,
                         kernel_initializer=kernel_initializer, bias_initializer=bias_initializer)

    def _variable_specs(self, rng, input_depth):
        H = self.num_units
        return [
            ("kernel", self._kernel(rng, (input_depth + H, H))),
            ("bias", self._bias(rng, (H,))),
        ]

    def _kernel_options(self):
        return (self.activation,)
