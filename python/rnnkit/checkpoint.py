"""Save and load variables under TF1's full checkpoint names.

The file format is a plain `.npz` whose keys are the names TF1 gives the same
variables in a checkpoint, so a TF1 model's weights can be exported with
numpy alone and a saved rnnkit model can be read back into TF1:

    cell alone or in RNN      rnn/<cell scope>/<name>     rnn/basic_lstm_cell/kernel
    MultiRNNCell              rnn/multi_rnn_cell/cell_0/gru_cell/gates/kernel
    Bidirectional             bidirectional_rnn/fw/<cell scope>/<name>, bidirectional_rnn/bw/...
    Dense                     dense/kernel, dense/bias
    Embedding                 embedding (tf.get_variable("embedding", ...))

In a `Sequential`, layers of the same kind get TF's uniquified scopes in
order: `rnn`, `rnn_1`, ...; `dense`, `dense_1`, ...; `bidirectional_rnn`,
`bidirectional_rnn_1`, ... A dict of named objects puts each under its name
(`{"encoder": rnn, "head": dense}`: `encoder/rnn/...`, `head/dense/kernel`).
A `scope_map` renames scopes where the TF model used its own
(`{"rnn": "encoder/rnn", "dense": "softmax"}`).

Optimizer state (`optimizer=`) uses TF1's names too: Adam's slots
`<variable>/Adam` (m) and `<variable>/Adam_1` (v), `beta1_power` and
`beta2_power` (beta^(t+1) after t steps, as TF1 keeps them) and
`global_step` (t); loading them makes training resume exactly. Without
`optimizer=`, load ignores those keys.

Loading is all-or-nothing: every name, shape and value is checked (and
converted to its variable's dtype) before any variable is written. An unbuilt cell or Dense is built from the input depth
that the file's kernel shape implies (the kernel's rows minus the recurrent
width for a cell; the rows for Dense).
"""

from __future__ import annotations

import copy
import io
import math
import os
import zipfile
import zlib
from collections.abc import Mapping
from typing import IO, Any, Optional, TypeVar, Union, overload

import numpy as np

from ._checks import shape_str
from .optimizers import AdamOptimizer, GradientDescentOptimizer
from .bidirectional import Bidirectional
from .cells.base import RNNCell
from .cells.dropout_stream import dropout_streams
from .cells.multi import MultiRNNCell
from .layers import Dense, Embedding
from .rnn import RNN
from .sequential import Sequential
from .tf_checkpoint import TFCheckpoint, write_tf_checkpoint

__all__ = ["save", "load", "load_tf_checkpoint", "save_tf_checkpoint", "checkpoint_names"]

# What save and load take: a cell, RNN, Bidirectional, Dense, Embedding or
# Sequential, or a dict of them by name.
_Model = TypeVar("_Model")
_Path = Union[str, "os.PathLike[str]"]

_SUPPORTED = "an rnnkit cell, RNN, Bidirectional, Dense, Embedding or Sequential (or a dict of them by name)"


# ---- names ------------------------------------------------------------------------
def _base_scope(obj):
    """TF's default top-level scope for `obj`, or None for a layer without variables."""
    if isinstance(obj, (RNNCell, RNN)):
        return "rnn"  # tf.nn.dynamic_rnn's default scope
    if isinstance(obj, Bidirectional):
        return Bidirectional.scope_name  # tf.nn.bidirectional_dynamic_rnn's
    if isinstance(obj, Dense):
        return "dense"  # tf.layers.dense's
    if isinstance(obj, Embedding):
        return Embedding.scope_name  # the variable's own name: tf.get_variable("embedding", ...)
    variables = getattr(obj, "variables", None)
    if variables is not None and hasattr(variables, "__len__") and len(variables) == 0:
        return None
    raise TypeError(f"save/load take {_SUPPORTED}, got {type(obj).__name__}")


def _models(objects):
    """[(name prefix, object)]: a dict's items under their names, or ("", objects)."""
    if not isinstance(objects, dict):
        return [("", objects)]
    if not objects:
        raise ValueError("objects must name at least one object, got an empty dict")
    for name in objects:
        if not isinstance(name, str) or not name.strip("/") or name != name.strip("/"):
            raise ValueError(f"objects' names must be non-empty scope names without a leading or trailing '/', "
                             f"got {name!r}")
    return [(name + "/", obj) for name, obj in objects.items()]


def _top_scopes(objects):
    """[(top-level scope, object)] in order, under a dict's names; a
    Sequential's scopes uniquified as TF does."""
    return [(prefix + scope, layer) for prefix, obj in _models(objects) for scope, layer in _scopes_of(obj)]


def _scopes_of(obj):
    if isinstance(obj, Sequential):
        out, seen = [], {}
        for layer in obj.layers:
            base = _base_scope(layer)
            if base is None:
                continue
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.append((base if n == 0 else f"{base}_{n}", layer))
        return out
    return [(_base_scope(obj), obj)]


def _owners(obj):
    """[(scope path, owner)]: each owner (a cell or Dense) holds its variables,
    keyed relative to that path."""
    out = []
    for scope, layer in _top_scopes(obj):
        if isinstance(layer, RNNCell):
            out.append((f"{scope}/{layer.scope_name}", layer))
        elif isinstance(layer, RNN):
            out.append((f"{scope}/{layer.cell.scope_name}", layer.cell))
        elif isinstance(layer, Bidirectional):
            for tag, cell in zip(("fw", "bw"), layer.cells):
                out.append((f"{scope}/{tag}/{cell.scope_name}", cell))
        else:  # Dense
            out.append((scope, layer))
    return out


def _renamer(obj, scope_map):
    """name -> checkpoint name under `scope_map` ({rnnkit scope: checkpoint scope});
    the longest matching prefix wins, and an empty target drops the prefix."""
    if scope_map is None:
        return lambda name: name
    if not hasattr(scope_map, "items"):
        raise TypeError(f"scope_map must be a dict {{rnnkit scope: checkpoint scope}}, got {type(scope_map).__name__}")
    for key, value in scope_map.items():
        if not isinstance(key, str) or not isinstance(value, str) or not key:
            raise TypeError(f"scope_map must map non-empty strings to strings, got {key!r}: {value!r}")
    paths = [path for path, _ in _owners(obj)]
    for key in scope_map:
        if not any(p == key or p.startswith(key + "/") or key.startswith(p + "/") for p in paths):
            tops = ", ".join(scope for scope, _ in _top_scopes(obj))
            raise ValueError(f"scope_map key {key!r} matches none of the model's scopes ({tops})")
    keys = sorted(scope_map, key=len, reverse=True)

    def rename(name):
        for key in keys:
            if name == key or name.startswith(key + "/"):
                rest = name[len(key) + 1:]
                target = scope_map[key].strip("/")
                return f"{target}/{rest}" if target and rest else (target or rest)
        return name

    return rename


def checkpoint_names(obj: Any, scope_map: Optional[dict[str, str]] = None) -> dict[str, tuple[int, ...]]:
    """{TF1 checkpoint name: shape} for every variable of `obj`, the keys
    `save` writes.

    Args:
      obj: a cell, RNN, Bidirectional, Dense or Sequential, or a dict of them
        by name. Parts that are not built yet have no variables and
        contribute no names.
      scope_map: optional {rnnkit scope: checkpoint scope}, e.g. {"rnn": "encoder"}.
    Returns:
      a dict in variable order, each shape a tuple.
    """
    return {name: array.shape for name, array in _variables(obj, scope_map).items()}


def _variables(obj, scope_map=None):
    """{TF1 checkpoint name: live variable array}: writing into one changes the model."""
    return _named(obj, _renamer(obj, scope_map))


def _named(obj, rename):
    # an Embedding's one variable is named by its scope alone ("embedding", "embedding_1" in a Sequential)
    return {rename(path if isinstance(owner, Embedding) else f"{path}/{name}"): array
            for path, owner in _owners(obj) for name, array in owner.variables.items()}


# ---- building unbuilt parts from the file's shapes ---------------------------------------
def _kernel_of(cell, path):
    """(checkpoint-relative key, axis, size at depth 0) of the first variable
    whose shape grows with the input depth, found by asking the cell for its
    variables at depths 1 and 2. For MultiRNNCell and wrappers, the first
    real cell's."""
    if isinstance(cell, MultiRNNCell):
        first = cell.cells[0]
        return _kernel_of(first, f"{path}/cell_0/{first.scope_name}")
    inner = getattr(cell, "cell", None)
    if isinstance(inner, RNNCell):  # wrappers add no scope
        return _kernel_of(inner, path)
    one = dict(cell._variable_specs(np.random.default_rng(0), 1))
    two = dict(cell._variable_specs(np.random.default_rng(0), 2))
    for name, a in one.items():
        b = two[name]
        for axis, (m, n) in enumerate(zip(a.shape, b.shape)):
            if m != n:
                return f"{path}/{name}", axis, m - 1
    raise TypeError(f"cannot tell the input depth of {type(cell).__name__} from its variables")


def _unbuilt_message(owner, path):
    return (f"{type(owner).__name__} at '{path}' is not built yet: construct it with input_depth=... "
            f"or run it once on inputs")


def _build_from(obj, shapes, rename, source):
    """Builds every unbuilt cell / Dense of `obj` from the depth the file implies."""
    built_here = set()
    for path, owner in _owners(obj):
        if owner.built:
            continue
        if isinstance(owner, Dense):
            key, axis, base = f"{path}/kernel", 0, 0
        else:
            key, axis, base = _kernel_of(owner, path)
        file_key = rename(key)
        shape = shapes.get(file_key)
        if shape is None or len(shape) <= axis or shape[axis] - base < 1:
            found = "it has none" if shape is None else f"its shape {shape_str(shape)} gives no input depth"
            raise ValueError(
                f"{_unbuilt_message(owner, path)}, or load a file with '{file_key}' to infer the depth from "
                f"({source}: {found})"
            )
        owner.build(int(shape[axis] - base))
        built_here.add(id(owner))
    for prefix, model in _models(obj):
        if isinstance(model, Sequential):
            _check_chain(model, prefix, built_here, rename, source)
    for _, layer in _top_scopes(obj):
        if isinstance(layer, Bidirectional):
            fw, bw = layer.cells
            if fw.input_depth != bw.input_depth:
                raise ValueError(
                    f"{source}: the fw cell has input depth {fw.input_depth} and the bw cell {bw.input_depth}; "
                    f"a Bidirectional layer's cells read the same inputs"
                )


def _io_sizes(layer):
    """(the owner that reads the layer's input, its input depth, its output depth) of an RNN or Dense."""
    if isinstance(layer, RNN):
        return layer.cell, layer.cell.input_depth, layer.cell.output_size
    if isinstance(layer, Dense):
        return layer, layer.input_depth, layer.units
    return None


def _check_chain(model, prefix, built_here, rename, source):
    """In a Sequential, a layer built from the file must read what the layer before it writes."""
    scopes = dict((id(layer), prefix + scope) for scope, layer in _top_scopes(model))
    for before, after in zip(model.layers, model.layers[1:]):
        a, b = _io_sizes(before), _io_sizes(after)
        if a is None or b is None or id(b[0]) not in built_here or b[1] == a[2]:
            continue
        raise ValueError(
            f"{source}: the variables under '{rename(scopes[id(after)])}' give {type(after).__name__} input depth "
            f"{b[1]}, but the layer before it ('{rename(scopes[id(before)])}') outputs depth {a[2]}"
        )


# ---- restoring ------------------------------------------------------------------------------
def _quoted(keys, limit=12):
    keys = list(keys)
    text = ", ".join(f"'{k}'" for k in keys[:limit])
    return text + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")


# ---- optimizer state ---------------------------------------------------------------------
_OPTIMIZER_SCALARS = ("beta1_power", "beta2_power", "global_step")


def _is_optimizer_key(key):
    """Is `key` optimizer state (TF1's slot and step names) rather than a model variable?"""
    return key in _OPTIMIZER_SCALARS or key.endswith(("/Adam", "/Adam_1"))


def _check_optimizer(optimizer):
    if optimizer is not None and not isinstance(optimizer, (AdamOptimizer, GradientDescentOptimizer)):
        raise TypeError(f"optimizer must be an AdamOptimizer or GradientDescentOptimizer, got {type(optimizer).__name__}")


def _optimizer_shapes(optimizer, variables):
    """{checkpoint key: shape} of the optimizer's state for `variables`
    ({name: array}); `global_step` is optional and not among them."""
    if not isinstance(optimizer, AdamOptimizer):
        return {}  # plain gradient descent keeps no state
    shapes = {}
    for name, var in variables.items():
        shapes[f"{name}/Adam"] = shapes[f"{name}/Adam_1"] = tuple(var.shape)
    shapes["beta1_power"] = shapes["beta2_power"] = ()
    return shapes


def _optimizer_state(optimizer, variables):
    """{checkpoint key: array}: the optimizer's state for `variables`, as save writes it."""
    if not isinstance(optimizer, AdamOptimizer):
        return {}
    state = {}
    for name, var in variables.items():
        for suffix, slot in (("/Adam", "m"), ("/Adam_1", "v")):
            value = optimizer.get_slot(var, slot)
            state[name + suffix] = np.zeros_like(var) if value is None else value
    dtype = next(iter(variables.values())).dtype if variables else np.float32
    steps = optimizer.iterations
    state["beta1_power"] = np.asarray(optimizer.beta1 ** (steps + 1), dtype)  # TF1's value after `steps` updates
    state["beta2_power"] = np.asarray(optimizer.beta2 ** (steps + 1), dtype)
    state["global_step"] = np.asarray(steps, np.int64)
    return state


def _adam_steps(optimizer, values, source):
    """Adam's step count: `global_step` where the file has it, else from a beta power (beta^(t+1))."""
    if "global_step" in values:
        return int(values["global_step"])
    for key, beta in (("beta1_power", optimizer.beta1), ("beta2_power", optimizer.beta2)):
        power = float(values[key])
        if 0 < beta and np.finfo(np.float32).tiny <= power <= beta:
            return int(round(np.log(power) / np.log(beta))) - 1
    raise ValueError(f"{source}: Adam's step count cannot be told from beta1_power and beta2_power "
                     f"(no global_step, and both have underflowed)")


def _read_optimizer_state(optimizer, plan, shapes, read, source):
    """Checks and reads the optimizer's state for the variables in `plan`:
    ({key: array}, step count or None)."""
    wanted = _optimizer_shapes(optimizer, plan)
    missing = [k for k in wanted if k not in shapes]
    if missing:
        raise ValueError(f"{source} has no optimizer state {_quoted(missing)} (was it saved with optimizer=...?)")
    values = {}
    for key, shape in wanted.items():
        value = np.asarray(read(key))
        if value.dtype.kind != "f" or value.shape != shape:
            raise ValueError(f"{source}: '{key}' must be a float array of shape {shape_str(shape)}, got dtype "
                             f"{value.dtype} and shape {shape_str(value.shape)}")
        values[key] = value
    if not wanted:
        return values, None
    if "global_step" in shapes:
        step = np.asarray(read("global_step", integer=True))
        if step.dtype.kind not in "iu" or step.shape != () or int(step) < 0:
            raise ValueError(f"{source}: 'global_step' must be an integer >= 0 of shape [], got dtype {step.dtype} "
                             f"and shape {shape_str(step.shape)}")
        values["global_step"] = step
    return values, _adam_steps(optimizer, values, source)


def _write_optimizer_state(optimizer, variables, values, steps):
    if not isinstance(optimizer, AdamOptimizer):
        return
    for name, var in variables.items():
        _, m, v = optimizer._slots_for(var)
        np.copyto(m, values[name + "/Adam"], casting="same_kind")
        np.copyto(v, values[name + "/Adam_1"], casting="same_kind")
    optimizer.iterations = steps


# ---- restoring, continued ------------------------------------------------------------------
def _restore(obj, shapes, read, source, rename, unexpected, optimizer=None):
    """Checks every name, shape and dtype, then copies into the live variables
    (and the optimizer's state, when `optimizer` is given).

    shapes: {checkpoint name: shape tuple}; read(name) -> array;
    unexpected(expected names) -> checkpoint names that are an error."""
    needs_build = any(not owner.built for _, owner in _owners(obj))
    # build a copy first so that a file that does not fit leaves obj untouched
    plan_obj = copy.deepcopy(obj) if needs_build else obj
    if needs_build:
        _build_from(plan_obj, shapes, rename, source)
    plan = _named(plan_obj, rename)

    missing = [k for k in plan if k not in shapes]
    if missing:
        have = _quoted(shapes) if shapes else "nothing"
        raise ValueError(f"{source} is missing {_quoted(missing)} (it has: {have})")
    for key, array in plan.items():
        if tuple(shapes[key]) != array.shape:
            raise ValueError(
                f"{source}: '{key}' has shape {shape_str(shapes[key])}, the model's variable has shape "
                f"{shape_str(array.shape)}"
            )
    extra = list(unexpected(plan))
    if extra:
        raise ValueError(f"{source} has variables the model does not: {_quoted(extra)} "
                         f"(load with strict=False to ignore them)")
    values = {}  # every value in its variable's dtype, before anything is written
    for key, array in plan.items():
        value = np.asarray(read(key))
        _check_float(value.dtype, source, key)
        if value.shape != array.shape:  # a reader whose shape map disagrees with its tensors
            raise ValueError(f"{source}: '{key}' has shape {shape_str(value.shape)}, expected {shape_str(array.shape)}")
        values[key] = _converted(value, array.dtype, source, key)
    slot_values, steps = _read_optimizer_state(optimizer, plan, shapes, read, source)

    read_only = [k for k, a in _named(obj, rename).items() if not a.flags.writeable]
    if read_only:
        raise ValueError(f"cannot load {source}: the model's variables {_quoted(read_only)} are read-only arrays")
    if needs_build:
        _build_from(obj, shapes, rename, source)
    live = _named(obj, rename)
    for key, value in values.items():
        np.copyto(live[key], value)
    _write_optimizer_state(optimizer, live, slot_values, steps)


def _check_float(dtype, source, key):
    if dtype.kind != "f":
        raise TypeError(f"{source}: '{key}' has dtype {dtype}, expected a float array")


def _converted(value, dtype, source, key):
    """`value` in the variable's `dtype` (float64 <-> float32 by rounding); a
    finite value that overflows `dtype` is an error, not an inf."""
    if value.dtype == dtype:
        return value
    with np.errstate(over="ignore"):
        out = value.astype(dtype)
    overflow = np.isinf(out) & np.isfinite(value)
    if overflow.any():
        index = tuple(int(i) for i in np.unravel_index(int(np.argmax(overflow)), value.shape))
        raise ValueError(f"{source}: '{key}' holds {value[index].item()!r} at index {list(index)}, which overflows "
                         f"the variable's {dtype} (largest {np.finfo(dtype).max:.6g})")
    return out


def _strict_extras(strict, keys):
    """Keys of the file that are neither the model's nor optimizer state nor
    dropout counters are an error when strict."""
    def unexpected(plan):
        return [k for k in keys if k not in plan and not _is_optimizer_key(k) and k != DROPOUT_KEY] if strict else []
    return unexpected


# ---- dropout counters -----------------------------------------------------------------------
# The seeds and call counters of the dropout streams in the saved objects
# (DropoutWrapper, LayerNormBasicLSTMCell), in dropout_streams order: uint64
# [n, 2] of (seed, calls). TF1 keeps no such state, so the key is rnnkit's
# own and save writes it only with the optimizer's state; load restores the
# counters when the file has them, and with them the masks of the next
# training step.
DROPOUT_KEY = "rnnkit/dropout_streams"


def _streams(obj):
    return dropout_streams([owner for _, owner in _owners(obj)])


def _dropout_state(obj):
    streams = _streams(obj)
    if not streams:
        return {}
    return {DROPOUT_KEY: np.array([[s.stream_seed, s.calls] for s in streams], np.uint64)}


def _read_dropout_state(obj, shapes, read, source):
    """[(stream, seed, calls)] from the file, checked against obj's dropout
    streams; empty when the file holds no counters or obj has no dropout (a
    model for inference may leave out the wrappers it was trained with)."""
    streams = _streams(obj)
    if DROPOUT_KEY not in shapes or not streams:
        return []
    value = np.asarray(read(DROPOUT_KEY, integer=True))
    if value.dtype != np.uint64 or value.ndim != 2 or value.shape[1] != 2:
        raise ValueError(f"{source}: '{DROPOUT_KEY}' must be a uint64 array [n, 2], got {value.dtype.name} "
                         f"{shape_str(value.shape)}")
    if len(value) != len(streams):
        raise ValueError(f"{source} holds the dropout counters of {len(value)} cells, the model has "
                         f"{len(streams)}")
    return [(stream, int(seed), int(calls)) for stream, (seed, calls) in zip(streams, value)]


# ---- public API -------------------------------------------------------------------------------
@overload
def save(path: _Path, objects: Any, scope_map: Optional[dict[str, str]] = None,
         optimizer: Optional[Union[AdamOptimizer, GradientDescentOptimizer]] = None) -> str: ...
@overload
def save(path: IO[bytes], objects: Any, scope_map: Optional[dict[str, str]] = None,
         optimizer: Optional[Union[AdamOptimizer, GradientDescentOptimizer]] = None) -> None: ...


def save(path: Union[_Path, IO[bytes]], objects: Any, scope_map: Optional[dict[str, str]] = None,
         optimizer: Optional[Union[AdamOptimizer, GradientDescentOptimizer]] = None) -> Optional[str]:
    """Writes every variable of `objects` to an `.npz` keyed by TF1's checkpoint names.

    Args:
      path: a file name (numpy appends '.npz' when it has no such suffix) or
        a writable binary file object.
      objects: a built cell, RNN, Bidirectional, Dense or Sequential, or a
        dict of them by name ({"encoder": rnn, "head": dense}: each under its name).
      scope_map: optional {rnnkit scope: checkpoint scope}, e.g. {"rnn": "encoder"}.
      optimizer: also write its state for these variables (Adam's slots,
        beta powers and step count), so that training can resume exactly.
    With `optimizer`, the seeds and call counters of the objects' dropout
    (DropoutWrapper, LayerNormBasicLSTMCell) are written too, under
    'rnnkit/dropout_streams'; every other key is a TF1 name.
    Returns:
      the file name written (with '.npz'), or None for a file object.
    """
    _check_optimizer(optimizer)
    for owner_path, owner in _owners(objects):
        if not owner.built:
            raise ValueError(f"cannot save: {_unbuilt_message(owner, owner_path)}")
    names = _variables(objects, scope_map)
    arrays: dict[str, Any] = {k: np.asarray(v) for k, v in names.items()}
    arrays.update(_optimizer_state(optimizer, names))
    if optimizer is not None:  # training state: the next step's masks too
        arrays.update(_dropout_state(objects))
    np.savez(path, **arrays)
    if isinstance(path, (str, os.PathLike)):
        name = os.fspath(path)
        return name if name.endswith(".npz") else name + ".npz"
    return None


def load(path: Union[_Path, IO[bytes]], obj: _Model, strict: bool = True, scope_map: Optional[dict[str, str]] = None,
         optimizer: Optional[Union[AdamOptimizer, GradientDescentOptimizer]] = None) -> _Model:
    """Reads variables saved by `save` (or any `.npz` keyed by TF1 names) into `obj`.

    Every variable of `obj` must be in the file with its exact shape; values
    are converted to the variable's dtype. Nothing is written unless the whole
    file fits. Unbuilt cells and Dense layers are built from the input depth
    the file's kernel shapes imply.

    Args:
      path: an `.npz` file name or a readable binary file object.
      obj: a cell, RNN, Bidirectional, Dense or Sequential, or a dict of them
        by name (as saved).
      strict: when True, keys in the file that `obj` does not have are an
        error (optimizer state aside, which is read only with `optimizer`).
      scope_map: optional {rnnkit scope: checkpoint scope}.
      optimizer: also restore its state for these variables (saved with
        `save(..., optimizer=...)`); its step count is set too.
    Dropout seeds and call counters saved by `save` are restored as well, so
    the next training step draws the masks it would have drawn.
    Returns:
      obj.
    Raises:
      ValueError naming the key: a missing key, a wrong shape, an extra key,
        a value that overflows the variable's dtype, a read-only variable.
      ValueError naming the file: not an .npz file (empty, .npy, text, a
        damaged zip), a member that is short, corrupt or not an .npy array,
        object arrays (pickles).
      TypeError: a non-float array in the file, or an unsupported `obj`.
    """
    _check_optimizer(optimizer)
    if isinstance(path, (str, os.PathLike)):
        source = f"checkpoint {os.fspath(path)!r}"
    else:
        source = f"checkpoint file {path.name!r}" if isinstance(getattr(path, "name", None), str) else "checkpoint file"
    rename = _renamer(obj, scope_map)
    with _NpzArchive(path, source) as archive:
        counters = _read_dropout_state(obj, archive.shapes, archive.read, source)
        _restore(obj, archive.shapes, archive.read, source, rename, _strict_extras(strict, archive.shapes), optimizer)
    for stream, seed, calls in counters:
        stream.stream_seed, stream.calls = seed, calls
    return obj


# ---- reading .npz files ---------------------------------------------------------------------
class _NpzArchive:
    """An `.npz` file (a zip of `.npy` members, stored or deflated) read one
    member at a time, so that a hostile file costs no more than the model's
    own variables: a member's header is read only when its key is looked up
    in `shapes`, and checked against the member's size before any data is
    read; `read(key)` reads no more than that checked size. Object arrays
    (pickles) are refused. Every problem is a ValueError (TypeError for a
    non-float array) naming the file and the key."""

    _MAX_HEADER = 10000  # numpy's own limit on an .npy header (max_header_size)

    def __init__(self, path, source):
        self.source = source
        self._refuse_other_formats(path)
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, EOFError, ValueError) as e:
            raise ValueError(f"{source} is a damaged or truncated zip archive ({e})") from e
        self._members = {}
        for info in self._zip.infolist():
            name = info.filename
            self._members[name[:-4] if name.endswith(".npy") else name] = info
        self._headers = {}
        self.shapes = _LazyShapes(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._zip.close()

    def _refuse_other_formats(self, path):
        """An empty file, an .npy file or a text file each get their own message."""
        if isinstance(path, (str, os.PathLike)):
            with open(path, "rb") as f:
                start = f.read(16)
        else:
            where = path.tell()
            start = path.read(16)
            path.seek(where)
        if not start:
            raise ValueError(f"{self.source} is empty, not an .npz file")
        if start.startswith(b"\x93NUMPY"):
            raise ValueError(f"{self.source} is an .npy file (one array), not an .npz file of named "
                             f"variables such as rnnkit.save writes")
        if not start.startswith(b"PK"):
            raise ValueError(f"{self.source} is not an .npz file (a zip archive): it starts with {start!r}")

    def _open(self, key):
        info = self._members[key]
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ValueError(f"{self.source}: '{key}' is compressed with zip method {info.compress_type}; "
                             f".npz members are stored or deflated")
        return self._zip.open(info)

    def _failed(self, key, what, error):
        return ValueError(f"{self.source}: '{key}' {what} ({type(error).__name__}: {error})")

    def header(self, key):
        """(shape, dtype, fortran_order, data offset) of a member, checked:
        a float or other plain dtype, and exactly the data its header declares."""
        if key in self._headers:
            return self._headers[key]
        try:
            with self._open(key) as f:
                version = np.lib.format.read_magic(f)
                if version not in ((1, 0), (2, 0)):
                    raise ValueError(f".npy format version {version[0]}.{version[1]} is not supported")
                size = 2 if version == (1, 0) else 4
                length_field = f.read(size)
                length = int.from_bytes(length_field, "little")
                if len(length_field) < size or length > self._MAX_HEADER:
                    raise ValueError(f"its header length {length} is not that of an .npy header")
                header = f.read(length)
                parse = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, fortran_order, dtype = parse(io.BytesIO(length_field + header))
                offset = 6 + 2 + len(length_field) + length
        except ValueError as e:
            raise self._failed(key, "is not an .npy array", e) from e
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError) as e:
            raise self._failed(key, "cannot be read", e) from e
        if dtype.hasobject:
            raise ValueError(f"{self.source}: '{key}' holds Python objects (a pickle), which load refuses")
        info = self._members[key]
        nbytes = math.prod(shape) * dtype.itemsize
        if info.file_size != offset + nbytes:
            raise ValueError(
                f"{self.source}: '{key}' declares shape {shape_str(shape)} of {dtype} ({nbytes} bytes of data), "
                f"but its zip member holds {info.file_size - offset} bytes after the header"
            )
        self._headers[key] = (shape, dtype, fortran_order, offset)
        return self._headers[key]

    def read(self, key, integer=False):
        """The array under `key`; only a float array is read (or, with
        `integer`, an integer one: Adam's global_step)."""
        shape, dtype, fortran_order, offset = self.header(key)
        if not (integer and dtype.kind in "iu"):
            _check_float(dtype, self.source, key)
        data = np.empty(math.prod(shape) * dtype.itemsize, np.uint8)
        try:
            with self._open(key) as f:
                f.read(offset)
                view, filled = memoryview(data), 0
                while filled < data.size:  # in chunks: readinto of a zip member reads into a temporary
                    n = f.readinto(view[filled:filled + (1 << 20)])
                    if not n:
                        raise EOFError(f"the data ended after {filled} of {data.size} bytes")
                    filled += n
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError) as e:
            raise self._failed(key, "cannot be read", e) from e
        array = data.view(dtype)
        return array.reshape(shape[::-1]).T if fortran_order else array.reshape(shape)


class _LazyShapes(Mapping):
    """{key: shape} of an _NpzArchive; a member's header is read on lookup only."""

    def __init__(self, archive):
        self._archive = archive

    def __getitem__(self, key):
        if key not in self._archive._members:
            raise KeyError(key)
        return self._archive.header(key)[0]

    def __contains__(self, key):
        return key in self._archive._members

    def __iter__(self):
        return iter(self._archive._members)

    def __len__(self):
        return len(self._archive._members)


def _scope_renamer(obj, scope, scope_map):
    """rename under scope_map, then under the outer scope `scope` ('model' -> 'model/rnn/...')."""
    rename = _renamer(obj, scope_map)
    if scope is None:
        return rename
    if not isinstance(scope, str) or not scope.strip("/"):
        raise TypeError(f"scope must be a non-empty string such as 'model', got {scope!r}")
    outer = scope.strip("/")
    return lambda name: f"{outer}/{rename(name)}"


def _check_scopes(obj, names, rename, source):
    """Every cell and Dense of `obj` must find variables under its checkpoint
    scope; else one error lists the model's unmatched scopes and the
    checkpoint's unmatched names."""
    paths = [rename(path) for path, _ in _owners(obj)]
    missing = [p for p in paths if not any(n.startswith(p + "/") for n in names)]
    if not missing:
        return
    unmatched = [n for n in names if not any(n.startswith(p + "/") for p in paths)]
    outers = [name[:name.find("/" + path + "/")] for name in unmatched for path in missing
              if name.find("/" + path + "/") > 0]
    inners = [path.split("/", k)[k] for path in missing for k in range(1, path.count("/") + 1)
              if any(name.startswith(path.split("/", k)[k] + "/") for name in unmatched)]
    if outers:
        hint = f"; they are there under an outer scope: pass scope={outers[0]!r}"
    elif inners:
        hint = f"; they are there under {inners[0]!r}, without the outer scope given"
    else:
        hint = ""
    raise ValueError(f"{source} has no variables under the model's {_quoted(missing)} "
                     f"(the checkpoint's names that match none of the model's scopes: "
                     f"{_quoted(unmatched) if unmatched else 'none'}){hint}")


def load_tf_checkpoint(checkpoint_prefix: Any, obj: _Model, scope: Optional[str] = None, strict: bool = True,
                       scope_map: Optional[dict[str, str]] = None) -> _Model:
    """Reads a TF1 checkpoint (tf.train.Saver's files) into `obj`, by TF's names,
    without TensorFlow (rnnkit.tf_checkpoint reads the format).

    Only the variables `obj` needs are read, each checked against its CRC32C;
    nothing is written into `obj` unless every one of them was read and fits.
    Optimizer slots (`<variable>/Adam`, ...) and variables outside the
    model's top-level scopes are ignored; with `strict`, any other variable
    under those scopes (say a peephole the rnnkit cell does not have) is an
    error.

    Args:
      checkpoint_prefix: the checkpoint's prefix ('model.ckpt-1000'), its
        '.index' file, a directory whose 'checkpoint' file names the latest
        one, or an open reader with get_tensor(name) and
        get_variable_to_shape_map().
      obj: a cell, RNN, Bidirectional, Dense or Sequential.
      scope: the outer scope the TF model was built under: with
        scope="model", 'model/rnn/basic_lstm_cell/kernel' loads into an
        RNN's BasicLSTMCell.
      strict: see above.
      scope_map: optional {rnnkit scope: checkpoint scope} for models built
        under other scopes, e.g. {"rnn": "encoder/rnn", "dense": "softmax"};
        applied before `scope`.
    Returns:
      obj.
    Raises:
      FileNotFoundError naming the missing index or data file.
      ValueError naming the file: a corrupt, truncated or foreign file, a
        checksum mismatch; naming the variable: a missing name, a wrong shape.
    """
    if hasattr(checkpoint_prefix, "get_tensor") and hasattr(checkpoint_prefix, "get_variable_to_shape_map"):
        reader, source = checkpoint_prefix, "TF checkpoint reader"
    else:
        reader = TFCheckpoint(checkpoint_prefix)
        source = f"TF checkpoint {reader.prefix!r}"
    shapes = {k: tuple(int(s) for s in v) for k, v in reader.get_variable_to_shape_map().items()}
    rename = _scope_renamer(obj, scope, scope_map)
    _check_scopes(obj, shapes, rename, source)
    tops = {rename(top) for top, _ in _top_scopes(obj)}

    def unexpected(plan):
        if not strict:
            return []
        under_model = [k for k in shapes if any(k.startswith(t + "/") for t in tops)]
        return [k for k in under_model
                if k not in plan and not any(k.startswith(p + "/") for p in plan)]  # slots: '<var>/Adam'

    _restore(obj, shapes, reader.get_tensor, source, rename, unexpected)
    return obj


def save_tf_checkpoint(checkpoint_prefix: _Path, obj: Any, scope: Optional[str] = None,
                       scope_map: Optional[dict[str, str]] = None) -> str:
    """Writes every variable of `obj` as a TF1 checkpoint (`prefix.index` and
    `prefix.data-00000-of-00001`, TensorFlow's V2 format) under TF's names,
    so that TF1 code restores it with tf.train.Saver().restore(sess, prefix).
    Variables keep their dtype (float32 variables restore into float32 TF
    variables).

    Args:
      checkpoint_prefix: the prefix to write ('model.ckpt'); its directory is created.
      obj: a built cell, RNN, Bidirectional, Dense or Sequential.
      scope: optional outer scope ('model' writes 'model/rnn/...').
      scope_map: optional {rnnkit scope: checkpoint scope}, applied before `scope`.
    Returns:
      the prefix.
    """
    for owner_path, owner in _owners(obj):
        if not owner.built:
            raise ValueError(f"cannot save: {_unbuilt_message(owner, owner_path)}")
    rename = _scope_renamer(obj, scope, scope_map)
    return write_tf_checkpoint(checkpoint_prefix, _named(obj, rename))
