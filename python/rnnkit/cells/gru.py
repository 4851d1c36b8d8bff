"""GRUCell: TF1's GRU, or with reset_after=True the PyTorch / Keras 3 / cuDNN variant.

TF1 (reset before the candidate's matmul):
    [r, u] = σ([x, h] · gates/kernel + gates/bias)
    c      = act([x, r ⊙ h] · candidate/kernel + candidate/bias)
    h'     = u ⊙ h + (1 - u) ⊙ c
reset_after=True (a different function; PyTorch's z is u and n is c):
    c      = act(x · candidate/input/kernel + candidate/input/bias
                 + r ⊙ (h · candidate/hidden/kernel + candidate/hidden/bias))
"""

from __future__ import annotations

from typing import Optional, Union

import numpy as np

from .._checks import activation_name
from .._typing import Activation, DTypeLike, InitializerFn
from .base import RNNCell


class GRUCell(RNNCell):
    """TF1's GRUCell, or the "reset after" GRU.

    Args:
      num_units: H.
      activation: the candidate's activation ('tanh', 'relu', 'sigmoid', 'linear').
      reset_after: False for TF1's formula, True for PyTorch's / Keras 3's / cuDNN's.
      dtype, input_depth, seed, kernel_initializer, bias_initializer: as for
        every cell; without a bias_initializer, gates/bias starts at 1.0 (TF1).

    Variables (TF's creation order):
      TF1: gates/kernel [D + H, 2H] (columns r | u), gates/bias [2H] (init 1.0),
        candidate/kernel [D + H, H], candidate/bias [H] (init 0).
      reset_after: gates/kernel [D + H, 2H], gates/bias [2H] (init 1.0),
        candidate/input/kernel [D, H], candidate/input/bias [H],
        candidate/hidden/kernel [H, H], candidate/hidden/bias [H] (biases init 0).
    State: one array [B, H]; output = new state."""

    scope_name = "gru_cell"
    _kernel_steps = True

    def __init__(self, num_units: int, activation: Activation = "tanh", reset_after: bool = False,
                 dtype: DTypeLike = np.float32, input_depth: Optional[int] = None, seed: Optional[int] = None,
                 kernel_initializer: Union[None, str, InitializerFn] = None,
                 bias_initializer: Union[None, str, InitializerFn] = None) -> None:
        self.activation = activation_name(activation)
        if not isinstance(reset_after, (bool, np.bool_)):
            raise TypeError(f"reset_after must be a bool, got {type(reset_after).__name__}")
        self.reset_after = bool(reset_after)
        self._kernel_name = "gru_reset_after" if self.reset_after else "gru"
        super().__init__(num_units, dtype=dtype, input_depth=input_depth, seed=seed,
                         kernel_initializer=kernel_initializer, bias_initializer=bias_initializer)

    def _variable_specs(self, rng, input_depth):
        H, D = self.num_units, input_depth
        specs = [
            ("gates/kernel", self._kernel(rng, (D + H, 2 * H))),
            ("gates/bias", self._bias(rng, (2 * H,), default=1.0)),
        ]
        if self.reset_after:
            specs += [
                ("candidate/input/kernel", self._kernel(rng, (D, H))),
                ("candidate/input/bias", self._bias(rng, (H,))),
                ("candidate/hidden/kernel", self._kernel(rng, (H, H))),
                ("candidate/hidden/bias", self._bias(rng, (H,))),
            ]
        else:
            specs += [
                ("candidate/kernel", self._kernel(rng, (D + H, H))),
                ("candidate/bias", self._bias(rng, (H,))),
            ]
        return specs

    def _kernel_options(self):
        return (self.activation,)

    def __repr__(self) -> str:
        return (f"GRUCell(num_units={self.num_units}, activation={self.activation!r}, "
                f"reset_after={self.reset_after}, dtype={self.dtype.name})")
