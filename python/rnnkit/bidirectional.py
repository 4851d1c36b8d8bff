"""Bidirectional RNNs: bidirectional_dynamic_rnn and the Bidirectional layer.

The backward direction runs over each row's first len_b steps reversed (TF's
reverse_sequence: padding stays in place) and its outputs are reversed back,
so both directions' outputs align in time."""

import numpy as np

from . import _core
from ._checks import float_dtype, sequence_lengths
from ._guard import InUse
from .rnn import RNN, _time_axes, dynamic_rnn, grads_and_vars
from .variables import Variables


def _reverse(x, lengths, time_major):
    return _core.reverse_sequence(x, lengths, time_major)


def _prepare(cell_fw, cell_bw, inputs, sequence_length, time_major):
    """Inputs prepared once for both cells (built alike), lengths as int32."""
    x = cell_fw._prepare_inputs(inputs, layout="[T, B, D]" if time_major else "[B, T, D]")
    if cell_bw.dtype != cell_fw.dtype:
        raise TypeError(f"cell_bw has dtype {cell_bw.dtype}, cell_fw has {cell_fw.dtype}: both must share a dtype")
    cell_bw._prepare_inputs(x) if x.dtype.kind == "f" else cell_bw._token_ids(x, "inputs")
    steps, batch = _time_axes(x, time_major)
    return x, sequence_lengths(sequence_length, batch, steps)


def bidirectional_dynamic_rnn(cell_fw, cell_bw, inputs, sequence_length=None, initial_state_fw=None,
                              initial_state_bw=None, dtype=None, time_major=False):
    """TF1's tf.nn.bidirectional_dynamic_rnn.
    Returns ((out_fw, out_bw), (state_fw, state_bw)); outputs are not concatenated."""
    if dtype is not None and float_dtype(dtype) != cell_fw.dtype:
        raise TypeError(f"dtype must match the cells' dtype {cell_fw.dtype}, got {float_dtype(dtype)}")
    x, lengths = _prepare(cell_fw, cell_bw, inputs, sequence_length, time_major)
    out_fw, state_fw = dynamic_rnn(cell_fw, x, lengths, initial_state_fw, time_major=time_major)
    rev_out, state_bw = dynamic_rnn(cell_bw, _reverse(x, lengths, time_major), lengths, initial_state_bw,
                                    time_major=time_major)
    return (out_fw, _reverse(rev_out, lengths, time_major)), (state_fw, state_bw)


class Bidirectional:
    """A trainable bidirectional layer (scope `bidirectional_rnn/fw`, `/bw`).

    forward(x) -> ((out_fw, out_bw), (state_fw, state_bw));
    backward((d_out_fw, d_out_bw), (d_state_fw, d_state_bw)) -> d_inputs.
    One thread at a time may run forward or backward (see RNN)."""

    scope_name = "bidirectional_rnn"

    def __init__(self, cell_fw, cell_bw):
        self.fw, self.bw = RNN(cell_fw), RNN(cell_bw)
        self._lengths = None
        self._in_use = InUse(type(self).__name__)

    @property
    def cells(self):
        return self.fw.cell, self.bw.cell

    @property
    def variables(self):
        v = Variables("Bidirectional")
        for tag, cell in (("fw", self.fw.cell), ("bw", self.bw.cell)):
            for name, array in cell.variables.items():
                v._create(f"{tag}/{cell.scope_name}/{name}", array)
        return v

    @property
    def grads(self):
        g = {}
        for tag, cell in (("fw", self.fw.cell), ("bw", self.bw.cell)):
            g.update({f"{tag}/{cell.scope_name}/{k}": a for k, a in cell.grads.items()})
        return g

    def forward(self, x, sequence_length=None, time_major=False, initial_state_fw=None, initial_state_bw=None,
                training=True):
        with self._in_use:
            x, lengths = _prepare(self.fw.cell, self.bw.cell, x, sequence_length, time_major)
            if lengths is not None and lengths is sequence_length:
                lengths = lengths.copy()  # kept for backward: not the caller's array
            out_fw, state_fw = self.fw.forward(x, lengths, initial_state_fw, time_major, training=training)
            rev_out, state_bw = self.bw.forward(_reverse(x, lengths, time_major), lengths, initial_state_bw,
                                                time_major, training=training)
            self._lengths, self._time_major = lengths, time_major
            return (out_fw, _reverse(rev_out, lengths, time_major)), (state_fw, state_bw)

    def __call__(self, x, sequence_length=None, time_major=False):
        return bidirectional_dynamic_rnn(self.fw.cell, self.bw.cell, x, sequence_length, time_major=time_major)

    def backward(self, d_outputs, d_final_states=None, input_grad=True):
        """d_outputs: (d_out_fw, d_out_bw); d_final_states: (d_state_fw, d_state_bw) or None.
        Returns d_inputs (None for token ids or with `input_grad=False`)."""
        if not (isinstance(d_outputs, (tuple, list)) and len(d_outputs) == 2):
            raise TypeError("d_outputs must be a pair (d_out_fw, d_out_bw)")
        with self._in_use:
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

    def grads_and_vars(self):
        return grads_and_vars(self.fw.cell) + grads_and_vars(self.bw.cell)
