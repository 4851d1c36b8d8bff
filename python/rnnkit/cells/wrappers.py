"""Cell wrappers: ResidualWrapper (and the shared wrapper plumbing)."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .. import _core
from .._typing import FloatArray, StateSize
from ..variables import Variables
from .base import RNNCell


class CellWrapper(RNNCell):
    """Wraps a cell: same variables (TF adds no scope), state and sizes."""

    def __init__(self, cell: RNNCell) -> None:
        if not isinstance(cell, RNNCell):
            raise TypeError(f"cell must be an rnnkit cell, got {type(cell).__name__}")
        self.cell = cell

    # everything about variables and states is the wrapped cell's, read-only
    # here (type: ignore[override]: the base class's are writable attributes)
    @property
    def scope_name(self) -> str:  # type: ignore[override]
        return self.cell.scope_name

    @property
    def dtype(self) -> np.dtype[Any]:  # type: ignore[override]
        return self.cell.dtype

    @property
    def num_units(self) -> int:
        return self.cell.num_units

    @property
    def variables(self) -> Variables:  # type: ignore[override]
        return self.cell.variables

    @property
    def grads(self) -> dict[str, FloatArray]:
        return self.cell.grads

    @property
    def input_depth(self) -> Optional[int]:  # type: ignore[override]
        return self.cell.input_depth

    @property
    def output_size(self) -> int:
        return self.cell.output_size

    @property
    def state_size(self) -> StateSize:
        return self.cell.state_size

    def build(self, input_depth: int) -> None:
        self.cell.build(input_depth)

    def _state_widths(self):
        return self.cell._state_widths()

    def _pack_state(self, arrays):
        return self.cell._pack_state(arrays)

    def _flatten_state(self, state, batch_size, name="initial_state"):
        return self.cell._flatten_state(state, batch_size, name)

    def _state_droppable(self):
        return self.cell._state_droppable()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.cell!r})"


class ResidualWrapper(CellWrapper):
    """TF1's ResidualWrapper: output = inputs + cell output; state unchanged.
    The input depth must equal the cell's output size."""

    def build(self, input_depth: int) -> None:
        if input_depth != self.cell.output_size:
            raise ValueError(
                f"ResidualWrapper: inputs must have depth {self.cell.output_size} (the cell's output size), got {input_depth}"
            )
        self.cell.build(input_depth)

    def _check_depth(self, x):
        if x.dtype.kind != "f":
            raise TypeError("ResidualWrapper needs float inputs (it adds them to the outputs), got token ids")
        self.build(x.shape[-1])

    def _forward(self, x, lengths, state, time_major, tape, training=False, state_masks=None):
        self._check_depth(x)
        inner = None if tape is None else tape.setdefault("inner", {})
        outputs, final = self.cell._forward(x, lengths, state, time_major, inner, training, state_masks)
        _core.add_on_live_steps(outputs, x, lengths, time_major)
        if tape is not None:
            tape["lengths"], tape["time_major"] = lengths, time_major
        return outputs, final

    def _backward(self, tape, d_outputs, d_final, input_grad=True):
        dx, d_initial, grads = self.cell._backward(tape["inner"], d_outputs, d_final, input_grad)
        if dx is not None:
            _core.add_on_live_steps(dx, np.ascontiguousarray(d_outputs), tape["lengths"], tape["time_major"])
        return dx, d_initial, grads


def _keep_prob(value, name):
    value = float(value)
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{name} must lie in (0, 1], got {value}")
    return value


class DropoutWrapper(CellWrapper):
    """TF1's DropoutWrapper: inverted dropout (kept values scaled by
    1/keep_prob) on the cell's inputs, outputs and state — never on an LSTM's
    c. Active only when training (`RNN.forward(..., training=True)`,
    `Sequential.train_step`). With `variational_recurrent=True` each sequence
    gets one mask per place, reused at every time step. `seed` makes the
    masks reproducible."""

    def __init__(self, cell, input_keep_prob=1.0, output_keep_prob=1.0, state_keep_prob=1.0,
                 variational_recurrent=False, seed=None):
        super().__init__(cell)
        self.input_keep_prob = _keep_prob(input_keep_prob, "input_keep_prob")
        self.output_keep_prob = _keep_prob(output_keep_prob, "output_keep_prob")
        self.state_keep_prob = _keep_prob(state_keep_prob, "state_keep_prob")
        self.variational_recurrent = bool(variational_recurrent)
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def _mask(self, keep, batch, steps, width, time_major):
        """0 or 1/keep, [B, W] when variational, else shaped like the sequence."""
        if self.variational_recurrent:
            shape = (batch, width)
        else:
            shape = (steps, batch, width) if time_major else (batch, steps, width)
        kept = self._rng.random(shape) < keep
        return (kept * (1.0 / keep)).astype(self.dtype)

    def _forward(self, x, lengths, state, time_major, tape, training=False, state_masks=None):
        if not training:
            inner = None if tape is None else tape.setdefault("inner", {})
            if tape is not None:
                tape["masks"], tape["ids"] = (None, None), False
            return self.cell._forward(x, lengths, state, time_major, inner, training, state_masks)
        steps, batch = (x.shape[0], x.shape[1]) if time_major else (x.shape[1], x.shape[0])
        input_mask = output_mask = None
        ids = x.dtype.kind != "f"
        if self.input_keep_prob < 1.0:
            if ids:  # token ids: drop entries of their one-hot vectors
                from ..ops import one_hot
                x = one_hot(x, self.cell.input_depth, dtype=self.dtype)
            input_mask = self._mask(self.input_keep_prob, batch, steps, x.shape[2], time_major)
            x = _core.apply_mask(x, input_mask, time_major)
        if self.state_keep_prob < 1.0:
            ours = [self._mask(self.state_keep_prob, batch, steps, w, time_major) if drop else None
                    for w, drop in zip(self._state_widths(), self._state_droppable())]
            state_masks = ours if not state_masks else [
                a if b is None else b if a is None else a * b for a, b in zip(ours, state_masks)]
        inner = None if tape is None else tape.setdefault("inner", {})
        outputs, final = self.cell._forward(x, lengths, state, time_major, inner, training, state_masks)
        if self.output_keep_prob < 1.0:
            output_mask = self._mask(self.output_keep_prob, batch, steps, outputs.shape[2], time_major)
            outputs = _core.apply_mask(outputs, output_mask, time_major)
        if tape is not None:
            tape["masks"] = (input_mask, output_mask)
            tape["time_major"], tape["ids"] = time_major, ids
        return outputs, final

    def _backward(self, tape, d_outputs, d_final, input_grad=True):
        input_mask, output_mask = tape["masks"]
        if output_mask is not None:
            d_outputs = _core.apply_mask(np.ascontiguousarray(d_outputs, self.dtype), output_mask, tape["time_major"])
        dx, d_initial, grads = self.cell._backward(tape["inner"], d_outputs, d_final,
                                                   input_grad and not tape["ids"])
        if dx is None:  # token ids have no gradient; or it was not wanted
            return None, d_initial, grads
        if input_mask is not None:
            dx = _core.apply_mask(dx, input_mask, tape["time_major"])
        return dx, d_initial, grads
