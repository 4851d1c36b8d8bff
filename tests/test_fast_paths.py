"""Shortcuts that must not change results: one-hot float inputs taken as token
ids, skipping the input gradient nobody asked for, and the few-row
matrix-vector path of single steps."""

import functools

import numpy as np
import pytest

import rnnkit
from rnnkit import _core
from helpers import assert_close, cell_makers, rng
import reference as ref

MAKERS = cell_makers(units=6, depth=9)


def training_pass(cell, x, lengths, input_grad=True):
    layer = rnnkit.RNN(cell)
    out, _ = layer.forward(x, sequence_length=lengths)
    dx, _ = layer.backward(np.sin(out), input_grad=input_grad)
    return out, dx, {k: g.copy() for k, g in cell.grads.items()}


@pytest.mark.parametrize("name", list(MAKERS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_hot_floats_match_the_dense_product(name, dtype):
    # The same one-hot rows, once alone (taken as ids) and once beside an
    # all-zero sequence of length 0, which makes the input not one-hot (a
    # dense product) without touching the gradients.
    ids = rng(0).integers(0, 9, size=(2, 5))
    hot = rnnkit.one_hot(ids, 9, dtype=dtype)
    dense = np.concatenate([hot, np.zeros((1, 5, 9), dtype)])
    cell = MAKERS[name](dtype)
    out_hot, dx_hot, g_hot = training_pass(cell, hot, np.array([5, 3]))
    out_dense, dx_dense, g_dense = training_pass(cell, dense, np.array([5, 3, 0]))
    assert dx_hot is not None and dx_hot.shape == hot.shape  # floats keep their gradient
    assert_close(out_hot, out_dense[:2], dtype)
    assert_close(dx_hot, dx_dense[:2], dtype)
    assert not np.any(dx_hot[1, 3:])  # past the length
    for k in cell.variables:
        assert_close(g_hot[k], g_dense[k], dtype)


def test_almost_one_hot_rows_stay_dense():
    # 1 somewhere and a second non-zero, a single 2 or a single -1, two 1s,
    # no non-zero at all, a lone NaN: not one-hot.
    cell = rnnkit.BasicLSTMCell(5, input_depth=4, dtype=np.float64, seed=3)
    step = functools.partial(ref.lstm_step, dict(cell.variables))
    for row in ([1.0, 0.0, 0.5, 0.0], [0.0, 2.0, 0.0, 0.0], [0.0, -1.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0],
                [0.0, 0.0, 0.0, 0.0], [0.0, np.nan, 0.0, 0.0]):
        x = np.zeros((1, 2, 4))
        x[0, 0, 1] = 1.0
        x[0, 1] = row
        out, _ = rnnkit.dynamic_rnn(cell, x)
        ref_out, _ = ref.dynamic_rnn(step, x, (np.zeros((1, 5)),) * 2)
        assert_close(out, ref_out)


@pytest.mark.parametrize("name", list(MAKERS))
def test_input_grad_false_skips_only_dx(name):
    x = rng(2).normal(size=(3, 4, 9)).astype(np.float32)
    lengths = np.array([4, 1, 3])
    cell = MAKERS[name](np.float32)
    out_a, dx_a, g_a = training_pass(cell, x, lengths)
    out_b, dx_b, g_b = training_pass(cell, x, lengths, input_grad=False)
    assert dx_a is not None and dx_b is None
    assert np.array_equal(out_a, out_b)
    for k in cell.variables:
        assert np.array_equal(g_a[k], g_b[k])


@pytest.mark.parametrize("make", [
    lambda: rnnkit.MultiRNNCell([rnnkit.BasicLSTMCell(5, input_depth=9, seed=1), rnnkit.GRUCell(5, seed=2)]),
    lambda: rnnkit.ResidualWrapper(rnnkit.BasicRNNCell(9, input_depth=9, seed=1)),
    lambda: rnnkit.DropoutWrapper(rnnkit.BasicLSTMCell(5, input_depth=9, seed=1), input_keep_prob=0.7,
                                  output_keep_prob=0.8, seed=4),
])
def test_input_grad_false_through_stacks_and_wrappers(make):
    x = rng(3).normal(size=(2, 4, 9)).astype(np.float32)
    results = []
    for input_grad in (True, False):
        cell = make()
        layer = rnnkit.RNN(cell)
        out, _ = layer.forward(x, training=True)
        dx, _ = layer.backward(np.cos(out), input_grad=input_grad)
        results.append((out, dx, {k: g.copy() for k, g in cell.grads.items()}))
    (out_a, dx_a, g_a), (out_b, dx_b, g_b) = results
    assert dx_a is not None and dx_a.shape == x.shape and dx_b is None
    assert np.array_equal(out_a, out_b)
    assert g_a.keys() == g_b.keys() and g_a
    for k in g_a:
        assert np.array_equal(g_a[k], g_b[k]), k


def test_bidirectional_and_sequential_input_grad():
    x = rng(4).normal(size=(2, 3, 4)).astype(np.float32)
    bi = rnnkit.Bidirectional(rnnkit.GRUCell(3, input_depth=4, seed=1), rnnkit.BasicLSTMCell(3, input_depth=4, seed=2))
    (fw, bw), _ = bi.forward(x)
    assert bi.backward((fw, bw)).shape == x.shape
    bi.forward(x)
    assert bi.backward((fw, bw), input_grad=False) is None

    model = rnnkit.Sequential([rnnkit.RNN(rnnkit.BasicLSTMCell(5, input_depth=4, seed=3)), rnnkit.Dense(4)])
    logits = model.forward(x)
    assert model.backward(np.ones_like(logits)).shape == x.shape
    model.forward(x)
    assert model.backward(np.ones_like(logits), input_grad=False) is None


@pytest.mark.parametrize("batch", [1, 3])
def test_single_steps_give_the_bits_of_the_sequence(batch, restore_threads):
    # Single steps multiply by W_h in place (few rows, columns split over
    # threads); a sequence multiplies by a packed copy. Same sums, same bits,
    # with any number of threads.
    H, C, T = 256, 65, 20
    cell = rnnkit.BasicLSTMCell(H, input_depth=C, seed=5)
    cell.variables["bias"] = rng(6).normal(size=4 * H).astype(np.float32) * 0.1
    ids = rng(7).integers(0, C, size=(batch, T)).astype(np.int32)
    steps = {}
    for n in (1, 2):
        rnnkit.set_num_threads(n)
        state, outs = cell.zero_state(batch), []
        for t in range(T):
            h, state = cell(ids[:, t], state)
            outs.append(h)
        steps[n] = np.stack(outs, axis=1)
    assert np.array_equal(steps[1], steps[2])
    whole, _ = rnnkit.dynamic_rnn(cell, ids)
    assert_close(steps[1], whole)
    if "AVX512" in _core.simd:  # both are the AVX-512 kernels' in-order sums
        assert np.array_equal(steps[1], whole)


# ---- cell(x, state): ready arrays go straight to the kernel ------------------------------------
STEP_MAKERS = dict(MAKERS, multi=lambda dt: rnnkit.MultiRNNCell(
    [rnnkit.BasicLSTMCell(6, input_depth=9, dtype=dt, seed=1), rnnkit.GRUCell(5, dtype=dt, seed=2)]))


def flat_arrays(state):
    if isinstance(state, tuple):
        return [a for s in state for a in flat_arrays(s)]
    return [state]


def state_like(state, convert):
    if isinstance(state, tuple):
        parts = tuple(state_like(s, convert) for s in state)
        return type(state)(*parts) if hasattr(state, "_fields") else parts
    return convert(state)


@pytest.mark.parametrize("name", list(STEP_MAKERS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_step_from_ready_arrays_equals_a_step_from_converted_ones(name, dtype):
    # The same step four ways: ready arrays (straight to the kernel), a list
    # and arrays of the other dtype (converted first), and a one-step sequence.
    cell = STEP_MAKERS[name](dtype)
    # float32 values, so that either dtype holds them exactly
    x = rng(8).normal(size=(3, 9)).astype(np.float32).astype(dtype)
    state = state_like(cell.zero_state(3), lambda a: rng(9).normal(size=a.shape).astype(np.float32).astype(dtype))
    other = np.float32 if dtype == np.float64 else np.float64
    out, new = cell(x, state)
    out_list, new_list = cell(x.tolist(), state)
    out_other, new_other = cell(x.astype(other), state_like(state, lambda a: a.astype(other)))
    seq_out, seq_final = rnnkit.dynamic_rnn(cell, x[:, None], initial_state=state)
    assert out.shape == (3, cell.output_size) and out.dtype == dtype
    assert type(new) is type(state)
    for o in (out_list, out_other, seq_out[:, 0]):
        assert np.array_equal(out, o)
    for n in (new_list, new_other, seq_final):
        for a, b in zip(flat_arrays(new), flat_arrays(n)):
            assert a.dtype == dtype and np.array_equal(a, b)


@pytest.mark.parametrize("name", list(STEP_MAKERS))
def test_ready_arrays_skip_the_conversions(name, monkeypatch):
    # Ready inputs and state reach the kernel without _flatten_state (the
    # converting path); anything else still goes through it.
    cell = STEP_MAKERS[name](np.float32)
    state = cell.zero_state(2)
    out, _ = cell(np.ones((2, 9), np.float32), state)

    def refuse(*args, **kwargs):
        raise AssertionError("converted")

    monkeypatch.setattr(cell, "_flatten_state", refuse)
    assert np.array_equal(cell(np.ones((2, 9), np.float32), state)[0], out)
    assert cell(np.array([0, 1], np.int32), state)[0].shape == out.shape
    with pytest.raises(AssertionError, match="converted"):
        cell(np.ones((2, 9)), state)  # float64: converted first


@pytest.mark.parametrize("name", list(STEP_MAKERS))
def test_a_step_from_int32_ids_equals_one_hot_rows(name):
    cell = STEP_MAKERS[name](np.float32)
    ids = np.array([4, 0, 8], np.int32)
    state = cell.zero_state(3)
    out_ids, new_ids = cell(ids, state)
    out_int64, _ = cell(ids.astype(np.int64), state)  # converted first
    out_hot, new_hot = cell(rnnkit.one_hot(ids, 9), state)
    assert np.array_equal(out_ids, out_hot) and np.array_equal(out_ids, out_int64)
    for a, b in zip(flat_arrays(new_ids), flat_arrays(new_hot)):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("name", list(STEP_MAKERS))
def test_a_step_with_bad_arrays_says_what_is_wrong(name):
    cell = STEP_MAKERS[name](np.float32)
    state = cell.zero_state(2)
    with pytest.raises(ValueError, match=r"inputs.*depth 9.*got 7"):
        cell(np.zeros((2, 7), np.float32), state)
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 9\)"):
        cell(np.array([1, 9], np.int32), state)
    wrong_batch = state_like(state, lambda a: np.zeros((3, a.shape[1]), np.float32))
    with pytest.raises(ValueError, match=r"state.*\[2, \d+\].*got \[3, \d+\]"):
        cell(np.zeros((2, 9), np.float32), wrong_batch)
    with pytest.raises(TypeError, match="state"):
        cell(np.zeros((2, 9), np.float32), [flat_arrays(state)])


@pytest.mark.parametrize("name", list(MAKERS))
def test_a_step_sees_assigned_variables(name):
    # The kernels take the variables as a tuple made once; assignment copies
    # into those arrays, so the next step (and a training pass) uses the new
    # values, as a cell seeded with them from the start does.
    cell, other = MAKERS[name](np.float32), MAKERS[name](np.float32)
    x = rng(15).normal(size=(2, 9)).astype(np.float32)
    state = cell.zero_state(2)
    cell(x, state)
    training_pass(cell, x[:, None], None)
    for i, (k, v) in enumerate(cell.variables.items()):
        other.variables[k] = cell.variables[k] = rng(16 + i).normal(size=v.shape).astype(np.float32)
    assert np.array_equal(cell(x, state)[0], other(x, state)[0])
    for a, b in zip(training_pass(cell, x[:, None], None)[2].values(), training_pass(other, x[:, None], None)[2].values()):
        assert np.array_equal(a, b)


def test_lstm_state_forms_on_the_direct_path():
    cell = rnnkit.BasicLSTMCell(4, input_depth=3, seed=1)
    x = rng(10).normal(size=(2, 3)).astype(np.float32)
    c, h = (rng(11).normal(size=(2, 4)).astype(np.float32) for _ in range(2))
    out_tuple, s_tuple = cell(x, rnnkit.LSTMStateTuple(c, h))
    out_plain, s_plain = cell(x, (c, h))  # a plain (c, h) tuple is an LSTM state too
    assert np.array_equal(out_tuple, out_plain) and type(s_plain) is rnnkit.LSTMStateTuple
    with pytest.raises(TypeError, match="LSTMStateTuple"):
        cell(x, (c, h, h))
    flat = rnnkit.BasicLSTMCell(4, state_is_tuple=False, input_depth=3, seed=1)
    out_flat, s_flat = flat(x, np.concatenate([c, h], axis=1))
    assert np.array_equal(out_flat, out_tuple) and s_flat.shape == (2, 8)


def test_kernel_takes_one_step_without_a_time_axis():
    cell = rnnkit.BasicLSTMCell(5, input_depth=3, seed=1)
    x = rng(12).normal(size=(2, 3)).astype(np.float32)
    c, m = cell.zero_state(2)
    v, o = cell._kernel_variables(), cell._kernel_options()
    out2, c2, m2 = _core.lstm_forward(x, *v, c, m, None, False, *o, None, None)
    out3, c3, m3 = _core.lstm_forward(x[:, None], *v, c, m, None, False, *o, None, None)
    assert out2.shape == (2, 5) and np.array_equal(out2, out3[:, 0]) and np.array_equal(c2, c3)
    with pytest.raises(ValueError, match=r"rank 3 \[B, T, D\] \(or rank 2 \[B, D\] for one step\)"):
        _core.lstm_forward(x[None, None], *v, c, m, None, False, *o, None, None)


@pytest.mark.parametrize("units", [1, 17, 65, 300])
def test_dense_on_ready_and_converted_inputs(units, restore_threads):
    dense = rnnkit.Dense(units, input_depth=256, seed=3)
    dense.variables["bias"] = rng(13).normal(size=units).astype(np.float32)
    h = rng(14).normal(size=(2, 256)).astype(np.float32)
    y = dense(h)
    assert np.array_equal(y, dense(h.astype(np.float64)))  # converted first
    assert np.array_equal(y, dense(np.asfortranarray(h)))  # made contiguous first
    assert_close(y, h.astype(np.float64) @ dense.variables["kernel"] + dense.variables["bias"], np.float32)
    rnnkit.set_num_threads(1)
    assert np.array_equal(y, dense(h))
    with pytest.raises(ValueError, match=r"x must have depth 256.*got 255"):
        dense(np.zeros((2, 255), np.float32))
    with pytest.raises(ValueError, match=r"rank >= 2"):
        dense(np.zeros(256, np.float32))


def test_results_of_several_rows_start_on_a_cache_line():
    # Threads split such arrays by rows, so they start on a 64-byte line;
    # a single row is a plain numpy array (no padded view), and a Dense head
    # sees its kernel's new values after an assignment (its cached pair is live).
    cell = rnnkit.BasicLSTMCell(24, input_depth=9, seed=1)
    dense = rnnkit.Dense(7, input_depth=24, seed=2)
    line = lambda a: a.ctypes.data % 64 == 0
    for _ in range(4):  # a misaligned result would show within a few allocations
        out, (c, h) = cell(np.ones((3, 9), np.float32), cell.zero_state(3))
        assert line(out) and line(c) and line(h) and line(dense(out))
        out1, (c1, h1) = cell(np.ones((1, 9), np.float32), cell.zero_state(1))
        assert all(a.base is None for a in (out1, c1, h1, dense(out1)))
    dense.variables["kernel"] = np.zeros((24, 7), np.float32)
    assert np.array_equal(dense(out1), np.broadcast_to(dense.variables["bias"], (1, 7)))


@pytest.mark.parametrize("name", list(MAKERS))
def test_backward_reuses_the_ids_forward_found(name):
    # forward records the ids of one-hot float inputs, backward reads them
    # instead of scanning x again; they are checked like any ids.
    cell = MAKERS[name](np.float32)
    layer = rnnkit.RNN(cell)
    hot = rnnkit.one_hot(rng(15).integers(0, 9, size=(2, 3)), 9)
    out, _ = layer.forward(hot)
    assert np.array_equal(layer._tape["x_ids"], np.argmax(hot, axis=2).ravel())
    layer.backward(np.ones_like(out))
    layer.forward(rng(16).normal(size=(2, 3, 9)).astype(np.float32))
    assert layer._tape["x_ids"] is None
    layer.forward(hot)
    layer._tape["x_ids"] = np.full(6, 9, np.int32)
    with pytest.raises(ValueError, match=r"tape x_ids token ids must lie in \[0, 9\), got 9"):
        layer.backward(np.ones_like(out))
