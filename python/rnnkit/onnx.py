"""ONNX export: rnnkit models as ONNX graphs for ONNX Runtime and other engines.

    export(model, path)  # Sequential, RNN, Bidirectional, Dense, or a cell

Inside the graph every sequence is time-major [T, B, ...] (what ONNX's
recurrent operators take); a batch-major model transposes once on the way
in and once on the way out.

Cells. Where ONNX's own operator computes the cell's formula exactly, the
cell becomes that operator:
  BasicRNNCell -> RNN: H' = act(X W^T + H R^T + Wb + Rb), W = kernel[:D]^T,
    R = kernel[D:]^T, Wb = bias, Rb = 0.
  BasicLSTMCell, LSTMCell (peepholes allowed) -> LSTM: ONNX's gate blocks
    are i, o, f, c where TF's are i, j, f, o (c is j); forget_bias is added
    to f's bias; ONNX's peepholes P are (i, o, f) and, as in TF, i and f
    look at the previous c, o at the new one; activations (sigmoid, act, act).
  GRUCell -> GRU: ONNX's blocks are z, r, h (z is TF's u, h the candidate);
    H' = (1 - z) h~ + z H is TF's u H + (1 - u) c; TF1's reset applied
    before the candidate's product is linear_before_reset=0, rnnkit's
    reset_after=True is linear_before_reset=1 (Rb_h = candidate/hidden/bias).
What the operators cannot express (LSTMCell's num_proj, cell_clip and
proj_clip: ONNX's `clip` clips gate inputs, not c; the linear activation;
float64, which ONNX Runtime's recurrent kernels lack) becomes a `Scan` whose
body computes TF1's formulas (the cells' docstrings; TF 1.15's rnn_cell_impl.py).

Lengths. TF1 zeroes outputs past each row's length and carries the state.
ONNX Runtime's operators zero those outputs too, but give a zero final state
for a row of length 0, where TF1 keeps the initial state: a Where puts it
back. Scan bodies select with the step's mask (Where, so that a carried
state keeps its bits).

Token ids [B, T] (int64) enter as the rows of the input kernel they select
(Gather; the operator then sees an identity input weight), Embedding as a
Gather of its table, Dense as MatMul + Add, a ResidualWrapper as an Add on
the live steps, a DropoutWrapper as itself (inference), a MultiRNNCell as
one operator per layer, the backward direction of Bidirectional as the
forward computation between two ReverseSequence nodes (TF's
reverse_sequence).

Graph inputs: `inputs`, then `sequence_length` [B] (int64; every row full
when not fed), then the initial states (zeros when not fed), named as
rnnkit names them (`initial_state.c`, `initial_state[1].h`,
`initial_state_fw`, ...; in a Sequential `layers[0].initial_state...`).
Graph outputs: `outputs` (`outputs_fw`, `outputs_bw` for Bidirectional),
then the final states named like the initial ones. Batch and time axes are
symbolic (`batch`, `time`).

onnx is imported only inside `export`, so rnnkit works without it.
"""

from __future__ import annotations

import os
from typing import Any, Optional, Union

import numpy as np

from ._checks import float_dtype
from .bidirectional import Bidirectional
from .cells.base import RNNCell
from .cells.basic_rnn import BasicRNNCell
from .cells.gru import GRUCell
from .cells.lstm import LSTMCell
from .cells.multi import MultiRNNCell
from .cells.wrappers import DropoutWrapper, ResidualWrapper
from .layers import Dense, Embedding
from .rnn import RNN
from .sequential import Sequential

__all__ = ["export"]

DEFAULT_OPSET = 17
MIN_OPSET = 14  # LSTM/GRU/RNN-14, Split/Squeeze/Unsqueeze with their sizes and axes as inputs (13)

# "every row runs to the end": the default value of the `sequence_length` input
_FULL_LENGTH = np.iinfo(np.int64).max

# rnnkit activation -> (ONNX recurrent-operator activation name, ONNX op for the Scan body)
_ACTIVATIONS = {"tanh": ("Tanh", "Tanh"), "relu": ("Relu", "Relu"), "sigmoid": ("Sigmoid", "Sigmoid"),
                "linear": (None, "Identity")}


def _onnx():
    try:
        import onnx
    except ImportError as e:
        raise ImportError("rnnkit.onnx needs the onnx package (pip install rnnkit[onnx]); "
                          "the rest of rnnkit works without it") from e
    return onnx


def export(model: Any, path: Union[str, bytes, os.PathLike[str]], *, batch_major: bool = True,
           opset: Optional[int] = None, token_ids: Optional[bool] = None) -> Any:
    """Writes `model` as an ONNX file at `path` and returns the ModelProto.

    Args:
      model: a Sequential, an RNN, a Bidirectional or a Dense layer, or a cell
        (exported as RNN(cell)); built (run once, or made with input_depth).
      path: the file to write (str or os.PathLike).
      batch_major: inputs and outputs [B, T, ...] (rnnkit's default); False
        for time-major [T, B, ...].
      opset: the ONNX opset to declare (default 17; 14 or later).
      token_ids: the input is int64 token ids [B, T] (one_hot(ids,
        input_depth) for the first recurrent layer). Default: True when the
        first layer is an Embedding, else False (float inputs [B, T, D]).
    Returns:
      the onnx.ModelProto that was written (already checked by onnx.checker).
    """
    onnx = _onnx()
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    if not isinstance(batch_major, (bool, np.bool_)):
        raise TypeError(f"batch_major must be a bool, got {type(batch_major).__name__}")
    newest = onnx.defs.onnx_opset_version()
    if opset is None:
        opset = min(DEFAULT_OPSET, newest)
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or not MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset must be an int in [{MIN_OPSET}, {newest}], got {opset!r}")
    layers, kind = _as_layers(model)
    for i, layer in enumerate(layers):
        _check_layer(layer, i)
    ids = _uses_token_ids(layers, token_ids)

    g = _Graph(onnx, _layer_dtype(layers[0]))
    g.build(layers, kind, ids, bool(batch_major))
    proto = g.model(int(opset))
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, os.fspath(path))
    return proto


# ---- what a model is made of ------------------------------------------------------

_LAYER_TYPES = (RNN, Bidirectional, Dense, Embedding)


def _as_layers(model):
    """(layers, kind): kind is 'sequential' or 'layer'."""
    if isinstance(model, Sequential):
        for i, layer in enumerate(model.layers):
            if not isinstance(layer, _LAYER_TYPES):
                raise TypeError(f"model.layers[{i}] is a {type(layer).__name__}, which rnnkit.onnx.export "
                                "cannot export (it exports RNN, Bidirectional, Dense and Embedding layers)")
        return list(model.layers), "sequential"
    if isinstance(model, RNNCell):
        return [RNN(model)], "layer"
    if isinstance(model, _LAYER_TYPES):
        return [model], "layer"
    raise TypeError("model must be a Sequential, RNN, Bidirectional or Dense layer (or a cell), "
                    f"got {type(model).__name__}")


def _layer_dtype(layer):
    if isinstance(layer, RNN):
        return layer.cell.dtype
    if isinstance(layer, Bidirectional):
        return layer.fw.cell.dtype
    return float_dtype(layer.dtype)


def _check_layer(layer, index):
    """Built, and made of cells that export."""
    cells = layer.cells if isinstance(layer, Bidirectional) else (layer.cell,) if isinstance(layer, RNN) else ()
    built = all(c.built for c in cells) if cells else layer.built
    if not built:
        raise ValueError(f"model layer {index} ({type(layer).__name__}) is not built: run it once, "
                         "or construct it with input_depth, before exporting")
    for cell in cells:
        _check_cell(cell)


def _check_cell(cell):
    if isinstance(cell, MultiRNNCell):
        for c in cell.cells:
            _check_cell(c)
    elif isinstance(cell, (ResidualWrapper, DropoutWrapper)):
        _check_cell(cell.cell)
    elif not isinstance(cell, (BasicRNNCell, GRUCell, LSTMCell)):
        raise TypeError(f"rnnkit.onnx.export cannot export a {type(cell).__name__} cell")


def _uses_token_ids(layers, token_ids):
    first = layers[0]
    is_embedding = isinstance(first, Embedding)
    if token_ids is None:
        return is_embedding
    if not isinstance(token_ids, (bool, np.bool_)):
        raise TypeError(f"token_ids must be a bool or None, got {type(token_ids).__name__}")
    if is_embedding and not token_ids:
        raise ValueError("token_ids=False, but the first layer is an Embedding, which takes token ids")
    if token_ids and not isinstance(first, (RNN, Bidirectional)) and not is_embedding:
        raise ValueError(f"token_ids=True needs a recurrent or Embedding first layer, got {type(first).__name__}")
    if token_ids and isinstance(first, (RNN, Bidirectional)):
        for cell in (first.cells if isinstance(first, Bidirectional) else (first.cell,)):
            if _has_residual_first(cell):
                raise ValueError("token_ids=True: a ResidualWrapper needs float inputs (it adds them to its outputs)")
    return bool(token_ids)


def _has_residual_first(cell):
    if isinstance(cell, ResidualWrapper):
        return True
    if isinstance(cell, DropoutWrapper):
        return _has_residual_first(cell.cell)
    if isinstance(cell, MultiRNNCell):
        return _has_residual_first(cell.cells[0])
    return False


def _state_slots(cell, prefix):
    """The cell's state as graph tensors: [(name, [widths of the flat arrays it holds])]."""
    if isinstance(cell, (ResidualWrapper, DropoutWrapper)):
        return _state_slots(cell.cell, prefix)
    if isinstance(cell, MultiRNNCell):
        return [s for i, c in enumerate(cell.cells) for s in _state_slots(c, f"{prefix}[{i}]")]
    if isinstance(cell, LSTMCell):
        widths = cell._state_widths()
        if cell.state_is_tuple:
            return [(f"{prefix}.c", widths[:1]), (f"{prefix}.h", widths[1:])]
        return [(prefix, widths)]
    return [(prefix, cell._state_widths())]


# ---- the graph --------------------------------------------------------------------

class _Graph:
    """Nodes, initializers, inputs and outputs of one ONNX graph (or of a
    Scan body, which shares its parent's names)."""

    def __init__(self, onnx, dtype, parent=None):
        self.onnx = onnx
        self.dtype = dtype
        self.elem = onnx.helper.np_dtype_to_tensor_dtype(dtype)
        self.nodes, self.initializers, self.inputs, self.outputs = [], [], [], []
        self._names = parent._names if parent is not None else {}
        self._cache = {}

    # -- building blocks
    def name(self, hint):
        """`hint`, or `hint_<n>` once it is taken."""
        n = self._names.get(hint, 0)
        self._names[hint] = n + 1
        return hint if n == 0 else f"{hint}_{n}"

    def claim(self, name):
        """`name` exactly (a graph input or output)."""
        if self.name(name) != name:
            raise AssertionError(f"graph name {name!r} is taken")
        return name

    def const(self, array, hint="const"):
        name = self.name(hint)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(array), name))
        return name

    def weight(self, array, hint):
        """A float constant of the model's dtype."""
        return self.const(np.asarray(array, self.dtype), hint)

    def scalar(self, value):
        key = ("scalar", self.dtype.str, float(value))
        if key not in self._cache:
            self._cache[key] = self.const(np.array(value, self.dtype), "scalar")
        return self._cache[key]

    def int_scalar(self, value):
        key = ("int", int(value))
        if key not in self._cache:
            self._cache[key] = self.const(np.array(value, np.int64), "int")
        return self._cache[key]

    def ints(self, values):
        key = ("ints", tuple(values))
        if key not in self._cache:
            self._cache[key] = self.const(np.array(values, np.int64), "ints")
        return self._cache[key]

    def op(self, op_type, inputs, hint=None, outputs=1, node_name=None, **attrs):
        outs = [self.name(hint or op_type.lower()) for _ in range(outputs)]
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), outs, name=node_name, **attrs))
        return outs[0] if outputs == 1 else outs

    def in_range(self, values, upper, rule):
        """`values` (int64) unchanged, through two Gathers from [0, 1, ...,
        upper] (`upper` an int64 scalar) that fail unless 0 <= values <= upper:
        a larger value is out of the first's bounds, a negative one makes
        upper - value out of the second's. The nodes are named after `rule`,
        which ONNX Runtime's error shows."""
        table = self.op("Range", [self.int_scalar(0),
                                  self.op("Add", [upper, self.int_scalar(1)]),
                                  self.int_scalar(1)], "valid_values")
        low = self.op("Gather", [table, values], "checked", node_name=rule)
        high = self.op("Gather", [table, self.op("Sub", [upper, values])], "checked", node_name=rule + " (>= 0)")
        # (low + high) - (upper - low) = low, computed from both so that neither is pruned
        return self.op("Sub", [self.op("Add", [low, high]), self.op("Sub", [upper, low])], "checked_values")

    def value_info(self, name, elem, shape):
        return self.onnx.helper.make_tensor_value_info(name, elem, shape)

    def graph(self, name):
        return self.onnx.helper.make_graph(self.nodes, name, self.inputs, self.outputs, self.initializers)

    def model(self, opset):
        helper = self.onnx.helper
        opsets = [helper.make_opsetid("", opset)]
        return helper.make_model(self.graph("rnnkit"), opset_imports=opsets, producer_name="rnnkit",
                                 ir_version=helper.find_min_ir_version_for(opsets))

    # -- the whole model
    def build(self, layers, kind, ids, batch_major):
        first = layers[0]
        if isinstance(first, Dense) and kind == "layer":  # a head for [B, T, D] sequences (either major order)
            self.inputs.append(self.value_info("inputs", self.elem, ["batch", "time", first.input_depth]))
            self.output(self.dense(first, "inputs"), "outputs", ["batch", "time", first.units])
            return
        if ids:
            self.inputs.append(self.value_info("inputs", self.onnx.TensorProto.INT64,
                                               ["batch", "time"] if batch_major else ["time", "batch"]))
        else:
            depth = _input_depth(first)
            self.inputs.append(self.value_info("inputs", self.elem,
                                               ["batch", "time", depth] if batch_major else ["time", "batch", depth]))
        x = "inputs"
        if ids:
            depth = first.vocab_size if isinstance(first, Embedding) else _input_depth(first)
            x = self.in_range(x, self.const(np.array(depth - 1, np.int64), "last_id"),
                              f"token ids must lie in [0, {depth})")
        if batch_major:
            x = self.op("Transpose", [x], "inputs_time_major", perm=[1, 0] if ids else [1, 0, 2])
        self._time_major_input = x
        self.optional_input("sequence_length", np.array([_FULL_LENGTH], np.int64), ["batch"])
        state_outputs = []  # the final states go after the model's outputs
        self.outputs, outputs = state_outputs, self.outputs

        sequence = True  # is x still [T, B, ...]?
        recurrent = 0  # recurrent layers so far: a Sequential's states are a list with one entry per such layer
        for i, layer in enumerate(layers):
            dtype = _layer_dtype(layer)
            if dtype != self.dtype:  # a layer of another precision: rnnkit converts its input
                self.dtype, self.elem = dtype, self.onnx.helper.np_dtype_to_tensor_dtype(dtype)
                if not (ids and i == 0):
                    x = self.op("Cast", [x], "cast", to=self.elem)
            if isinstance(layer, Dense):
                x = self.dense(layer, x)
            elif isinstance(layer, RNN):
                index = f"[{recurrent}]" if kind == "sequential" else ""
                x, sequence = self.rnn_layer(layer, x, ids and i == 0, index)
                recurrent += 1
            elif isinstance(layer, Bidirectional):
                # names: initial_state_fw alone; initial_state[k][0] (fw) and [k][1] (bw) in a Sequential
                tags = (f"[{recurrent}][0]", f"[{recurrent}][1]") if kind == "sequential" else ("_fw", "_bw")
                x, sequence = self.bidirectional_layer(layer, x, ids and i == 0, tags, kind == "sequential")
                recurrent += 1
            else:  # Embedding
                x = self.op("Gather", [self.weight(layer.variables["embedding"], "embedding"), x], "embedded")

        self.outputs = outputs
        if not sequence:
            shape = ["batch", None]
        else:
            shape = ["batch", "time", None] if batch_major else ["time", "batch", None]
        named = zip(x, ("outputs_fw", "outputs_bw")) if isinstance(x, tuple) else [(x, "outputs")]
        for y, name in named:
            if sequence and batch_major:
                y = self.op("Transpose", [y], "batch_major", perm=[1, 0, 2])
            self.output(y, name, shape)
        self.outputs += state_outputs

    def optional_input(self, name, default, shape):
        """A graph input with a default value (an initializer of the same name)."""
        self.claim(name)
        self.inputs.append(self.value_info(name, self.onnx.helper.np_dtype_to_tensor_dtype(default.dtype), shape))
        self.initializers.append(self.onnx.numpy_helper.from_array(default, name))
        return name

    def output(self, value, name, shape):
        """A graph output called `name` holding `value`."""
        self.claim(name)
        self.nodes.append(self.onnx.helper.make_node("Identity", [value], [name]))
        self.outputs.append(self.value_info(name, self.elem, shape))

    # -- lengths, masks and shapes (made once, on first use)
    def batch_size(self):
        """[B] (int64, shape [1])."""
        if "batch" not in self._cache:
            shape = self.op("Shape", [self._time_major_input], "input_shape")
            self._cache["batch"] = self.op("Slice", [shape, self.ints([1]), self.ints([2])], "batch_size")
            self._cache["steps"] = self.op("Slice", [shape, self.ints([0]), self.ints([1])], "time_steps")
        return self._cache["batch"]

    def steps(self):
        self.batch_size()
        return self._cache["steps"]

    def steps_scalar(self):
        if "steps_scalar" not in self._cache:
            self._cache["steps_scalar"] = self.op("Squeeze", [self.steps(), self.ints([0])], "steps_scalar")
        return self._cache["steps_scalar"]

    def lengths(self):
        """The sequence lengths [B] (int64); the `sequence_length` input, or T for every row."""
        if "lengths" not in self._cache:
            raw = "sequence_length"
            full = self.op("Equal", [raw, self.ints([_FULL_LENGTH])], "full_length")
            chosen = self.op("Where", [full, self.steps(), raw], "lengths_or_steps")
            chosen = self.in_range(chosen, self.steps_scalar(), "sequence_length must lie in [0, T]")
            self._cache["lengths"] = self.op("Expand", [chosen, self.batch_size()], "lengths")
        return self._cache["lengths"]

    def lengths_int32(self):
        if "lengths32" not in self._cache:
            self._cache["lengths32"] = self.op("Cast", [self.lengths()], "lengths_int32",
                                               to=self.onnx.TensorProto.INT32)
        return self._cache["lengths32"]

    def step_mask(self):
        """[T, B, 1] bool: is step t within row b's length?"""
        if "mask" not in self._cache:
            t = self.steps_scalar()
            zero = self.int_scalar(0)
            one = self.int_scalar(1)
            steps = self.op("Range", [zero, t, one], "step_index")
            steps = self.op("Unsqueeze", [steps, self.ints([1])], "step_column")  # [T, 1]
            lengths = self.op("Unsqueeze", [self.lengths(), self.ints([0])], "lengths_row")  # [1, B]
            mask = self.op("Less", [steps, lengths], "live")  # [T, B]
            self._cache["mask"] = self.op("Unsqueeze", [mask, self.ints([2])], "step_mask")
        return self._cache["mask"]

    def empty_rows(self):
        """[B, 1] bool: rows of length 0."""
        if "empty" not in self._cache:
            empty = self.op("Equal", [self.lengths(), self.int_scalar(0)], "empty")
            self._cache["empty"] = self.op("Unsqueeze", [empty, self.ints([1])], "empty_rows")
        return self._cache["empty"]

    # -- layers
    def dense(self, layer, x):
        y = self.op("MatMul", [x, self.weight(layer.variables["kernel"], "dense_kernel")], "dense_product")
        return self.op("Add", [y, self.weight(layer.variables["bias"], "dense_bias")], "dense")

    def initial_states(self, cell, name):
        """Optional graph inputs `name...` (zeros by default) -> the flat states [B, w]."""
        flat = []
        for slot, widths in _state_slots(cell, name):
            total = int(sum(widths))
            self.optional_input(slot, np.zeros((1, total), self.dtype), ["batch", total])
            shape = self.op("Concat", [self.batch_size(), self.ints([total])], "state_shape", axis=0)
            full = self.op("Expand", [slot, shape], "state")  # a fed [B, w] stays as it is
            if len(widths) == 1:
                flat.append(full)
            else:
                flat += self.op("Split", [full, self.ints(widths)], "state_part", outputs=len(widths), axis=1)
        return flat

    def final_states(self, cell, name, flat):
        """Graph outputs `name...` from the flat final states."""
        at = 0
        for slot, widths in _state_slots(cell, name):
            parts = flat[at:at + len(widths)]
            at += len(widths)
            value = self.op("Concat", parts, "state_concat", axis=1) if len(parts) > 1 else parts[0]
            self.output(value, slot, ["batch", int(sum(widths))])

    def rnn_layer(self, layer, x, ids, tag):
        cell = layer.cell
        y, final = self.cell(cell, x, ids, self.initial_states(cell, "initial_state" + tag))
        self.final_states(cell, "final_state" + tag, final)
        return self.last_output(layer, y)

    def bidirectional_layer(self, layer, x, ids, tags, concatenate):
        """Forward cell over x; backward cell over each row's live steps
        reversed (TF's reverse_sequence), its outputs reversed back."""
        cell_fw, cell_bw = layer.cells
        tag_fw, tag_bw = tags
        y_fw, final_fw = self.cell(cell_fw, x, ids, self.initial_states(cell_fw, "initial_state" + tag_fw))
        lengths = self.lengths()
        x_rev = self.op("ReverseSequence", [x, lengths], "reversed_inputs", batch_axis=1, time_axis=0)
        y_rev, final_bw = self.cell(cell_bw, x_rev, ids, self.initial_states(cell_bw, "initial_state" + tag_bw))
        y_bw = self.op("ReverseSequence", [y_rev, lengths], "backward_outputs", batch_axis=1, time_axis=0)
        self.final_states(cell_fw, "final_state" + tag_fw, final_fw)
        self.final_states(cell_bw, "final_state" + tag_bw, final_bw)
        if concatenate or not getattr(layer, "return_sequences", True):
            # inside a Sequential the two directions go on concatenated, and
            # without return_sequences the layer gives concat(fw, bw) at the last step
            return self.last_output(layer, self.op("Concat", [y_fw, y_bw], "bidirectional", axis=2))
        return (y_fw, y_bw), True

    def last_output(self, layer, y):
        """(y, still a sequence?): y [T, B, out], or with return_sequences=False
        each row's output at its last step within its length, [B, out]."""
        if getattr(layer, "return_sequences", True):
            return y, True
        last = self.op("Sub", [self.lengths(), self.int_scalar(1)], "last_step")
        last = self.op("Max", [last, self.int_scalar(0)], "last_step_clamped")
        index = self.op("Unsqueeze", [last, self.ints([0, 2])], "last_index")  # [1, B, 1]
        shape = self.op("Shape", [y], "outputs_shape")
        width = self.op("Slice", [shape, self.ints([2]), self.ints([3])], "outputs_width")
        index = self.op("Expand", [index, self.op("Concat", [self.ints([1]), self.batch_size(), width],
                                                  "last_index_shape", axis=0)], "last_index_full")
        # a row of length 0 picks its step 0, whose output is zero: last_output's zeros
        picked = self.op("GatherElements", [y, index], "last_output", axis=0)  # [1, B, out]
        return self.op("Squeeze", [picked, self.ints([0])], "last_outputs"), False

    # -- cells: (x [T, B, D] or ids [T, B], flat states) -> (y [T, B, out], final flat states)
    def cell(self, cell, x, ids, states):
        if isinstance(cell, DropoutWrapper):  # inference: no dropout
            return self.cell(cell.cell, x, ids, states)
        if isinstance(cell, ResidualWrapper):
            y, final = self.cell(cell.cell, x, ids, states)
            summed = self.op("Add", [y, x], "residual_sum")
            return self.op("Where", [self.step_mask(), summed, y], "residual"), final
        if isinstance(cell, MultiRNNCell):
            final, at = [], 0
            for k, c in enumerate(cell.cells):
                n = len(c._state_widths())
                x, f = self.cell(c, x, ids and k == 0, states[at:at + n])
                final += f
                at += n
            return x, final
        if _operator_expresses(cell):
            return self.operator(cell, x, ids, states)
        return self.scan(cell, x, ids, states)

    def input_rows(self, kernel_x, ids, x, hint):
        """x · kernel_x over all steps: [T, B, k]; for ids the kernel's rows."""
        w = self.weight(kernel_x, hint)
        return self.op("Gather", [w, x], hint + "_rows") if ids else self.op("MatMul", [x, w], hint + "_product")

    def operator(self, cell, x, ids, states):
        """The cell as ONNX's LSTM, GRU or RNN operator."""
        H, D = cell.num_units, cell.input_depth
        v = cell.variables
        act = _ACTIVATIONS[cell.activation][0]
        if isinstance(cell, LSTMCell):
            op_type, blocks = "LSTM", 4
            kernel, bias = v["kernel"], np.array(v["bias"], dtype=np.float64)
            bias[2 * H:3 * H] += cell.forget_bias  # TF adds forget_bias to f at call time
            order = (0, 3, 2, 1)  # ONNX i, o, f, c from TF's i, j, f, o
            w_x = _column_blocks(kernel[:D], order, H)
            w_h = _column_blocks(kernel[D:], order, H)
            w_b = _column_blocks(bias[None], order, H)[0]
            r_b = np.zeros(4 * H)
            activations = ["Sigmoid", act, act]
            attrs = {}
        elif isinstance(cell, GRUCell):
            op_type, blocks = "GRU", 3
            gates, gates_b = v["gates/kernel"], v["gates/bias"]
            # ONNX z, r, h from TF's r | u gates and the candidate
            if cell.reset_after:
                cand_x, cand_h = v["candidate/input/kernel"], v["candidate/hidden/kernel"]
                cand_xb, cand_hb = v["candidate/input/bias"], v["candidate/hidden/bias"]
            else:
                cand_x, cand_h = v["candidate/kernel"][:D], v["candidate/kernel"][D:]
                cand_xb, cand_hb = v["candidate/bias"], np.zeros(H)
            w_x = np.concatenate([gates[:D, H:], gates[:D, :H], cand_x], axis=1)
            w_h = np.concatenate([gates[D:, H:], gates[D:, :H], cand_h], axis=1)
            w_b = np.concatenate([gates_b[H:], gates_b[:H], cand_xb])
            r_b = np.concatenate([np.zeros(2 * H), cand_hb])
            activations = ["Sigmoid", act]
            attrs = {"linear_before_reset": int(cell.reset_after)}
        else:
            op_type, blocks = "RNN", 1
            w_x, w_h = v["kernel"][:D], v["kernel"][D:]
            w_b, r_b = v["bias"], np.zeros(H)
            activations = [act]
            attrs = {}
        hint = op_type.lower()
        if ids:  # the kernel rows the ids select, then an identity input weight
            x = self.input_rows(w_x, True, x, hint + "_input_kernel")
            w_x = np.eye(blocks * H)
        inputs = [x, self.weight(w_x.T[None], hint + "_W"), self.weight(w_h.T[None], hint + "_R"),
                  self.weight(np.concatenate([w_b, r_b])[None], hint + "_B"), self.lengths_int32()]
        h0 = states[-1]
        inputs.append(self.op("Unsqueeze", [h0, self.ints([0])], "initial_h"))
        if op_type == "LSTM":
            inputs.append(self.op("Unsqueeze", [states[0], self.ints([0])], "initial_c"))
            if cell.use_peepholes:
                inputs.append(self.weight(np.concatenate([v["w_i_diag"], v["w_o_diag"], v["w_f_diag"]])[None],
                                          hint + "_P"))
        outs = self.op(op_type, inputs, hint, outputs=3 if op_type == "LSTM" else 2,
                       hidden_size=H, activations=activations, **attrs)
        y = self.op("Squeeze", [outs[0], self.ints([1])], hint + "_outputs")  # [T, 1, B, H] -> [T, B, H]
        # the final states; a row of length 0 keeps its initial state (ONNX Runtime gives zeros)
        finals = [outs[2], outs[1]] if op_type == "LSTM" else [outs[1]]
        kept = []
        for final, initial in zip(finals, states):
            final = self.op("Squeeze", [final, self.ints([0])], hint + "_final")
            kept.append(self.op("Where", [self.empty_rows(), initial, final], hint + "_final_state"))
        return y, kept

    def scan(self, cell, x, ids, states):
        """The cell as a Scan over time whose body computes TF1's formulas."""
        H, D = cell.num_units, cell.input_depth
        v = cell.variables
        act = _ACTIVATIONS[cell.activation][1]
        body = _Graph(self.onnx, self.dtype, parent=self)
        hint = type(cell).__name__.lower()
        # step inputs hoisted out of the loop: x · W_x + b over all steps
        if isinstance(cell, LSTMCell):
            bias = np.array(v["bias"], np.float64)
            bias[2 * H:3 * H] += cell.forget_bias
            xs = [self.op("Add", [self.input_rows(v["kernel"][:D], ids, x, hint + "_input_kernel"),
                                  self.weight(bias, hint + "_bias")], hint + "_inputs")]
        elif isinstance(cell, GRUCell):
            cand_x = v["candidate/input/kernel"] if cell.reset_after else v["candidate/kernel"][:D]
            cand_b = v["candidate/input/bias"] if cell.reset_after else v["candidate/bias"]
            xs = [self.op("Add", [self.input_rows(v["gates/kernel"][:D], ids, x, hint + "_gates_kernel"),
                                  self.weight(v["gates/bias"], hint + "_gates_bias")], hint + "_gate_inputs"),
                  self.op("Add", [self.input_rows(cand_x, ids, x, hint + "_candidate_kernel"),
                                  self.weight(cand_b, hint + "_candidate_bias")], hint + "_candidate_inputs")]
        else:
            xs = [self.op("Add", [self.input_rows(v["kernel"][:D], ids, x, hint + "_input_kernel"),
                                  self.weight(v["bias"], hint + "_bias")], hint + "_inputs")]

        # the body: (states, step inputs, mask) -> (new states, output)
        widths = cell._state_widths()
        prev = [body.name(hint + "_state") for _ in widths]
        step = [body.name(hint + "_step_input") for _ in xs]
        live = body.name(hint + "_live")
        body.inputs = ([body.value_info(n, self.elem, [None, w]) for n, w in zip(prev, widths)]
                       + [body.value_info(n, self.elem, None) for n in step]
                       + [body.value_info(live, self.onnx.TensorProto.BOOL, [None, 1])])
        if isinstance(cell, LSTMCell):
            new, out = _lstm_step(body, cell, prev, step[0], act, self)
        elif isinstance(cell, GRUCell):
            new, out = _gru_step(body, cell, prev, step, act, self)
        else:
            z = body.op("Add", [step[0], body.op("MatMul", [prev[0], self.weight(v["kernel"][D:], hint + "_R")])])
            new = [body.op(act, [z], "h")]
            out = new[0]
        # past a row's length: state carried, output zero
        kept = [body.op("Where", [live, n, p], hint + "_next_state") for n, p in zip(new, prev)]
        out = body.op("Where", [live, out, self.scalar(0.0)], hint + "_step_output")
        body.outputs = ([body.value_info(n, self.elem, [None, w]) for n, w in zip(kept, widths)]
                        + [body.value_info(out, self.elem, [None, cell.output_size])])
        outs = self.op("Scan", states + xs + [self.step_mask()], hint + "_scan", outputs=len(widths) + 1,
                       body=body.graph(hint + "_step"), num_scan_inputs=len(xs) + 1)
        return outs[-1], outs[:-1]


def _operator_expresses(cell):
    """Does ONNX's LSTM, GRU or RNN operator compute this cell exactly (and
    does ONNX Runtime run it: float32 only)?"""
    if cell.dtype != np.float32 or _ACTIVATIONS[cell.activation][0] is None:
        return False
    if isinstance(cell, LSTMCell):
        return cell.num_proj is None and cell.cell_clip is None and cell.proj_clip is None
    return True


def _column_blocks(a, order, size):
    """The column blocks of a (each `size` wide) in `order`."""
    return np.concatenate([a[:, k * size:(k + 1) * size] for k in order], axis=1)


def _input_depth(layer):
    if isinstance(layer, RNN):
        return layer.cell.input_depth
    if isinstance(layer, Bidirectional):
        return layer.fw.cell.input_depth
    return layer.input_depth


def _lstm_step(body, cell, prev, z_x, act, outer):
    """TF1's LSTMCell step: (c, m) -> ((c', m'), m')."""
    H, D = cell.num_units, cell.input_depth
    v = cell.variables
    c, m = prev
    z = body.op("Add", [z_x, body.op("MatMul", [m, outer.weight(v["kernel"][D:], "lstm_R")])], "z")
    i, j, f, o = body.op("Split", [z, outer.ints([H] * 4)], "gate", outputs=4, axis=1)
    if cell.use_peepholes:
        i = body.op("Add", [i, body.op("Mul", [c, outer.weight(v["w_i_diag"], "w_i_diag")])], "i")
        f = body.op("Add", [f, body.op("Mul", [c, outer.weight(v["w_f_diag"], "w_f_diag")])], "f")
    c_new = body.op("Add", [body.op("Mul", [body.op("Sigmoid", [f]), c]),
                            body.op("Mul", [body.op("Sigmoid", [i]), body.op(act, [j])])], "c")
    if cell.cell_clip is not None:
        c_new = body.op("Clip", [c_new, outer.scalar(-cell.cell_clip), outer.scalar(cell.cell_clip)], "c_clipped")
    if cell.use_peepholes:
        o = body.op("Add", [o, body.op("Mul", [c_new, outer.weight(v["w_o_diag"], "w_o_diag")])], "o")
    m_new = body.op("Mul", [body.op("Sigmoid", [o]), body.op(act, [c_new])], "m")
    if cell.num_proj is not None:
        m_new = body.op("MatMul", [m_new, outer.weight(v["projection/kernel"], "projection")], "m_projected")
        if cell.proj_clip is not None:
            m_new = body.op("Clip", [m_new, outer.scalar(-cell.proj_clip), outer.scalar(cell.proj_clip)],
                            "m_clipped")
    return [c_new, m_new], m_new


def _gru_step(body, cell, prev, step, act, outer):
    """TF1's GRUCell step (or reset-after): h -> (h', h')."""
    H, D = cell.num_units, cell.input_depth
    v = cell.variables
    h = prev[0]
    gates = body.op("Sigmoid", [body.op("Add", [step[0], body.op(
        "MatMul", [h, outer.weight(v["gates/kernel"][D:], "gru_gates_R")])])], "gates")
    r, u = body.op("Split", [gates, outer.ints([H, H])], "gate", outputs=2, axis=1)
    if cell.reset_after:
        hidden = body.op("Add", [body.op("MatMul", [h, outer.weight(v["candidate/hidden/kernel"], "gru_candidate_R")]),
                                 outer.weight(v["candidate/hidden/bias"], "gru_candidate_hidden_bias")])
        candidate = body.op(act, [body.op("Add", [step[1], body.op("Mul", [r, hidden])])], "candidate")
    else:
        reset = body.op("Mul", [r, h], "reset_state")
        candidate = body.op(act, [body.op("Add", [step[1], body.op(
            "MatMul", [reset, outer.weight(v["candidate/kernel"][D:], "gru_candidate_R")])])], "candidate")
    one_minus_u = body.op("Sub", [outer.scalar(1.0), u])
    h_new = body.op("Add", [body.op("Mul", [u, h]), body.op("Mul", [one_minus_u, candidate])], "h")
    return [h_new], h_new
