"""MultiRNNCell: layers stacked within each time step.

Over a whole sequence this is computed layer by layer (layer k runs over
all T steps, then layer k+1 over its outputs), which gives the same numbers
as TF's step-by-step stacking — padded steps carry every layer's state and
their outputs are discarded — with one input GEMM per layer instead of T."""

from __future__ import annotations

from typing import Iterable

from .._typing import StateSize
from ..variables import Variables
from .base import RNNCell


class MultiRNNCell(RNNCell):
    """TF1's MultiRNNCell(cells). State: a tuple with one entry per layer.
    Variables: `cell_<k>/<that cell's scope>/<name>`, the same live arrays as
    the layers' own."""

    scope_name = "multi_rnn_cell"

    def __init__(self, cells: Iterable[RNNCell], state_is_tuple: bool = True) -> None:
        cells = list(cells)
        if not cells:
            raise ValueError("cells must hold at least one cell, got an empty list")
        for i, c in enumerate(cells):
            if not isinstance(c, RNNCell):
                raise TypeError(f"cells[{i}] must be an rnnkit cell, got {type(c).__name__}")
            if c.dtype != cells[0].dtype:
                raise TypeError(f"cells[{i}] has dtype {c.dtype}, cells[0] has {cells[0].dtype}: all cells must share a dtype")
        if not state_is_tuple:
            raise ValueError("MultiRNNCell supports state_is_tuple=True only (TF deprecated the False form)")
        self.cells = cells
        self._kernel_steps = all(c._kernel_steps for c in cells)
        self.dtype = cells[0].dtype
        self.num_units = cells[-1].num_units
        self.grads = {}
        self.variables = Variables("MultiRNNCell")
        self.input_depth = None
        depth = cells[0].input_depth
        if depth is not None:  # cells[0] is built
            self.build(depth)

    def build(self, input_depth: int) -> None:
        if self.built:
            return super().build(input_depth)
        depth = input_depth
        for i, cell in enumerate(self.cells):
            if cell.built and cell.input_depth != depth:
                raise ValueError(
                    f"cells[{i}] has input_depth {cell.input_depth} but receives depth {depth} "
                    + ("from the inputs" if i == 0 else f"from cells[{i - 1}]")
                )
            cell.build(depth)
            depth = cell.output_size
        self.input_depth = int(input_depth)
        for prefix, cell in self._prefixed():
            for name, array in cell.variables.items():
                self.variables._create(f"{prefix}/{name}", array)

    def _prefixed(self):
        return [(f"cell_{i}/{cell.scope_name}", cell) for i, cell in enumerate(self.cells)]

    @property
    def output_size(self) -> int:
        return self.cells[-1].output_size

    @property
    def state_size(self) -> tuple[StateSize, ...]:
        return tuple(cell.state_size for cell in self.cells)

    def _splits(self):
        """Slices of the flat state belonging to each layer."""
        out, start = [], 0
        for cell in self.cells:
            n = len(cell._state_widths())
            out.append(slice(start, start + n))
            start += n
        return out

    def _state_widths(self):
        return [w for cell in self.cells for w in cell._state_widths()]

    def _pack_state(self, arrays):
        return tuple(cell._pack_state(arrays[s]) for cell, s in zip(self.cells, self._splits()))

    def _flatten_state(self, state, batch_size, name="initial_state"):
        if not isinstance(state, (tuple, list)) or len(state) != len(self.cells):
            raise TypeError(
                f"{name} must be a tuple with one state per layer ({len(self.cells)}), got "
                + (f"{type(state).__name__} of length {len(state)}" if isinstance(state, (tuple, list)) else type(state).__name__)
            )
        flat = []
        for i, (cell, s) in enumerate(zip(self.cells, state)):
            flat += cell._flatten_state(s, batch_size, name=f"{name}[{i}]")
        return flat

    def _kernel_state(self, state):
        if type(state) is not tuple or len(state) != len(self.cells):
            return None
        flat = []
        for cell, s in zip(self.cells, state):
            part = cell._kernel_state(s)
            if part is None:
                return None
            flat += part
        return flat

    def _state_droppable(self):
        return [d for cell in self.cells for d in cell._state_droppable()]

    def _forward(self, x, lengths, state, time_major, tape, training=False, state_masks=None):
        finals = []
        for i, (cell, s) in enumerate(zip(self.cells, self._splits())):
            sub = None if tape is None else tape.setdefault(f"cell_{i}", {})
            masks = state_masks[s] if state_masks else None
            x, final = cell._forward(x, lengths, state[s], time_major, sub, training, masks)
            finals += final
        return x, finals

    def _backward(self, tape, d_outputs, d_final, input_grad=True):
        d = d_outputs
        d_initial, grads = [None] * len(self.cells), {}
        for i in reversed(range(len(self.cells))):
            cell, s = self.cells[i], self._splits()[i]
            # layers above the first need their input gradient: it is the next one's d_outputs
            d, d_init, cell_grads = cell._backward(tape[f"cell_{i}"], d, d_final[s], input_grad or i > 0)
            cell.grads.clear()
            cell.grads.update((name, cell_grads[name]) for name in cell.variables)
            d_initial[i] = d_init
            prefix = f"cell_{i}/{cell.scope_name}"
            grads.update({f"{prefix}/{k}": g for k, g in cell_grads.items()})
        # gradients in variable order
        grads = {k: grads[k] for k in self.variables}
        return d, [a for layer in d_initial for a in layer], grads

    def __repr__(self) -> str:
        return f"MultiRNNCell([{', '.join(map(repr, self.cells))}])"
