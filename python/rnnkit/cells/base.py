"""The cell protocol shared by every recurrent cell.

A cell owns its variables (TF names, TF layout) and knows how to run itself
over a whole sequence in one C++ call (`_forward`) and back again
(`_backward`). `dynamic_rnn`, `RNN`, `MultiRNNCell` and the single-step
`cell(x, state)` are all built on those two methods.

A cell with C++ kernels (cell.hpp's description, bound by bind_cell.hpp)
declares only `_kernel_name` (their name in rnnkit._core), its variable specs,
its state widths and packing, and its options (`_kernel_options`); this
class calls the kernels, whose arguments are the same for every cell:
  <_kernel_name>_forward(x, *variables, *state, sequence_length, time_major, *options, state_mask, tape)
  <_kernel_name>_backward(tape, d_outputs, *d_final_state, *variables, *options, input_grad)

Internally a state is a flat list of [B, width] arrays (`_flatten_state`);
the user-facing structure (an array, an LSTMStateTuple, a tuple of layers)
is rebuilt by `_pack_state`.
"""

from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np

from .. import _core
from .._checks import as_float, float_dtype, is_ready, non_negative_int, positive_int, shape_str, token_ids
from .. import initializers
from .._typing import ArrayLike, DTypeLike, FloatArray, InitializerFn, State, StateSize
from ..variables import BuiltOnFirstUse, Variables

_INT32 = np.dtype(np.int32)


class RNNCell(BuiltOnFirstUse):
    """Base class. Subclasses set `scope_name` and implement `_variable_specs`
    (and `_state_widths`, `_pack_state` for a state other than one [B, H]
    array); a cell with C++ kernels sets `_kernel_name`, any other implements
    `_forward` and `_backward`."""

    scope_name = "rnn_cell"

    # The name of the cell's kernel pair in rnnkit._core ("gru":
    # _core.gru_forward, _core.gru_backward), and the step cell generation
    # builds from the same arguments; None for a cell without kernels.
    _kernel_name: Optional[str] = None

    # Does `_forward` take one step as it comes (x [B, D] or int32 ids [B], and
    # the state's own arrays from `_kernel_state`), in a single kernel call?
    # Then `cell(x, state)` calls it straight away. Wrappers, which work on
    # whole sequences, do not.
    _kernel_steps = False

    def __init__(self, num_units: int, dtype: DTypeLike = np.float32, input_depth: Optional[int] = None,
                 seed: Optional[int] = None, kernel_initializer: Union[None, str, InitializerFn] = None,
                 bias_initializer: Union[None, str, InitializerFn] = None) -> None:
        self.num_units = positive_int(num_units, "num_units")
        self.dtype = float_dtype(dtype)
        self.seed = seed
        self.kernel_initializer = initializers.get(kernel_initializer, "kernel_initializer")
        self.bias_initializer = initializers.get(bias_initializer, "bias_initializer")
        self.variables = Variables(type(self).__name__)
        self.grads: dict[str, FloatArray] = {}
        self.input_depth = None
        if input_depth is not None:
            self.build(positive_int(input_depth, "input_depth"))

    # ---- states ---------------------------------------------------------------
    @property
    def output_size(self) -> int:
        return self.num_units

    @property
    def state_size(self) -> StateSize:
        return self.num_units

    def _state_widths(self):
        """Widths of the flat state arrays."""
        return [self.num_units]

    def _pack_state(self, arrays):
        return arrays[0]

    def _state_droppable(self):
        """Per flat state array: may DropoutWrapper drop it? (an LSTM's c: no)"""
        return [True] * len(self._state_widths())

    def _flatten_state(self, state, batch_size, name="initial_state"):
        """The user's state as flat [B, width] arrays of the cell's dtype."""
        if isinstance(state, (tuple, list)):
            raise TypeError(f"{name} must be one array [B, {self.num_units}] for {type(self).__name__}, got a {type(state).__name__}")
        return [_state_array(state, name, self.dtype, batch_size, self.num_units)]

    def _kernel_state(self, state):
        """The flat state, when `state` is already built of arrays (whose
        shapes and dtypes the kernel checks); else None."""
        return [state] if type(state) is np.ndarray else None

    def zero_state(self, batch_size: int, dtype: Optional[DTypeLike] = None) -> State:
        """The all-zero state for `batch_size` rows."""
        batch_size = non_negative_int(batch_size, "batch_size")
        dt = self.dtype if dtype is None else float_dtype(dtype)
        return self._pack_state([np.zeros((batch_size, w), dtype=dt) for w in self._state_widths()])

    # ---- running ------------------------------------------------------------
    def _prepare_inputs(self, inputs, name="inputs", layout="[B, T, D]"):
        """Float inputs of rank 3 as the cell's dtype (building the cell on
        first use), or integer token ids of rank 2 meaning one_hot(ids, input_depth)."""
        arr = np.asarray(inputs)
        if arr.dtype.kind in "iu" and arr.ndim == 2:
            return self._token_ids(arr, name)
        x = as_float(arr, name, self.dtype, ndim=3, layout=layout)
        self.build(x.shape[2])
        return x

    def _token_ids(self, ids, name):
        if not self.built:
            raise ValueError(
                f"integer {name} are token ids and need the cell's input_depth: "
                f"construct it with input_depth=<vocabulary size>"
            )
        return token_ids(ids, self.input_depth, name)

    def __call__(self, inputs: ArrayLike, state: State) -> tuple[FloatArray, State]:
        """One time step: inputs [B, D] (or token ids [B]), state -> (output [B, out], new_state).

        Sampling calls this once per generated token, so inputs and states
        that are already what the kernel takes (arrays of the cell's dtype,
        or int32 ids) go straight to it, which checks every shape; anything
        else is converted first."""
        # The kernels also take whole sequences (one rank more): the rank
        # checks here keep one step to one step's input.
        if self._kernel_steps and type(inputs) is np.ndarray and self.input_depth is not None and (
                (inputs.dtype is self.dtype and inputs.ndim == 2) or (inputs.dtype is _INT32 and inputs.ndim == 1)):
            try:
                result = self._kernel_step(inputs, state)
                if result is not None:
                    return result
            except (TypeError, ValueError):
                pass  # not usable as it is: the path below converts it, or says what is wrong
        arr = np.asarray(inputs)
        if arr.dtype.kind in "iu":
            if arr.ndim != 1:
                raise ValueError(f"inputs (token ids) of one step must have rank 1 [B], got shape "
                                 f"{shape_str(arr.shape)} (dynamic_rnn runs a whole sequence)")
            x = self._token_ids(arr, "inputs")[None]
        else:
            x = as_float(arr, "inputs", self.dtype, ndim=2, layout="[B, D] (one step; dynamic_rnn runs a whole sequence)")
            self.build(x.shape[1])
            x = x[None]
        flat = self._flatten_state(state, x.shape[1], name="state")
        outputs, final = self._forward(x, None, flat, True, None)
        return outputs[0], self._pack_state(final)

    def _kernel_step(self, inputs, state):
        """`cell(inputs, state)` in one kernel call, for a state already built
        of arrays (`_kernel_state`); None for any other state. The kernel
        checks every shape and dtype (TypeError, ValueError)."""
        flat = self._kernel_state(state)
        if flat is None:
            return None
        if self._kernel_name is None:  # a stack of cells
            outputs, final = self._forward(inputs, None, flat, True, None)
            return outputs, self._pack_state(final)
        # _forward's kernel call in this frame: a sampling loop makes this call once per token
        forward, _, variables, options = self._kernel_calls()
        result = forward(inputs, *variables, *flat, None, True, *options, None, None)  # (outputs, *state)
        return result[0], self._pack_state(result[1:])

    def _kernel_variables(self):
        """The variables as the kernels take them: creation order, unless the
        cell says otherwise (None for an absent optional variable)."""
        return tuple(self.variables.values())

    def _kernel_options(self):
        """The cell's options as its kernels take them, after the variables."""
        return ()

    _calls: Optional[tuple[Any, ...]] = None  # (forward, backward, variables, options), once built

    def _kernel_calls(self):
        """The kernel pair and its variable and option arguments. Made once:
        the arrays are live (assignment copies into them), and a single step
        pays for every lookup."""
        if self._calls is None:
            name = self._kernel_name
            self._calls = (getattr(_core, name + "_forward"), getattr(_core, name + "_backward"),
                           self._kernel_variables(), tuple(self._kernel_options()))
        return self._calls

    def _step_cell(self):
        """(kind, arguments) of the C++ step cell that runs this cell one step
        at a time (generation): the kernel's name, its variables and options."""
        if self._kernel_name is None:
            raise TypeError(f"generation does not support the cell {type(self).__name__}")
        _, _, variables, options = self._kernel_calls()
        return self._kernel_name, (*variables, *options)

    def _forward(self, x, lengths, state, time_major, tape, training=False, state_masks=None):
        """x [B, T, D] (or [T, B, D]) of the cell's dtype, or int32 ids [B, T];
        lengths int32 [B] or None; state: flat arrays. Fills `tape` (a dict)
        when not None. `training` turns dropout wrappers on; `state_masks`
        (aligned with the flat state, None entries for no dropout) are
        DropoutWrapper's masks on the state carried between steps.
        Returns (outputs, final flat state)."""
        # positional: a keyword argument costs the binding about a microsecond. The
        # state mask drops the recurrent part, the last.
        forward, _, variables, options = self._kernel_calls()
        outputs, *final = forward(x, *variables, *state, lengths, time_major, *options,
                                  state_masks[-1] if state_masks else None, tape)
        return outputs, final

    def _forward_no_work(self, x, state, tape):
        """What `_forward` gives for a sequence with no rows or no steps (x
        [0, T, ...] or [B, 0, ...] either way round): empty outputs and the
        initial state as the final state, at once, where the kernels would
        still walk the other axis. Records in `tape` what
        `_backward_no_work` needs."""
        outputs = np.zeros(x.shape[:2] + (self.output_size,), self.dtype)
        if tape is not None:
            tape.clear()
            tape["no_work_inputs"] = x  # holds no data: one of its first two sizes is 0
        return outputs, [s.copy() for s in state]

    def _backward_no_work(self, tape, d_outputs, d_final, input_grad=True):
        """`_backward` after `_forward_no_work`: the final state is the
        initial state, so its gradient passes through; the inputs' (none for
        token ids) and the variables' gradients are zeros."""
        x = tape["no_work_inputs"]
        dx = np.zeros(x.shape, self.dtype) if input_grad and x.dtype.kind == "f" else None
        grads = {name: np.zeros_like(v) for name, v in self.variables.items()}
        return dx, [d.copy() for d in d_final], grads

    def _backward(self, tape, d_outputs, d_final, input_grad=True):
        """BPTT for the forward that filled `tape`.
        Returns (d_inputs, d_initial flat state, {variable name: gradient});
        d_inputs is None for token ids, or when `input_grad` is False (the
        caller has no use for it: the first layer of a model)."""
        _, backward, variables, options = self._kernel_calls()
        dx, *d_initial, grads = backward(tape, d_outputs, *d_final, *variables, *options, input_grad)
        return dx, d_initial, grads

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_units={self.num_units}, dtype={self.dtype.name})"


def _state_array(value, name, dtype, batch_size, width):
    if is_ready(value, dtype, (batch_size, width)):
        return value  # the common case
    arr = as_float(value, name, dtype)
    if arr.shape != (batch_size, width):
        raise ValueError(f"{name} must have shape {shape_str((batch_size, width))}, got {shape_str(arr.shape)}")
    return arr
