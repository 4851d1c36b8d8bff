"""Cell wrappers: ResidualWrapper, DropoutWrapper (and the shared wrapper plumbing)."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .. import _core, random
from .._typing import ArrayLike, FloatArray, IntArray, NDArray, StateSize
from ..variables import Variables
from .base import RNNCell
from .dropout_stream import DropoutStream


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
    def num_units(self) -> int:  # type: ignore[override]
        return self.cell.num_units

    @property
    def variables(self) -> Variables:  # type: ignore[override]
        return self.cell.variables

    @property
    def grads(self) -> dict[str, FloatArray]:  # type: ignore[override]
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


class DropoutWrapper(CellWrapper, DropoutStream):
    """TF1's DropoutWrapper: inverted dropout (kept values scaled by
    1/keep_prob) on the cell's inputs, outputs and state — never on an LSTM's
    c. Active only when training (`RNN.forward(..., training=True)`,
    `Sequential.train_step`). With `variational_recurrent=True` each sequence
    gets one mask per place, reused at every time step.

    The masks are counter-based (rnnkit.random), not TF's stream. Unit u of
    row r at time step t of the mask at place p (0 the inputs, 1 the outputs,
    2 + k the k-th part of the flat state) is kept when

        uniforms(subseed(seed, call, p), n)[((first_row + r) * T + t) * W + u] < keep_prob

    (variational: [(first_row + r) * W + u]), T the call's number of time
    steps, W the place's width. `call` is `calls` when the training forward
    starts; each training forward advances `calls` by one. `first_row` (0)
    is the index of the call's first row in the global batch. So a row's
    masks depend on the seed, the call, its index in the global batch, t and
    u, not on how the batch is split: `Sequential.fit` with `groups` or
    `distributed` gives every gradient group of a step the step's `calls` and
    its first row, on every rank, and draws the masks a whole-batch
    `train_step` would. `seed`: an int in [0, 2**64), or None for fresh
    entropy (kept in `.seed`); the same seed and `calls` give the same masks.
    Set `calls` to replay or resume a stream (charrnn sets it to the step)."""

    def __init__(self, cell: RNNCell, input_keep_prob: float = 1.0, output_keep_prob: float = 1.0,
                 state_keep_prob: float = 1.0, variational_recurrent: bool = False,
                 seed: Optional[int] = None) -> None:
        super().__init__(cell)
        self.input_keep_prob = _keep_prob(input_keep_prob, "input_keep_prob")
        self.output_keep_prob = _keep_prob(output_keep_prob, "output_keep_prob")
        self.state_keep_prob = _keep_prob(state_keep_prob, "state_keep_prob")
        self.variational_recurrent = bool(variational_recurrent)
        self._set_stream_seed(seed, "seed")

    @property
    def seed(self) -> int:
        """The masks' seed (the dropout stream's)."""
        return self.stream_seed

    @seed.setter
    def seed(self, value: int) -> None:
        self.stream_seed = value

    def _mask(self, call: int, place: int, keep: float, batch: int, steps: int, width: int,
              time_major: bool) -> FloatArray:
        """0 or 1/keep, [B, W] when variational, else shaped like the sequence
        ([B, T, W], or [T, B, W] when time_major): one draw of B·T·W uniforms."""
        per_row = width if self.variational_recurrent else steps * width
        draws = random.uniforms(random.subseed(self.seed, call, place), batch * per_row, self.first_row * per_row)
        mask = np.where(draws < keep, self.dtype.type(1.0 / keep), self.dtype.type(0))
        if self.variational_recurrent:
            return mask.reshape(batch, width)
        mask = mask.reshape(batch, steps, width)
        return np.ascontiguousarray(mask.transpose(1, 0, 2)) if time_major else mask

    def _forward(self, x: NDArray[Any], lengths: Optional[IntArray], state: list[FloatArray], time_major: bool,
                 tape: Optional[dict[str, Any]], training: bool = False,
                 state_masks: Optional[list[Optional[FloatArray]]] = None) -> tuple[FloatArray, Any]:
        if not training:
            inner = None if tape is None else tape.setdefault("inner", {})
            if tape is not None:
                tape["masks"], tape["ids"] = (None, None), False
            return self.cell._forward(x, lengths, state, time_major, inner, training, state_masks)
        call = self._next_call()
        steps, batch = (x.shape[0], x.shape[1]) if time_major else (x.shape[1], x.shape[0])
        input_mask = output_mask = None
        ids = x.dtype.kind != "f"
        if self.input_keep_prob < 1.0:
            if ids:  # token ids: drop entries of their one-hot vectors
                from ..ops import one_hot
                depth = self.cell.input_depth
                assert depth is not None  # token ids reach a cell only once it is built (_prepare_inputs)
                x = one_hot(x, depth, dtype=self.dtype)
            input_mask = self._mask(call, 0, self.input_keep_prob, batch, steps, x.shape[2], time_major)
            x = _core.apply_mask(x, input_mask, time_major)
        if self.state_keep_prob < 1.0:
            ours = [self._mask(call, 2 + k, self.state_keep_prob, batch, steps, w, time_major) if drop else None
                    for k, (w, drop) in enumerate(zip(self._state_widths(), self._state_droppable()))]
            state_masks = ours if not state_masks else [
                a if b is None else b if a is None else a * b for a, b in zip(ours, state_masks)]
        inner = None if tape is None else tape.setdefault("inner", {})
        outputs, final = self.cell._forward(x, lengths, state, time_major, inner, training, state_masks)
        if self.output_keep_prob < 1.0:
            output_mask = self._mask(call, 1, self.output_keep_prob, batch, steps, outputs.shape[2], time_major)
            outputs = _core.apply_mask(outputs, output_mask, time_major)
        if tape is not None:
            tape["masks"] = (input_mask, output_mask)
            tape["time_major"], tape["ids"] = time_major, ids
        return outputs, final

    def _backward(self, tape: dict[str, Any], d_outputs: ArrayLike, d_final: Any, input_grad: bool = True
                  ) -> tuple[Optional[FloatArray], Any, dict[str, FloatArray]]:
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
