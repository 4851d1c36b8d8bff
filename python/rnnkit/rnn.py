"""Running a cell over sequences: dynamic_rnn (inference) and the RNN layer
(forward + BPTT backward). Each direction is one C++ call per cell."""

import numpy as np

from ._checks import as_float, float_dtype, sequence_lengths
from ._guard import InUse


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
    outputs, final = cell._forward(x, lengths, state, bool(time_major), tape, training=bool(training))
    return x, outputs, final


def dynamic_rnn(cell, inputs, sequence_length=None, initial_state=None, dtype=None, time_major=False):
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


class RNN:
    """A trainable recurrent layer over one cell.

    forward(x) runs the whole sequence in C++ and records what BPTT needs
    (copies of its inputs: backward uses what forward saw); backward(d_outputs,
    d_final_state) returns (d_inputs, d_initial_state) and leaves the variable
    gradients in `cell.grads`. One thread at a time may run forward or
    backward: a second gets a RuntimeError. Inference (`layer(x)`) may run in
    many threads at once."""

    def __init__(self, cell):
        self.cell = cell
        self._tape = {}  # filled by each forward, spent by its backward
        self._recorded = None  # (output shape, final state shapes) of the last forward
        self._in_use = InUse(type(self).__name__)

    @property
    def variables(self):
        return self.cell.variables

    @property
    def grads(self):
        return self.cell.grads

    def forward(self, x, sequence_length=None, initial_state=None, time_major=False, training=False):
        """x: [B, T, D] ([T, B, D] when time_major), or token ids [B, T].
        `training=True` turns on the dropout of DropoutWrapper cells.
        Returns (outputs, final_state)."""
        with self._in_use:
            # a forward that fails leaves no tape behind for backward to read
            tape, self._recorded = self._tape, None
            _, outputs, final = _run_forward(self.cell, x, sequence_length, initial_state, time_major, tape,
                                             training)
            self._recorded = (outputs.shape, [a.shape for a in final])
            return outputs, self.cell._pack_state(final)

    def __call__(self, x, sequence_length=None, initial_state=None, time_major=False):
        """Inference only (no tape): same as dynamic_rnn(cell, x, ...)."""
        return dynamic_rnn(self.cell, x, sequence_length, initial_state, time_major=time_major)

    def backward(self, d_outputs, d_final_state=None, input_grad=True):
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
        dx, d_initial, grads = cell._backward(self._tape, d_out, d_final, bool(input_grad))
        cell.grads.clear()
        cell.grads.update((name, grads[name]) for name in cell.variables)  # in variable order
        return dx, cell._pack_state(d_initial)

    def grads_and_vars(self):
        """[(gradient, variable)] in the cell's variable order."""
        return grads_and_vars(self.cell)


def grads_and_vars(owner):
    """[(owner.grads[name], owner.variables[name])] for every variable."""
    if not owner.grads:
        raise RuntimeError(f"{type(owner).__name__} has no gradients yet: call backward first")
    return [(owner.grads[name], var) for name, var in owner.variables.items()]
