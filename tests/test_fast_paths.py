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
    # 1 somewhere and a second non-zero, a single 2 or a single -1: not one-hot.
    cell = rnnkit.BasicLSTMCell(5, input_depth=4, dtype=np.float64, seed=3)
    step = functools.partial(ref.lstm_step, dict(cell.variables))
    for row in ([1.0, 0.0, 0.5, 0.0], [0.0, 2.0, 0.0, 0.0], [0.0, -1.0, 0.0, 0.0]):
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
