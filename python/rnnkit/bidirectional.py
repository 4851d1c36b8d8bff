"""Bidirectional RNNs: bidirectional_dynamic_rnn, static_bidirectional_rnn
and the Bidirectional layer.

The backward direction runs over each row's first len_b steps reversed (TF's
reverse_sequence: padding stays in place) and its outputs are reversed back,
so both directions' outputs align in time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

import numpy as np

from . import _core
from ._checks import as_float, float_dtype, sequence_lengths, shape_str
from ._guard import InUse
from ._typing import ArrayLike, DTypeLike, FloatArray, NDArray, State

if TYPE_CHECKING:
    from .cells.base import RNNCell
from .rnn import RNN, _last_output, _last_output_backward, _stack_steps, _time_axes, dynamic_rnn, grads_and_vars
from .variables import Variables


def _reverse(x, lengths, time_major):
    return _core.reverse_sequence(x, lengths, time_major)


def _prepare(cell_fw: RNNCell, cell_bw: RNNCell, inputs: ArrayLike, sequence_length: Optional[ArrayLike],
             time_major: bool) -> tuple[NDArray[Any], Optional[NDArray[np.int32]]]:
    """Inputs prepared once for both cells (built alike), lengths as int32."""
    x = cell_fw._prepare_inputs(inputs, layout="[T, B, D]" if time_major else "[B, T, D]")
    if cell_bw.dtype != cell_fw.dtype:
        raise TypeError(f"cell_bw has dtype {cell_bw.dtype}, cell_fw has {cell_fw.dtype}: both must share a dtype")
    cell_bw._prepare_inputs(x) if x.dtype.kind == "f" else cell_bw._token_ids(x, "inputs")
    steps, batch = _time_axes(x, time_major)
    return x, sequence_lengths(sequence_length, batch, steps)


def bidirectional_dynamic_rnn(cell_fw: RNNCell, cell_bw: RNNCell, inputs: ArrayLike,
                              sequence_length: Optional[ArrayLike] = None, initial_state_fw: State = None,
                              initial_state_bw: State = None, dtype: Optional[DTypeLike] = None, time_major: bool = False
                              ) -> tuple[tuple[FloatArray, FloatArray], tuple[State, State]]:
    """TF1's tf.nn.bidirectional_dynamic_rnn.
    Returns ((out_fw, out_bw), (state_fw, state_bw)); outputs are not concatenated."""
    if dtype is not None and float_dtype(dtype) != cell_fw.dtype:
        raise TypeError(f"dtype must match the cells' dtype {cell_fw.dtype}, got {float_dtype(dtype)}")
    x, lengths = _prepare(cell_fw, cell_bw, inputs, sequence_length, time_major)
    out_fw, state_fw = dynamic_rnn(cell_fw, x, lengths, initial_state_fw, time_major=time_major)
    rev_out, state_bw = dynamic_rnn(cell_bw, _reverse(x, lengths, time_major), lengths, initial_state_bw,
                                    time_major=time_major)
    return (out_fw, _reverse(rev_out, lengths, time_major)), (state_fw, state_bw)


def static_bidirectional_rnn(cell_fw: RNNCell, cell_bw: RNNCell, inputs: Sequence[ArrayLike],
                             initial_state_fw: State = None, initial_state_bw: State = None, dtype: Optional[DTypeLike] = None,
                             sequence_length: Optional[ArrayLike] = None) -> tuple[list[FloatArray], State, State]:
    """TF1's tf.nn.static_bidirectional_rnn on a list of steps, one C++ call per direction.

    Args:
      cell_fw, cell_bw: rnnkit cells.
      inputs: a list of T arrays [B, D] (or integer token ids [B]).
      initial_state_fw, initial_state_bw, dtype, sequence_length: as for
        bidirectional_dynamic_rnn.
    Returns:
      (outputs, output_state_fw, output_state_bw): outputs a list of T arrays
      [B, out_fw + out_bw], concat(fw_t, bw_t) time-aligned (bw_t has seen
      steps t ... len-1), zero past each row's length.
    """
    (out_fw, out_bw), (state_fw, state_bw) = bidirectional_dynamic_rnn(
        cell_fw, cell_bw, _stack_steps(inputs), sequence_length, initial_state_fw, initial_state_bw, dtype,
        time_major=True)
    return list(np.concatenate([out_fw, out_bw], axis=2)), state_fw, state_bw


def _last_pair(out_fw, out_bw, lengths, time_major):
    """concat(fw, bw) at each row's last valid step: [B, out_fw + out_bw]."""
    return np.concatenate([_last_output(out_fw, lengths, time_major), _last_output(out_bw, lengths, time_major)],
                          axis=1)


class Bidirectional:
    """A trainable bidirectional layer (scope `bidirectional_rnn/fw`, `/bw`).

    forward(x) -> ((out_fw, out_bw), (state_fw, state_bw));
    backward((d_out_fw, d_out_bw), (d_state_fw, d_state_bw)) -> d_inputs.

    return_sequences=False: forward's outputs are, per row, the
    time-aligned concat(fw, bw) at its last valid step [B, out_fw + out_bw]
    (TF1's static_bidirectional_rnn(...)[0][-1] for full-length rows: fw
    after the whole row, bw after its last step only), and backward takes
    d_outputs [B, out_fw + out_bw]. One thread at a time may run forward or
    backward (see RNN)."""

    scope_name = "bidirectional_rnn"

    def __init__(self, cell_fw: RNNCell, cell_bw: RNNCell, return_sequences: bool = True) -> None:
        if not isinstance(return_sequences, (bool, np.bool_)):
            raise TypeError(f"return_sequences must be a bool, got {type(return_sequences).__name__}")
        self.fw, self.bw = RNN(cell_fw), RNN(cell_bw)
        self.return_sequences = bool(return_sequences)
        self._lengths: Any = None  # the int32 lengths of the last forward (or None)
        self._time_major = False
        self._in_use = InUse(type(self).__name__)

    @property
    def cells(self) -> tuple[RNNCell, RNNCell]:
        return self.fw.cell, self.bw.cell

    @property
    def variables(self) -> Variables:
        v = Variables("Bidirectional")
        for tag, cell in (("fw", self.fw.cell), ("bw", self.bw.cell)):
            for name, array in cell.variables.items():
                v._create(f"{tag}/{cell.scope_name}/{name}", array)
        return v

    @property
    def grads(self) -> dict[str, FloatArray]:
        g: dict[str, FloatArray] = {}
        for tag, cell in (("fw", self.fw.cell), ("bw", self.bw.cell)):
            g.update({f"{tag}/{cell.scope_name}/{k}": a for k, a in cell.grads.items()})
        return g

    def forward(self, x: ArrayLike, sequence_length: Optional[ArrayLike] = None, time_major: bool = False,
                initial_state_fw: State = None, initial_state_bw: State = None, training: bool = False
                ) -> tuple[Union[FloatArray, tuple[FloatArray, FloatArray]], tuple[State, State]]:
        """x: [B, T, D] ([T, B, D] when time_major), or token ids [B, T].
        `training=True` turns on the dropout of DropoutWrapper cells.
        Returns ((out_fw, out_bw), (state_fw, state_bw)), or without
        return_sequences (last [B, out_fw + out_bw], (state_fw, state_bw))."""
        with self._in_use:
            x, lengths = _prepare(self.fw.cell, self.bw.cell, x, sequence_length, time_major)
            if lengths is sequence_length and lengths is not None:
                lengths = lengths.copy()  # kept for backward: not the caller's array
            out_fw, state_fw = self.fw.forward(x, lengths, initial_state_fw, time_major, training=training)
            rev_out, state_bw = self.bw.forward(_reverse(x, lengths, time_major), lengths, initial_state_bw,
                                                time_major, training=training)
            self._lengths, self._time_major = lengths, time_major
            out_bw = _reverse(rev_out, lengths, time_major)
            if not self.return_sequences:
                return _last_pair(out_fw, out_bw, lengths, time_major), (state_fw, state_bw)
            return (out_fw, out_bw), (state_fw, state_bw)

    def __call__(self, x: ArrayLike, sequence_length: Optional[ArrayLike] = None, time_major: bool = False
                 ) -> tuple[Union[FloatArray, tuple[FloatArray, FloatArray]], tuple[State, State]]:
        """Inference only: bidirectional_dynamic_rnn (then the last outputs
        without return_sequences)."""
        (out_fw, out_bw), states = bidirectional_dynamic_rnn(self.fw.cell, self.bw.cell, x, sequence_length,
                                                             time_major=time_major)
        if not self.return_sequences:
            steps, batch = _time_axes(out_fw, time_major)
            return _last_pair(out_fw, out_bw, sequence_lengths(sequence_length, batch, steps), time_major), states
        return (out_fw, out_bw), states

    def _split_last(self, d_outputs):
        """d_outputs [B, out_fw + out_bw] of the last outputs -> (d_out_fw, d_out_bw) over whole sequences."""
        if self.fw._recorded is None:
            raise RuntimeError("Bidirectional.backward called before forward: call forward(x) first")
        out_shape, state_shapes = self.fw._recorded
        width_fw, width_bw = self.fw.cell.output_size, self.bw.cell.output_size
        expected = (state_shapes[0][0], width_fw + width_bw)
        if isinstance(d_outputs, (tuple, list)):
            raise TypeError(f"d_outputs must be one array {shape_str(expected)} (the last outputs, "
                            f"return_sequences=False), got a {type(d_outputs).__name__}")
        d = as_float(d_outputs, "d_outputs", self.fw.cell.dtype)
        if d.shape != expected:
            raise ValueError(f"d_outputs must have shape {shape_str(expected)} (the last outputs' shape), "
                             f"got {shape_str(d.shape)}")
        steps = out_shape[0] if self._time_major else out_shape[1]
        return tuple(_last_output_backward(np.ascontiguousarray(part), self._lengths, steps, self._time_major)
                     for part in (d[:, :width_fw], d[:, width_fw:]))

    def backward(self, d_outputs: Union[ArrayLike, tuple[ArrayLike, ArrayLike]],
                 d_final_states: Optional[tuple[State, State]] = None, input_grad: bool = True) -> Optional[FloatArray]:
        """d_outputs: (d_out_fw, d_out_bw), or [B, out_fw + out_bw] without
        return_sequences; d_final_states: (d_state_fw, d_state_bw) or None.
        Returns d_inputs (None for token ids or with `input_grad=False`)."""
        with self._in_use:
            if not self.return_sequences:
                d_outputs = self._split_last(d_outputs)
            if not (isinstance(d_outputs, (tuple, list)) and len(d_outputs) == 2):
                raise TypeError("d_outputs must be a pair (d_out_fw, d_out_bw)")
            return self._backward(d_outputs, d_final_states, input_grad)

    def _backward(self, d_outputs, d_final_states, input_grad):
        d_fw_state, d_bw_state = (None, None) if d_final_states is None else d_final_states
        dx_fw, _ = self.fw.backward(d_outputs[0], d_fw_state, input_grad)
        d_rev = _reverse(np.ascontiguousarray(d_outputs[1], dtype=self.bw.cell.dtype), self._lengths, self._time_major) \
            if np.ndim(d_outputs[1]) == 3 else d_outputs[1]
        dx_rev, _ = self.bw.backward(d_rev, d_bw_state, input_grad)
        if dx_fw is None:  # token ids, or not wanted
            return None
        return dx_fw + _reverse(dx_rev, self._lengths, self._time_major)

    def grads_and_vars(self) -> list[tuple[FloatArray, FloatArray]]:
        """[(gradient, variable)]: the forward cell's, then the backward cell's."""
        return grads_and_vars(self.fw.cell) + grads_and_vars(self.bw.cell)
