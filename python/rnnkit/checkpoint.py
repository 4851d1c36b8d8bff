"""Save and load variables under TF1's full checkpoint names.

The file format is a plain `.npz` whose keys are the names TF1 gives the same
variables in a checkpoint, so a TF1 model's weights can be exported with
numpy alone and a saved rnnkit model can be read back into TF1:

    cell alone or in RNN      rnn/<cell scope>/<name>     rnn/basic_lstm_cell/kernel
    MultiRNNCell              rnn/multi_rnn_cell/cell_0/gru_cell/gates/kernel
    Bidirectional             bidirectional_rnn/fw/<cell scope>/<name>, bidirectional_rnn/bw/...
    Dense                     dense/kernel, dense/bias

In a `Sequential`, layers of the same kind get TF's uniquified scopes in
order: `rnn`, `rnn_1`, ...; `dense`, `dense_1`, ...; `bidirectional_rnn`,
`bidirectional_rnn_1`, ... A `scope_map` renames scopes where the TF model
used its own (`{"rnn": "encoder/rnn", "dense": "softmax"}`).

Loading is all-or-nothing: every name and shape is checked before any
variable is written. An unbuilt cell or Dense is built from the input depth
that the file's kernel shape implies (the kernel's rows minus the recurrent
width for a cell; the rows for Dense).
"""

import copy
import os

import numpy as np

from ._checks import shape_str
from .bidirectional import Bidirectional
from .cells.base import RNNCell
from .cells.multi import MultiRNNCell
from .layers import Dense
from .rnn import RNN
from .sequential import Sequential
from .tf_checkpoint import TFCheckpoint, write_tf_checkpoint

__all__ = ["save", "load", "load_tf_checkpoint", "save_tf_checkpoint", "checkpoint_names"]

_SUPPORTED = "an rnnkit cell, RNN, Bidirectional, Dense or Sequential"


# ---- names ------------------------------------------------------------------------
def _base_scope(obj):
    """TF's default top-level scope for `obj`, or None for a layer without variables."""
    if isinstance(obj, (RNNCell, RNN)):
        return "rnn"  # tf.nn.dynamic_rnn's default scope
    if isinstance(obj, Bidirectional):
        return Bidirectional.scope_name  # tf.nn.bidirectional_dynamic_rnn's
    if isinstance(obj, Dense):
        return "dense"  # tf.layers.dense's
    variables = getattr(obj, "variables", None)
    if variables is not None and hasattr(variables, "__len__") and len(variables) == 0:
        return None
    raise TypeError(f"save/load take {_SUPPORTED}, got {type(obj).__name__}")


def _top_scopes(obj):
    """[(top-level scope, object)] in order; a Sequential's scopes uniquified as TF does."""
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


def checkpoint_names(obj, scope_map=None):
    """{TF1 checkpoint name: live variable array} for every variable of `obj`.

    Args:
      obj: a cell, RNN, Bidirectional, Dense or Sequential. Parts that are not
        built yet have no variables and contribute no names.
      scope_map: optional {rnnkit scope: checkpoint scope}, e.g. {"rnn": "encoder"}.
    Returns:
      a dict in variable order; writing into its arrays changes the model.
    """
    return _named(obj, _renamer(obj, scope_map))


def _named(obj, rename):
    return {rename(f"{path}/{name}"): array for path, owner in _owners(obj) for name, array in owner.variables.items()}


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
    if isinstance(obj, Sequential):
        _check_chain(obj, built_here, rename, source)
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


def _check_chain(model, built_here, rename, source):
    """In a Sequential, a layer built from the file must read what the layer before it writes."""
    scopes = dict((id(layer), scope) for scope, layer in _top_scopes(model))
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


def _restore(obj, shapes, read, source, rename, unexpected):
    """Checks every name, shape and dtype, then copies into the live variables.

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
    values = {}
    for key, array in plan.items():
        value = np.asarray(read(key))
        if value.dtype.kind != "f":
            raise TypeError(f"{source}: '{key}' has dtype {value.dtype}, expected a float array")
        if value.shape != array.shape:  # a reader whose shape map disagrees with its tensors
            raise ValueError(f"{source}: '{key}' has shape {shape_str(value.shape)}, expected {shape_str(array.shape)}")
        values[key] = value

    if needs_build:
        _build_from(obj, shapes, rename, source)
    live = _named(obj, rename)
    for key, value in values.items():
        np.copyto(live[key], value, casting="same_kind")  # float64 <-> float32 by rounding


def _strict_extras(strict, keys):
    def unexpected(plan):
        return [k for k in keys if k not in plan] if strict else []
    return unexpected


# ---- public API -------------------------------------------------------------------------------
def save(path, obj, scope_map=None):
    """Writes every variable of `obj` to an `.npz` keyed by TF1's checkpoint names.

    Args:
      path: a file name (numpy appends '.npz' when it has no such suffix) or
        a writable binary file object.
      obj: a built cell, RNN, Bidirectional, Dense or Sequential.
      scope_map: optional {rnnkit scope: checkpoint scope}, e.g. {"rnn": "encoder"}.
    Returns:
      the file name written (with '.npz'), or None for a file object.
    """
    for owner_path, owner in _owners(obj):
        if not owner.built:
            raise ValueError(f"cannot save: {_unbuilt_message(owner, owner_path)}")
    names = checkpoint_names(obj, scope_map)
    np.savez(path, **{k: np.asarray(v) for k, v in names.items()})
    if isinstance(path, (str, os.PathLike)):
        name = os.fspath(path)
        return name if name.endswith(".npz") else name + ".npz"
    return None


def load(path, obj, strict=True, scope_map=None):
    """Reads variables saved by `save` (or any `.npz` keyed by TF1 names) into `obj`.

    Every variable of `obj` must be in the file with its exact shape; values
    are converted to the variable's dtype. Nothing is written unless the whole
    file fits. Unbuilt cells and Dense layers are built from the input depth
    the file's kernel shapes imply.

    Args:
      path: an `.npz` file name or a readable binary file object.
      obj: a cell, RNN, Bidirectional, Dense or Sequential.
      strict: when True, keys in the file that `obj` does not have are an error.
      scope_map: optional {rnnkit scope: checkpoint scope}.
    Returns:
      obj.
    Raises:
      ValueError naming the key: a missing key, a wrong shape, an extra key.
      TypeError: a non-float array in the file, or an unsupported `obj`.
    """
    source = f"checkpoint {os.fspath(path)!r}" if isinstance(path, (str, os.PathLike)) else "checkpoint file"
    with np.load(path, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    rename = _renamer(obj, scope_map)
    shapes = {k: a.shape for k, a in arrays.items()}
    _restore(obj, shapes, arrays.__getitem__, source, rename, _strict_extras(strict, arrays))
    return obj


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
    hint = f"; they are there under an outer scope: pass scope={outers[0]!r}" if outers else ""
    raise ValueError(f"{source} has no variables under the model's {_quoted(missing)} "
                     f"(the checkpoint's names that match none of the model's scopes: "
                     f"{_quoted(unmatched) if unmatched else 'none'}){hint}")


def load_tf_checkpoint(checkpoint_prefix, obj, scope=None, strict=True, scope_map=None):
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


def save_tf_checkpoint(checkpoint_prefix, obj, scope=None, scope_map=None):
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
