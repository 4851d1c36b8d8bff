"""Running a cell over sequences: dynamic_rnn and static_rnn (inference),
last_output, and the RNN layer (forward + BPTT backward). Each direction is
one C++ call per cell."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np

from . import _core
from ._checks import as_float, float_dtype, sequence_lengths, shape_str
from ._guard import InUse
from ._typing import ArrayLike, DTypeLike, FloatArray, NDArray, State

if TYPE_CHECKING:
    from .cells.base import RNNCell
    from .variables import Variables


def _time_axes(x, time_major):
    """(T, B) of a rank-3 input."""
    return (x.shape[0], x.shape[1]) if time_major else (x.shape[1], x.shape[0])


def _run_forward(cell, inputs, sequence_length, initial_state, time_major, tape, training=False):
    """Shared by dynamic_rnn and RNN.forward: checks, then one cell._forward."""
    x = cell._prepare_inputs(inputs, layout="[T, B, D]" if time_major else "[B, T, D]")
    steps, batch = _time_axes(x, time_major)
    lengths = sequence_lengths(sequence_length, batch, steps)
    if tape is not None and lengths is not None and lengths is sequence_length:
        lengths = lengths.copy()  # wrappers keep it for backward: not the caller's array
    if initial_state is None:  # the flat zero state (what zero_state would pack, flattened back)
        state = [np.zeros((batch, w), cell.dtype) for w in cell._state_widths()]
    else:
        state = cell._flatten_state(initial_state, batch)
    if steps == 0 or batch == 0:
        outputs, final = cell._forward_no_work(x, state, tape)
    else:
        outputs, final = cell._forward(x, lengths, state, bool(time_major), tape, training=bool(training))
    return x, outputs, final


def dynamic_rnn(cell: RNNCell, inputs: ArrayLike, sequence_length: Optional[ArrayLike] = None,
                initial_state: State = None, dtype: Optional[DTypeLike] = None,
                time_major: bool = False) -> tuple[FloatArray, State]:
    """TF1's tf.nn.dynamic_rnn.

    Args:
      cell: an rnnkit cell.
      inputs: [B, T, D] ([T, B, D] when `time_major`), float.
      sequence_length: optional ints [B] in [0, T]; past a row's length its
        outputs are zero and its state is carried unchanged.
      initial_state: the cell's state structure; zeros when None.
      dtype: the cell's dtype, if given (must agree with it).
    Returns:
      (outputs [B, T, out] (or [T, B, out]), final_state)
    """
    if dtype is not None and float_dtype(dtype) != cell.dtype:
        raise TypeError(f"dtype must match the cell's dtype {cell.dtype}, got {float_dtype(dtype)}")
    _, outputs, final = _run_forward(cell, inputs, sequence_length, initial_state, time_major, None)
    return outputs, cell._pack_state(final)


def _stack_steps(inputs):
    """TF1's static inputs, a list of T arrays [B, D] (or ids [B]), as one
    time-major array [T, B, D] (or [T, B])."""
    if not isinstance(inputs, (list, tuple)):
        raise TypeError(f"inputs must be a list of T arrays [B, D], got {type(inputs).__name__}")
    if not inputs:
        raise ValueError("inputs must hold at least one step [B, D], got an empty list")
    steps = [np.asarray(x) for x in inputs]
    for t, x in enumerate(steps):
        if x.shape != steps[0].shape or x.dtype != steps[0].dtype:
            raise ValueError(f"inputs[{t}] must have inputs[0]'s shape {shape_str(steps[0].shape)} and dtype "
                             f"{steps[0].dtype}, got {shape_str(x.shape)} and {x.dtype}")
    if steps[0].ndim != (1 if steps[0].dtype.kind in "iu" else 2):
        raise ValueError(f"inputs[0] must have rank 2 [B, D] (or rank 1 [B] for token ids), "
                         f"got shape {shape_str(steps[0].shape)}")
    return np.stack(steps)


def static_rnn(cell: RNNCell, inputs: Sequence[ArrayLike], initial_state: State = None, dtype: Optional[DTypeLike] = None,
               sequence_length: Optional[ArrayLike] = None) -> tuple[list[FloatArray], State]:
    """TF1's tf.nn.static_rnn (tf.contrib.rnn.static_rnn): the same
    computation as dynamic_rnn, on a list of steps, in one C++ call.

    Args:
      cell: an rnnkit cell.
      inputs: a list of T arrays [B, D] (or integer token ids [B]).
      initial_state, dtype, sequence_length: as for dynamic_rnn.
    Returns:
      (outputs, final_state): outputs a list of T arrays [B, out], zero past
      each row's length.
    """
    outputs, state = dynamic_rnn(cell, _stack_steps(inputs), sequence_length, initial_state, dtype,
                                 time_major=True)
    return list(outputs), state


def _last_output(outputs, lengths, time_major):
    """last_output for checked int32 lengths (or None)."""
    return _core.last_output(outputs, lengths, bool(time_major))


def _last_output_backward(d_last, lengths, steps, time_major):
    """d_last [B, H] into a zero [B, T, H] ([T, B, H]) at each row's last valid step."""
    return _core.last_output_backward(d_last, lengths, steps, bool(time_major))


def last_output(outputs: ArrayLike, sequence_length: Optional[ArrayLike] = None,
                time_major: bool = False) -> FloatArray:
    """Each row's output at its last valid step: outputs[b, len_b − 1]
    (T − 1 without lengths), zeros for a row of length 0. For dynamic_rnn's
    outputs this is the final state's h for every cell but LSTMCell(num_proj)
    (whose output is the projected one).

    Args:
      outputs: float [B, T, H] ([T, B, H] when time_major).
      sequence_length: optional ints [B] in [0, T].
    Returns:
      [B, H] in outputs' dtype.
    """
    x = as_float(outputs, "outputs", None, ndim=3, layout="[T, B, H]" if time_major else "[B, T, H]")
    float_dtype(x.dtype, "outputs")
    steps, batch = _time_axes(x, time_major)
    return _last_output(x, sequence_lengths(sequence_length, batch, steps), time_major)


class RNN:
    """A trainable recurrent layer over one cell.

    forward(x) runs the whole sequence in C++ and records what BPTT needs
    (copies of its inputs: backward uses what forward saw); backward(d_outputs,
    d_final_state) returns (d_inputs, d_initial_state) and leaves the variable
    gradients in `cell.grads`. One thread at a time may run forward or
    backward: a second gets a RuntimeError. Inference (`layer(x)`) may run in
    many threads at once.

    return_sequences=False: forward's outputs are each row's last valid
    output [B, out] (see last_output), and backward takes d_outputs [B, out]."""

    def __init__(self, cell: RNNCell, return_sequences: bool = True) -> None:
        if not isinstance(return_sequences, (bool, np.bool_)):
            raise TypeError(f"return_sequences must be a bool, got {type(return_sequences).__name__}")
        self.cell = cell
        self.return_sequences = bool(return_sequences)
        self._tape: dict[str, Any] = {}  # filled by each forward, spent by its backward
        # (output shape, final state shapes) of the last forward
        self._recorded: Optional[tuple[tuple[int, ...], list[tuple[int, ...]]]] = None
        # (lengths, T, time_major) of the last forward without return_sequences
        self._last_step: Optional[tuple[Optional[NDArray[np.int32]], int, bool]] = None
        self._in_use = InUse(type(self).__name__)

    @property
    def variables(self) -> Variables:
        return self.cell.variables

    @property
    def grads(self) -> dict[str, FloatArray]:
        return self.cell.grads

    def forward(self, x: ArrayLike, sequence_length: Optional[ArrayLike] = None, initial_state: State = None,
                time_major: bool = False, training: bool = False) -> tuple[FloatArray, State]:
        """x: [B, T, D] ([T, B, D] when time_major), or token ids [B, T].
        `training=True` turns on the dropout of DropoutWrapper cells.
        Returns (outputs, final_state); outputs [B, out] without return_sequences."""
        with self._in_use:
            # a forward that fails leaves no tape behind for backward to read
            tape, self._recorded = self._tape, None
            _, outputs, final = _run_forward(self.cell, x, sequence_length, initial_state, time_major, tape,
                                             training)
            if not self.return_sequences:
                steps, batch = _time_axes(outputs, time_major)
                lengths = sequence_lengths(sequence_length, batch, steps)
                if lengths is sequence_length and lengths is not None:
                    lengths = lengths.copy()  # kept for backward: not the caller's array
                self._last_step = (lengths, steps, time_major)
                last = _last_output(outputs, lengths, time_major)
            self._recorded = (outputs.shape, [a.shape for a in final])
            return outputs if self.return_sequences else last, self.cell._pack_state(final)

    def __call__(self, x: ArrayLike, sequence_length: Optional[ArrayLike] = None, initial_state: State = None,
                 time_major: bool = False) -> tuple[FloatArray, State]:
        """Inference only (no tape): same as dynamic_rnn(cell, x, ...)
        (then last_output without return_sequences)."""
        outputs, state = dynamic_rnn(self.cell, x, sequence_length, initial_state, time_major=time_major)
        if not self.return_sequences:
            outputs = last_output(outputs, sequence_length, time_major)
        return outputs, state

    def backward(self, d_outputs: ArrayLike, d_final_state: State = None,
                 input_grad: bool = True) -> tuple[Optional[FloatArray], State]:
        """d_outputs: like forward's outputs; d_final_state: like its final
        state (zeros when None). Returns (d_inputs, d_initial_state);
        d_inputs is None for token ids, and with `input_grad=False`, which
        skips its [B, T, D] product (a first layer fed with data needs none)."""
        with self._in_use:
            return self._backward(d_outputs, d_final_state, input_grad)

    def _backward(self, d_outputs, d_final_state, input_grad):
        if self._recorded is None:
            raise RuntimeError("RNN.backward called before forward: call forward(x) first")
        out_shape, state_shapes = self._recorded
        cell = self.cell
        if not self.return_sequences:
            lengths, steps, time_major = self._last_step
            last_shape = (state_shapes[0][0], out_shape[2])
            d_last = as_float(d_outputs, "d_outputs", cell.dtype)
            if d_last.shape != last_shape:
                raise ValueError(f"d_outputs must have shape {shape_str(last_shape)} (the last outputs' shape), "
                                 f"got {shape_str(d_last.shape)}")
            d_outputs = _last_output_backward(d_last, lengths, steps, time_major)
        d_out = np.asarray(d_outputs)
        if d_out.shape != out_shape:
            raise ValueError(f"d_outputs must have shape {list(out_shape)} (the outputs' shape), got {list(d_out.shape)}")
        d_out = as_float(d_out, "d_outputs", cell.dtype)
        batch = state_shapes[0][0]
        if d_final_state is None:
            d_final = [np.zeros(s, cell.dtype) for s in state_shapes]
        else:
            d_final = cell._flatten_state(d_final_state, batch, name="d_final_state")
        self._recorded = None
        backward = cell._backward_no_work if 0 in out_shape[:2] else cell._backward
        dx, d_initial, grads = backward(self._tape, d_out, d_final, bool(input_grad))
        cell.grads.clear()
        cell.grads.update((name, grads[name]) for name in cell.variables)  # in variable order
        return dx, cell._pack_state(d_initial)

    def grads_and_vars(self) -> list[tuple[FloatArray, FloatArray]]:
        """[(gradient, variable)] in the cell's variable order."""
        return grads_and_vars(self.cell)


def grads_and_vars(owner: Any) -> list[tuple[FloatArray, FloatArray]]:
    """[(owner.grads[name], owner.variables[name])] for every variable."""
    if not owner.grads:
        raise RuntimeError(f"{type(owner).__name__} has no gradients yet: call backward first")
    return [(owner.grads[name], var) for name, var in owner.variables.items()]
