"""LSTM cells: BasicLSTMCell and LSTMCell, sharing one C++ kernel pair (rnnkit._core.lstm_*)."""

from __future__ import annotations

from collections import namedtuple
from typing import Any, Optional, Union

import numpy as np

from .._checks import activation_name, positive_int
from .._typing import Activation, DTypeLike, InitializerFn
from .base import RNNCell, _state_array


class LSTMStateTuple(namedtuple("LSTMStateTuple", ("c", "h"))):
    """(c, h): the cell state first, then the output state (TF's order)."""

    __slots__ = ()

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.c.dtype


def _optional_positive(value, name):
    if value is None:
        return None
    value = float(value)
    if not value > 0:
        raise ValueError(f"{name} must be > 0 or None, got {value}")
    return value


class LSTMCell(RNNCell):
    """TF1's LSTMCell.

    Variables: kernel [D + R, 4H] (R = num_proj or H), bias [4H], and with
    peepholes w_f_diag, w_i_diag, w_o_diag [H]; with num_proj projection/kernel
    [H, P]. Gates are i, j, f, o; `forget_bias` is added at call time.
    State: LSTMStateTuple(c [B, H], h [B, R])."""

    scope_name = "lstm_cell"
    _kernel_name = "lstm"
    _kernel_steps = True

    def __init__(self, num_units: int, use_peepholes: bool = False, cell_clip: Optional[float] = None,
                 num_proj: Optional[int] = None, proj_clip: Optional[float] = None, forget_bias: float = 1.0,
                 state_is_tuple: bool = True, activation: Activation = "tanh", dtype: DTypeLike = np.float32,
                 input_depth: Optional[int] = None, seed: Optional[int] = None,
                 kernel_initializer: Union[None, str, InitializerFn] = None,
                 bias_initializer: Union[None, str, InitializerFn] = None) -> None:
        self.use_peepholes = bool(use_peepholes)
        self.cell_clip = _optional_positive(cell_clip, "cell_clip")
        self.num_proj = None if num_proj is None else positive_int(num_proj, "num_proj")
        self.proj_clip = _optional_positive(proj_clip, "proj_clip")
        if self.proj_clip is not None and self.num_proj is None:
            raise ValueError("proj_clip needs num_proj")
        self.forget_bias = float(forget_bias)
        self.state_is_tuple = bool(state_is_tuple)
        self.activation = activation_name(activation)
        super().__init__(num_units, dtype=dtype, input_depth=input_depth, seed=seed,
                         kernel_initializer=kernel_initializer, bias_initializer=bias_initializer)

    # ---- variables ------------------------------------------------------------
    def _variable_specs(self, rng, input_depth):
        H, R = self.num_units, self.output_size
        specs = [
            ("kernel", self._kernel(rng, (input_depth + R, 4 * H))),
            ("bias", self._bias(rng, (4 * H,))),
        ]
        # TF1's LSTMCell gives the peepholes and the projection its kernel initializer
        if self.use_peepholes:  # TF creates these after the bias, in this order
            specs += [(n, self._kernel(rng, (H,))) for n in ("w_f_diag", "w_i_diag", "w_o_diag")]
        if self.num_proj is not None:
            specs.append(("projection/kernel", self._kernel(rng, (H, self.num_proj))))
        return specs

    # ---- states -----------------------------------------------------------------
    @property
    def output_size(self) -> int:
        return self.num_proj or self.num_units

    @property
    def state_size(self) -> Union[LSTMStateTuple, int]:
        if self.state_is_tuple:
            return LSTMStateTuple(self.num_units, self.output_size)
        return self.num_units + self.output_size

    def _state_widths(self):
        return [self.num_units, self.output_size]

    def _pack_state(self, arrays):
        c, h = arrays
        if self.state_is_tuple:
            return tuple.__new__(LSTMStateTuple, (c, h))  # namedtuple's own __new__ costs a Python call
        return np.concatenate([c, h], axis=1)

    def _kernel_state(self, state):
        if self.state_is_tuple and type(state) in (LSTMStateTuple, tuple) and len(state) == 2:
            return state  # (c, h): indexed like the flat [c, h]
        return None

    def _flatten_state(self, state, batch_size, name="initial_state"):
        H, R = self.num_units, self.output_size
        if self.state_is_tuple:
            if not (isinstance(state, tuple) and len(state) == 2):
                raise TypeError(f"{name} must be an LSTMStateTuple(c [B, {H}], h [B, {R}]), got {type(state).__name__}")
            return [_state_array(state[0], f"{name}.c", self.dtype, batch_size, H),
                    _state_array(state[1], f"{name}.h", self.dtype, batch_size, R)]
        if isinstance(state, tuple):
            raise TypeError(f"{name} must be one array [B, {H + R}] ([c, h]) when state_is_tuple=False, got a tuple")
        both = _state_array(state, name, self.dtype, batch_size, H + R)
        return [np.ascontiguousarray(both[:, :H]), np.ascontiguousarray(both[:, H:])]

    # ---- kernels ----------------------------------------------------------------
    def _kernel_variables(self):
        # creation order, None for a variable the options leave out
        return tuple(self.variables.get(n) for n in ("kernel", "bias", "w_f_diag", "w_i_diag", "w_o_diag",
                                                      "projection/kernel"))

    def _kernel_options(self):
        return (self.forget_bias, self.activation, self.cell_clip, self.proj_clip)

    def _state_droppable(self):
        return [False, True]  # c is never dropped


class BasicLSTMCell(LSTMCell):
    """TF1's BasicLSTMCell: kernel [D + H, 4H], bias [4H]; gates i, j, f, o."""

    scope_name = "basic_lstm_cell"

    def __init__(self, num_units: int, forget_bias: float = 1.0, state_is_tuple: bool = True,
                 activation: Activation = "tanh", dtype: DTypeLike = np.float32, input_depth: Optional[int] = None,
                 seed: Optional[int] = None, kernel_initializer: Union[None, str, InitializerFn] = None,
                 bias_initializer: Union[None, str, InitializerFn] = None) -> None:
        super().__init__(num_units, forget_bias=forget_bias, state_is_tuple=state_is_tuple,
                         activation=activation, dtype=dtype, input_depth=input_depth, seed=seed,
                         kernel_initializer=kernel_initializer, bias_initializer=bias_initializer)
