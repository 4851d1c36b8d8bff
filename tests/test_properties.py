"""Property-based tests of the public API (hypothesis, fixed seed and budget).

Every call either gives the right result — against the float64 references
of reference.py, or bit for bit against the same call on a C-contiguous copy
of its arrays — or raises a ValueError/TypeError whose message names the
argument that is wrong. Shapes include 0 and 1; arrays come in every memory
layout numpy makes (Fortran order, negative strides, strided views,
read-only); wrong ranks, every wrong dtype, NaN and inf, out-of-range
lengths and token ids, mismatched states and aliased arguments are drawn
alongside. Values come from a numpy generator seeded by hypothesis, which
keeps each example cheap.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reference as ref
import rnnkit

# derandomize: the same examples on every run, so CI is deterministic.
FAST = settings(derandomize=True, max_examples=25, deadline=None)
FEW = settings(derandomize=True, max_examples=10, deadline=None)

FLOATS = (np.float32, np.float64)
LAYOUTS = ("c", "fortran", "reversed", "strided", "readonly")
# Every dtype that is not a float: a TypeError naming the argument.
WRONG_DTYPES = tuple(np.dtype(d) for d in (np.bool_, np.int8, np.uint8, np.int16, np.int32, np.int64, np.uint64,
                                            np.complex64, np.complex128, object, "U3", "datetime64[s]"))
CELLS = {
    "rnn": (rnnkit.BasicRNNCell, ref.basic_rnn_step),
    "lstm": (rnnkit.BasicLSTMCell, ref.lstm_step),
    "gru": (rnnkit.GRUCell, ref.gru_step),
}

dims = st.integers(0, 3)
pos_dims = st.integers(1, 3)
seeds = st.integers(0, 2**32 - 1)


def tolerance(dtype):
    return dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)


def with_layout(a, layout):
    """The values of `a` in another memory layout."""
    a = np.asarray(a)
    if layout == "fortran":
        return np.asfortranarray(a)
    if layout == "reversed" and a.ndim:  # negative strides on every axis
        flip = (slice(None, None, -1),) * a.ndim
        return np.ascontiguousarray(a[flip])[flip]
    if layout == "strided" and a.ndim:  # every other element of a wider array
        wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        wide[..., ::2] = a
        return wide[..., ::2]
    b = a.copy()
    if layout == "readonly":
        b.flags.writeable = False
    return b


def values(seed, shape, dtype, special=None):
    """Uniform values in [-2, 2]; `special` (nan, inf or -inf) at one place."""
    r = np.random.default_rng(seed)
    a = r.uniform(-2, 2, size=shape).astype(dtype)
    if special is not None and a.size:
        a.flat[r.integers(a.size)] = special
    return a


def as_dtype(a, dtype):
    """`a` as `dtype` (strings: "a" everywhere)."""
    return np.full(a.shape, "a", dtype) if dtype.kind == "U" else a.astype(dtype)


def names_argument(excinfo, *names):
    message = str(excinfo.value)
    assert any(n in message for n in names), f"message does not name {names}: {message!r}"


def flat_state(state):
    return tuple(state) if isinstance(state, tuple) else (state,)


def make_cell(kind, units, depth, dtype):
    return CELLS[kind][0](units, input_depth=depth, dtype=dtype, seed=0)


def reference_run(kind, cell, x, lengths, time_major):
    v = {k: a.astype(np.float64) for k, a in cell.variables.items()}
    batch = x.shape[1] if time_major else x.shape[0]
    state = tuple(np.zeros((batch, w)) for w in cell._state_widths())
    step = CELLS[kind][1]
    return ref.dynamic_rnn(lambda xt, s: step(v, xt, s), x.astype(np.float64), state, lengths, time_major)


def assert_same(a, b):
    assert a.shape == b.shape and a.dtype == b.dtype
    assert np.array_equal(a, b, equal_nan=True)


# ---- dynamic_rnn, RNN, Bidirectional -----------------------------------------

@FAST
@given(kind=st.sampled_from(sorted(CELLS)), batch=dims, steps=dims, depth=pos_dims, units=pos_dims,
       dtype=st.sampled_from(FLOATS), layout=st.sampled_from(LAYOUTS), with_lengths=st.booleans(),
       time_major=st.booleans(), seed=seeds)
def test_dynamic_rnn_is_the_reference_in_every_layout(kind, batch, steps, depth, units, dtype, layout,
                                                      with_lengths, time_major, seed):
    x = values(seed, (steps, batch, depth) if time_major else (batch, steps, depth), dtype)
    lengths = np.random.default_rng(seed + 1).integers(0, steps + 1, size=batch) if with_lengths else None
    cell = make_cell(kind, units, depth, dtype)
    out, state = rnnkit.dynamic_rnn(cell, with_layout(x, layout), sequence_length=lengths, time_major=time_major)
    out_c, state_c = rnnkit.dynamic_rnn(cell, x, sequence_length=lengths, time_major=time_major)
    assert_same(out, out_c)
    for a, b in zip(flat_state(state), flat_state(state_c)):
        assert_same(a, b)
    ref_out, ref_state = reference_run(kind, cell, x, lengths, time_major)
    np.testing.assert_allclose(out, ref_out, **tolerance(dtype))
    for a, b in zip(flat_state(state), ref_state):
        np.testing.assert_allclose(a, b, **tolerance(dtype))


@FEW
@given(kind=st.sampled_from(sorted(CELLS)), batch=pos_dims, steps=pos_dims, special=st.sampled_from([np.nan, np.inf, -np.inf]),
       seed=seeds)
def test_dynamic_rnn_nan_and_inf_follow_the_reference(kind, batch, steps, special, seed):
    x = values(seed, (batch, steps, 2), np.float64, special)
    cell = make_cell(kind, 3, 2, np.float64)
    out, _ = rnnkit.dynamic_rnn(cell, x)
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf, inf * 0 in the reference
        ref_out, _ = reference_run(kind, cell, x, None, False)
    np.testing.assert_allclose(out, ref_out, rtol=1e-10, atol=1e-12, equal_nan=True)


@FAST
@given(kind=st.sampled_from(sorted(CELLS)), dtype=st.sampled_from(WRONG_DTYPES), seed=seeds)
def test_dynamic_rnn_rejects_every_wrong_dtype(kind, dtype, seed):
    x = as_dtype(values(seed, (2, 3, 2), np.float64), dtype)
    with pytest.raises(TypeError) as e:
        rnnkit.dynamic_rnn(make_cell(kind, 2, 2, np.float32), x)
    names_argument(e, "inputs")


@FAST
@given(kind=st.sampled_from(sorted(CELLS)), rank=st.sampled_from([0, 1, 2, 4]), seed=seeds)
def test_dynamic_rnn_rejects_wrong_ranks(kind, rank, seed):
    x = values(seed, (2,) * rank, np.float32)
    with pytest.raises(ValueError) as e:
        rnnkit.dynamic_rnn(make_cell(kind, 2, 2, np.float32), x)
    names_argument(e, "inputs")


@FAST
@given(kind=st.sampled_from(sorted(CELLS)), batch=pos_dims, steps=dims,
       bad=st.sampled_from(["negative", "too long", "shape", "float", "rank 2"]), seed=seeds)
def test_out_of_range_sequence_lengths_are_errors(kind, batch, steps, bad, seed):
    x = values(seed, (batch, steps, 2), np.float32)
    lengths = np.random.default_rng(seed).integers(0, steps + 1, size=batch)
    if bad == "negative":
        lengths[-1] = -1
    elif bad == "too long":
        lengths[0] = steps + 1
    elif bad == "shape":
        lengths = np.append(lengths, 0)
    elif bad == "float":
        lengths = lengths.astype(np.float32)
    else:
        lengths = lengths[None]
    with pytest.raises((ValueError, TypeError)) as e:
        rnnkit.dynamic_rnn(make_cell(kind, 2, 2, np.float32), x, sequence_length=lengths)
    names_argument(e, "sequence_length")


@FAST
@given(kind=st.sampled_from(sorted(CELLS)), batch=dims, steps=dims, depth=pos_dims, out_of_range=st.booleans(),
       id_dtype=st.sampled_from([np.int32, np.int64, np.uint8, np.int16]), seed=seeds)
def test_token_ids_are_one_hot_rows_or_an_error(kind, batch, steps, depth, out_of_range, id_dtype, seed):
    ids = np.random.default_rng(seed).integers(0, depth, size=(batch, steps))
    cell = make_cell(kind, 2, depth, np.float32)
    if out_of_range and ids.size:
        ids.flat[seed % ids.size] = depth if seed % 2 or id_dtype == np.uint8 else -1
        with pytest.raises(ValueError) as e:
            rnnkit.dynamic_rnn(cell, ids.astype(id_dtype))
        names_argument(e, "inputs")
        return
    out, _ = rnnkit.dynamic_rnn(cell, ids.astype(id_dtype))
    expected, _ = rnnkit.dynamic_rnn(cell, rnnkit.one_hot(ids, depth))
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)


@FAST
@given(kind=st.sampled_from(sorted(CELLS)), batch=pos_dims,
       bad=st.sampled_from(["batch", "width", "rank", "int", "structure"]), seed=seeds)
def test_mismatched_initial_states_are_errors(kind, batch, bad, seed):
    cell = make_cell(kind, 3, 2, np.float32)
    x = values(seed, (batch, 2, 2), np.float32)
    state = [values(seed, (batch, w), np.float32) for w in cell._state_widths()]
    if bad == "batch":
        state[0] = values(seed, (batch + 1, 3), np.float32)
    elif bad == "width":
        state[-1] = values(seed, (batch, 4), np.float32)
    elif bad == "rank":
        state[0] = state[0][None]
    elif bad == "int":
        state[0] = state[0].astype(np.int32)
    state = cell._pack_state(state)
    if bad == "structure":  # a tuple for a one-array state, one array for an LSTM's pair
        state = (state, state) if not isinstance(state, tuple) else state[0]
    with pytest.raises((ValueError, TypeError)) as e:
        rnnkit.dynamic_rnn(cell, x, initial_state=state)
    names_argument(e, "initial_state")


@FAST
@given(kind=st.sampled_from(sorted(CELLS)), batch=dims, steps=dims, dtype=st.sampled_from(FLOATS),
       layout=st.sampled_from(LAYOUTS), seed=seeds)
def test_rnn_backward_in_every_layout_and_against_float64(kind, batch, steps, dtype, layout, seed):
    units, depth = 2, 3
    x = values(seed, (batch, steps, depth), dtype)
    d_out = values(seed + 1, (batch, steps, units), dtype)
    lengths = np.random.default_rng(seed).integers(0, steps + 1, size=batch)
    cell = make_cell(kind, units, depth, dtype)
    cell64 = make_cell(kind, units, depth, np.float64)
    for name, array in cell.variables.items():
        cell64.variables[name][...] = array
    results = []
    for c, xs, ds in ((cell, with_layout(x, layout), with_layout(d_out, layout)), (cell, x, d_out),
                      (cell64, x.astype(np.float64), d_out.astype(np.float64))):
        layer = rnnkit.RNN(c)
        layer.forward(xs, sequence_length=lengths)
        dx, d_initial = layer.backward(ds)
        results.append([dx, *flat_state(d_initial)] + [c.grads[k].copy() for k in c.variables])
    for a, b in zip(results[0], results[1]):
        assert_same(a, b)
    for a, b in zip(results[1], results[2]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@FAST
@given(kind=st.sampled_from(sorted(CELLS)), batch=pos_dims, seed=seeds)
def test_backward_with_its_own_outputs_as_d_outputs(kind, batch, seed):
    # aliased arguments: d_outputs is the very array forward returned
    cell = make_cell(kind, 2, 2, np.float32)
    x = values(seed, (batch, 3, 2), np.float32)
    grads = []
    for alias in (True, False):
        layer = rnnkit.RNN(cell)
        out, _ = layer.forward(x)
        dx, _ = layer.backward(out if alias else out.copy())
        grads.append([dx] + [cell.grads[k].copy() for k in cell.variables])
    for a, b in zip(*grads):
        assert_same(a, b)


@FAST
@given(kind=st.sampled_from(sorted(CELLS)), batch=pos_dims, steps=pos_dims,
       bad=st.sampled_from(["shape", "rank", "int", "complex"]), seed=seeds)
def test_wrong_d_outputs_are_errors(kind, batch, steps, bad, seed):
    cell = make_cell(kind, 2, 2, np.float32)
    layer = rnnkit.RNN(cell)
    out, _ = layer.forward(values(seed, (batch, steps, 2), np.float32))
    d = {"shape": np.zeros((batch, steps + 1, 2), np.float32), "rank": out[0],
         "int": out.astype(np.int32), "complex": out.astype(np.complex64)}[bad]
    with pytest.raises((ValueError, TypeError)) as e:
        layer.backward(d)
    names_argument(e, "d_outputs")


@FAST
@given(kind=st.sampled_from(sorted(CELLS)), batch=dims, steps=dims, layout=st.sampled_from(LAYOUTS),
       with_lengths=st.booleans(), seed=seeds)
def test_bidirectional_is_two_reference_runs(kind, batch, steps, layout, with_lengths, seed):
    x = values(seed, (batch, steps, 2), np.float64)
    lengths = np.random.default_rng(seed).integers(0, steps + 1, size=batch) if with_lengths else None
    fw, bw = make_cell(kind, 2, 2, np.float64), CELLS[kind][0](2, input_depth=2, dtype=np.float64, seed=1)
    (out_fw, out_bw), _ = rnnkit.bidirectional_dynamic_rnn(fw, bw, with_layout(x, layout), sequence_length=lengths)
    full = np.full(batch, steps) if lengths is None else lengths
    x_rev = x.copy()
    for b in range(batch):
        x_rev[b, :full[b]] = x[b, :full[b]][::-1]
    ref_fw, _ = reference_run(kind, fw, x, lengths, False)
    ref_bw, _ = reference_run(kind, bw, x_rev, lengths, False)
    for b in range(batch):
        ref_bw[b, :full[b]] = ref_bw[b, :full[b]][::-1].copy()
    np.testing.assert_allclose(out_fw, ref_fw, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out_bw, ref_bw, rtol=1e-10, atol=1e-12)


# ---- one step: cell(x, state) --------------------------------------------------

@FAST
@given(kind=st.sampled_from(sorted(CELLS)), batch=dims, dtype=st.sampled_from(FLOATS),
       layout=st.sampled_from(LAYOUTS), seed=seeds)
def test_one_step_is_the_reference_step(kind, batch, dtype, layout, seed):
    cell = make_cell(kind, 3, 2, dtype)
    x = values(seed, (batch, 2), dtype)
    state = [values(seed + 1 + i, (batch, w), dtype) for i, w in enumerate(cell._state_widths())]
    out, new = cell(with_layout(x, layout), cell._pack_state([with_layout(s, layout) for s in state]))
    out_c, new_c = cell(x, cell._pack_state(state))
    assert_same(out, out_c)
    v = {k: a.astype(np.float64) for k, a in cell.variables.items()}
    ref_out, ref_state = CELLS[kind][1](v, x.astype(np.float64), tuple(s.astype(np.float64) for s in state))
    np.testing.assert_allclose(out, ref_out, **tolerance(dtype))
    for a, b in zip(flat_state(new), ref_state):
        np.testing.assert_allclose(a, b, **tolerance(dtype))


@FAST
@given(kind=st.sampled_from(sorted(CELLS)), batch=pos_dims,
       bad=st.sampled_from(["rank 1 float", "depth", "state batch", "bool"]), seed=seeds)
def test_one_step_rejects_what_is_not_one_step(kind, batch, bad, seed):
    cell = make_cell(kind, 3, 2, np.float32)
    x = values(seed, (batch, 2), np.float32)
    state = cell.zero_state(batch)
    names = ("inputs",)
    if bad == "rank 1 float":
        x = x[0]
    elif bad == "depth":
        x = values(seed, (batch, 3), np.float32)
    elif bad == "bool":
        x = x > 0
    else:
        state = cell.zero_state(batch + 1)
        names = ("state",)
    with pytest.raises((ValueError, TypeError)) as e:
        cell(x, state)
    names_argument(e, *names)


# One step takes one step's input (issue 19 item 7).
@pytest.mark.parametrize("x", [np.zeros((1, 2, 2), np.float32), np.zeros((2, 2), np.int32)],
                         ids=["rank 3", "int matrix"])
def test_one_step_rejects_a_sequence(x):
    cell = make_cell("lstm", 3, 2, np.float32)
    with pytest.raises((ValueError, TypeError)) as e:
        cell(x, cell.zero_state(2))
    names_argument(e, "inputs")


# ---- Dense ----------------------------------------------------------------------

@FAST
@given(lead=st.lists(dims, min_size=1, max_size=3), depth=pos_dims, units=pos_dims, dtype=st.sampled_from(FLOATS),
       layout=st.sampled_from(LAYOUTS), seed=seeds)
def test_dense_forward_and_backward_are_the_reference(lead, depth, units, dtype, layout, seed):
    layer = rnnkit.Dense(units, dtype=dtype, input_depth=depth, seed=0)
    layer.variables["bias"][...] = values(seed + 2, (units,), dtype)
    x = values(seed, (*lead, depth), dtype)
    dy = values(seed + 1, (*lead, units), dtype)
    y = layer.forward(with_layout(x, layout))
    dx = layer.backward(with_layout(dy, layout))
    grads = {k: g.copy() for k, g in layer.grads.items()}
    assert_same(layer(x), y)
    kernel, bias = (layer.variables[k].astype(np.float64) for k in ("kernel", "bias"))
    x64, dy64 = x.astype(np.float64), dy.astype(np.float64)
    np.testing.assert_allclose(y, ref.dense(x64, kernel, bias), **tolerance(dtype))
    np.testing.assert_allclose(dx, dy64 @ kernel.T, **tolerance(dtype))
    np.testing.assert_allclose(grads["kernel"], x64.reshape(-1, depth).T @ dy64.reshape(-1, units),
                               **tolerance(dtype))
    np.testing.assert_allclose(grads["bias"], dy64.reshape(-1, units).sum(0), **tolerance(dtype))


@FAST
@given(bad=st.sampled_from(["rank 1", "rank 0", "depth", *WRONG_DTYPES]), seed=seeds)
def test_dense_rejects_wrong_inputs(bad, seed):
    layer = rnnkit.Dense(2, input_depth=3, seed=0)
    x = values(seed, (2, 3), np.float32)
    if bad == "rank 1":
        x = x[0]
    elif bad == "rank 0":
        x = x[0, 0]
    elif bad == "depth":
        x = values(seed, (2, 4), np.float32)
    else:
        x = as_dtype(x, bad)
    with pytest.raises((ValueError, TypeError)) as e:
        layer.forward(x)
    names_argument(e, "x")


# ---- sequence_loss ---------------------------------------------------------------

@FAST
@given(batch=dims, steps=dims, classes=pos_dims, dtype=st.sampled_from(FLOATS), layout=st.sampled_from(LAYOUTS),
       target_dtype=st.sampled_from([np.int32, np.int64, np.uint8]), seed=seeds)
def test_sequence_loss_is_the_reference(batch, steps, classes, dtype, layout, target_dtype, seed):
    logits = values(seed, (batch, steps, classes), dtype)
    r = np.random.default_rng(seed)
    targets = r.integers(0, classes, size=(batch, steps)).astype(target_dtype)
    weights = r.integers(0, 3, size=(batch, steps)).astype(dtype)
    loss = rnnkit.sequence_loss(with_layout(logits, layout), with_layout(targets, layout), with_layout(weights, layout))
    assert np.ndim(loss) == 0 and np.asarray(loss).dtype == dtype
    assert_same(np.asarray(loss), np.asarray(rnnkit.sequence_loss(logits, targets, weights)))
    expected = ref.sequence_loss(logits.astype(np.float64), targets, weights.astype(np.float64))
    np.testing.assert_allclose(loss, expected, **tolerance(dtype))


@FAST
@given(bad=st.sampled_from(["target high", "target negative", "targets shape", "weights shape", "logits rank",
                            "float targets", "int logits", "complex weights"]), seed=seeds)
def test_sequence_loss_rejects_wrong_arguments(bad, seed):
    logits = values(seed, (2, 3, 4), np.float32)
    targets = np.random.default_rng(seed).integers(0, 4, size=(2, 3))
    weights = np.ones((2, 3), np.float32)
    name = {"target high": "targets", "target negative": "targets", "targets shape": "targets",
            "weights shape": "weights", "logits rank": "logits", "float targets": "targets",
            "int logits": "logits", "complex weights": "weights"}[bad]
    if bad == "target high":
        targets[1, 2] = 4
    elif bad == "target negative":
        targets[0, 0] = -1
    elif bad == "targets shape":
        targets = targets[:, :2]
    elif bad == "weights shape":
        weights = weights.T
    elif bad == "logits rank":
        logits = logits[0]
    elif bad == "float targets":
        targets = targets.astype(np.float32)
    elif bad == "int logits":
        logits = logits.astype(np.int32)
    else:
        weights = weights.astype(np.complex64)
    with pytest.raises((ValueError, TypeError)) as e:
        rnnkit.sequence_loss(logits, targets, weights)
    names_argument(e, name)


# ---- optimizers and clip_by_global_norm -------------------------------------------

shapes = st.lists(dims, min_size=1, max_size=3).map(tuple)


@FAST
@given(shape=shapes, dtype=st.sampled_from(FLOATS), layout=st.sampled_from(LAYOUTS), adam=st.booleans(),
       aliased=st.booleans(), seed=seeds)
def test_optimizer_steps_are_the_reference(shape, dtype, layout, adam, aliased, seed):
    var = values(seed, shape, dtype)
    grad = var if aliased else with_layout(values(seed + 1, shape, dtype), layout)
    grad64 = np.array(grad, dtype=np.float64)  # before the step: an aliased gradient is the variable
    start = var.astype(np.float64)
    lr = 0.1
    if adam:
        opt = rnnkit.AdamOptimizer(lr)
        opt.apply_gradients([(grad, var)])
        expected, _, _ = ref.adam_step(start, grad64, 0.0, 0.0, 1, lr, 0.9, 0.999, 1e-8)
    else:
        rnnkit.GradientDescentOptimizer(lr).apply_gradients([(grad, var)])
        expected = start - lr * grad64
    np.testing.assert_allclose(var, expected, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)


@FAST
@given(adam=st.booleans(), bad=st.sampled_from(["shape", "int grad", "complex grad", "float32 grad for float64"]),
       seed=seeds)
def test_optimizers_reject_wrong_gradients(adam, bad, seed):
    var = values(seed, (2, 3), np.float64)
    before = var.copy()
    grad = {"shape": values(seed, (3, 2), np.float64), "int grad": np.ones((2, 3), np.int32),
            "complex grad": np.ones((2, 3), np.complex64),
            "float32 grad for float64": np.ones((2, 3), np.float32)}[bad]
    opt = rnnkit.AdamOptimizer(0.1) if adam else rnnkit.GradientDescentOptimizer(0.1)
    with pytest.raises((ValueError, TypeError)) as e:
        opt.apply_gradients([(grad, var)])
    names_argument(e, "grad")
    assert np.array_equal(var, before)


@FAST
@given(adam=st.booleans(), seed=seeds)
def test_optimizers_refuse_read_only_variables(adam, seed):
    var = values(seed, (2, 3), np.float32)
    var.flags.writeable = False
    opt = rnnkit.AdamOptimizer(0.1) if adam else rnnkit.GradientDescentOptimizer(0.1)
    with pytest.raises((ValueError, TypeError)) as e:
        opt.apply_gradients([(np.ones((2, 3), np.float32), var)])
    names_argument(e, "var")


@FAST
@given(shapes_=st.lists(shapes, min_size=1, max_size=3), dtype=st.sampled_from(FLOATS),
       clip=st.sampled_from([1e-3, 0.5, 1.0, 100.0]), special=st.sampled_from([None, None, np.nan, np.inf]),
       layout=st.sampled_from(LAYOUTS), aliased=st.booleans(), seed=seeds)
def test_clip_by_global_norm_is_the_reference(shapes_, dtype, clip, special, layout, aliased, seed):
    tensors = [values(seed + i, s, dtype, special if i == 0 else None) for i, s in enumerate(shapes_)]
    if aliased:
        tensors.append(tensors[0])
    clipped, norm = rnnkit.clip_by_global_norm([with_layout(t, layout) for t in tensors], clip)
    expected, expected_norm = ref.clip_by_global_norm(tensors, clip)
    tol = tolerance(dtype)
    np.testing.assert_allclose(norm, expected_norm, **tol)
    for got, want, t in zip(clipped, expected, tensors):
        assert got.shape == t.shape and got.dtype == t.dtype
        np.testing.assert_allclose(got, want, equal_nan=True, **tol)


@FAST
@given(bad=st.sampled_from(["clip 0", "clip negative", "clip nan", "int tensor", "complex tensor", "one array"]),
       seed=seeds)
def test_clip_by_global_norm_rejects_wrong_arguments(bad, seed):
    tensors, clip, name = [values(seed, (2, 2), np.float32)], 1.0, "clip_norm"
    if bad == "clip 0":
        clip = 0.0
    elif bad == "clip negative":
        clip = -1.0
    elif bad == "clip nan":
        clip = float("nan")
    elif bad == "int tensor":
        tensors, name = [np.ones((2, 2), np.int32)], "tensors"
    elif bad == "complex tensor":
        tensors, name = [np.ones((2, 2), np.complex64)], "tensors"
    else:
        tensors, name = tensors[0], "tensors"
    with pytest.raises((ValueError, TypeError)) as e:
        rnnkit.clip_by_global_norm(tensors, clip)
    names_argument(e, name)


# ---- one_hot -----------------------------------------------------------------------

@FAST
@given(shape=st.lists(dims, min_size=1, max_size=3).map(tuple), depth=pos_dims,
       id_dtype=st.sampled_from([np.int32, np.int64, np.uint8, np.int8]), out_of_range=st.booleans(),
       dtype=st.sampled_from(FLOATS), layout=st.sampled_from(LAYOUTS), seed=seeds)
def test_one_hot_is_the_reference_or_an_error(shape, depth, id_dtype, out_of_range, dtype, layout, seed):
    ids = np.random.default_rng(seed).integers(0, depth, size=shape)
    if out_of_range and ids.size:
        ids.flat[seed % ids.size] = depth if seed % 2 or id_dtype == np.uint8 else -1
        with pytest.raises(ValueError) as e:
            rnnkit.one_hot(with_layout(ids.astype(id_dtype), layout), depth, dtype=dtype)
        names_argument(e, "ids")
        return
    out = rnnkit.one_hot(with_layout(ids.astype(id_dtype), layout), depth, dtype=dtype)
    assert out.dtype == dtype
    assert_same(out, np.eye(depth, dtype=dtype)[ids])


@FAST
@given(bad=st.sampled_from(["depth 0", "depth float", "depth bool", *WRONG_DTYPES]))
def test_one_hot_rejects_wrong_arguments(bad):
    ids, depth, name = np.array([0, 1]), 3, "ids"
    if isinstance(bad, str):
        depth, name = {"depth 0": 0, "depth float": 3.0, "depth bool": True}[bad], "depth"
    elif bad.kind in "iu":
        return  # integer ids: the right result (test_one_hot_is_the_reference_or_an_error)
    else:
        ids = as_dtype(ids, bad)
    with pytest.raises((ValueError, TypeError)) as e:
        rnnkit.one_hot(ids, depth)
    names_argument(e, name)


# 0-d arrays stay 0-d (issue 19 item 9).
def test_one_hot_of_a_scalar_id_is_one_row():
    assert_same(rnnkit.one_hot(np.int64(2), 4), np.eye(4, dtype=np.float32)[2])


def test_clip_by_global_norm_keeps_a_scalar_a_scalar():
    clipped, norm = rnnkit.clip_by_global_norm([np.array(3.0)], 1.0)
    assert clipped[0].shape == () and clipped[0] == 1.0 and norm == 3.0


@pytest.mark.parametrize("adam", [False, True])
def test_optimizers_step_a_scalar_variable(adam):
    var = np.array(2.0)
    opt = rnnkit.AdamOptimizer(0.1) if adam else rnnkit.GradientDescentOptimizer(0.1)
    opt.apply_gradients([(np.array(1.0), var)])
    assert var.shape == () and np.isclose(var, 1.9)
