"""Cell wrappers: ResidualWrapper (and the shared wrapper plumbing)."""

import numpy as np

from .. import _core
from .base import RNNCell


class CellWrapper(RNNCell):
    """Wraps a cell: same variables (TF adds no scope), state and sizes."""

    def __init__(self, cell):
        if not isinstance(cell, RNNCell):
            raise TypeError(f"cell must be an rnnkit cell, got {type(cell).__name__}")
        self.cell = cell

    # everything about variables and states is the wrapped cell's
    scope_name = property(lambda self: self.cell.scope_name)
    dtype = property(lambda self: self.cell.dtype)
    num_units = property(lambda self: self.cell.num_units)
    variables = property(lambda self: self.cell.variables)
    grads = property(lambda self: self.cell.grads)
    input_depth = property(lambda self: self.cell.input_depth)
    output_size = property(lambda self: self.cell.output_size)
    state_size = property(lambda self: self.cell.state_size)

    def build(self, input_depth):
        self.cell.build(input_depth)

    def _state_widths(self):
        return self.cell._state_widths()

    def _pack_state(self, arrays):
        return self.cell._pack_state(arrays)

    def _flatten_state(self, state, batch_size, name="initial_state"):
        return self.cell._flatten_state(state, batch_size, name)

    def __repr__(self):
        return f"{type(self).__name__}({self.cell!r})"


class ResidualWrapper(CellWrapper):
    """TF1's ResidualWrapper: output = inputs + cell output; state unchanged.
    The input depth must equal the cell's output size."""

    def build(self, input_depth):
        if input_depth != self.cell.output_size:
            raise ValueError(
                f"ResidualWrapper: inputs must have depth {self.cell.output_size} (the cell's output size), got {input_depth}"
            )
        self.cell.build(input_depth)

    def _check_depth(self, x):
        if x.dtype.kind != "f":
            raise TypeError("ResidualWrapper needs float inputs (it adds them to the outputs), got token ids")
        self.build(x.shape[-1])

    def _forward(self, x, lengths, state, time_major, tape):
        self._check_depth(x)
        inner = None if tape is None else tape.setdefault("inner", {})
        outputs, final = self.cell._forward(x, lengths, state, time_major, inner)
        _core.add_on_live_steps(outputs, x, lengths, time_major)
        if tape is not None:
            tape["lengths"], tape["time_major"] = lengths, time_major
        return outputs, final

    def _backward(self, tape, d_outputs, d_final):
        dx, d_initial, grads = self.cell._backward(tape["inner"], d_outputs, d_final)
        _core.add_on_live_steps(dx, np.ascontiguousarray(d_outputs), tape["lengths"], tape["time_major"])
        return dx, d_initial, grads
