"""Empty work returns at once: sequences with no rows or no steps, losses
and layers with a zero-size axis. Results have the right shapes; a sequence
with no steps gives its initial state as the final state, and backward
passes the final state's gradient to the initial state; every other
gradient of empty work is zero.

Each call below would walk 10**8 steps or rows of nothing (seconds) if it
ran the kernels' loops; the tests ask for well under a second."""

import time

import numpy as np
import pytest

import rnnkit
from helpers import cell_makers, rng

N = 10**8  # the long axis of work that is empty all the same
D, H = 3, 4
MAKERS = dict(
    cell_makers(units=H, depth=D),
    multi=lambda dt: rnnkit.MultiRNNCell([rnnkit.GRUCell(H, input_depth=D, dtype=dt, seed=1),
                                          rnnkit.BasicLSTMCell(H, dtype=dt, seed=2)]),
    residual=lambda dt: rnnkit.ResidualWrapper(rnnkit.BasicLSTMCell(D, input_depth=D, dtype=dt, seed=1)),
    dropout=lambda dt: rnnkit.DropoutWrapper(rnnkit.GRUCell(H, input_depth=D, dtype=dt, seed=1),
                                             input_keep_prob=0.5, output_keep_prob=0.5, state_keep_prob=0.5, seed=3),
)


def quickly(call, *args, **kwargs):
    """call(*args, **kwargs), which must return within a second."""
    start = time.perf_counter()
    result = call(*args, **kwargs)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"empty work took {elapsed:.2f} s"
    return result


def flat(tree):
    if isinstance(tree, (tuple, list)):
        return [a for t in tree for a in flat(t)]
    return [tree]


def random_state(cell, batch, seed=0):
    r = rng(seed)
    return cell._pack_state([r.normal(size=(batch, w)).astype(cell.dtype) for w in cell._state_widths()])


def empty_inputs(batch, steps, time_major=False, ids=False, depth=D):
    shape = (steps, batch) if time_major else (batch, steps)
    return np.zeros(shape, np.int32) if ids else np.zeros(shape + (depth,), np.float32)


@pytest.mark.parametrize("time_major", [False, True])
@pytest.mark.parametrize("name", sorted(MAKERS))
def test_dynamic_rnn_over_no_rows(name, time_major):
    cell = MAKERS[name](np.float32)
    x = empty_inputs(0, N, time_major)
    outputs, state = quickly(rnnkit.dynamic_rnn, cell, x, time_major=time_major)
    assert outputs.shape == x.shape[:2] + (cell.output_size,) and outputs.dtype == np.float32
    assert [a.shape for a in flat(state)] == [(0, w) for w in cell._state_widths()]


@pytest.mark.parametrize("time_major", [False, True])
@pytest.mark.parametrize("name", sorted(MAKERS))
def test_no_steps_give_the_initial_state(name, time_major):
    cell = MAKERS[name](np.float32)
    initial = random_state(cell, 3)
    x = empty_inputs(3, 0, time_major)
    outputs, state = quickly(rnnkit.dynamic_rnn, cell, x, initial_state=initial, time_major=time_major,
                             sequence_length=[0, 0, 0])
    assert outputs.shape == x.shape[:2] + (cell.output_size,)
    for got, want in zip(flat(state), flat(initial)):
        np.testing.assert_array_equal(got, want)
        assert got is not want  # a new array, as every other run returns


@pytest.mark.parametrize("ids", [False, True])
@pytest.mark.parametrize("name", ["lstm", "gru", "multi", "dropout"])
def test_token_ids_over_no_rows(name, ids):
    cell = MAKERS[name](np.float32)
    outputs, state = quickly(rnnkit.dynamic_rnn, cell, empty_inputs(0, N, ids=ids))
    assert outputs.shape == (0, N, cell.output_size)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(MAKERS))
@pytest.mark.parametrize("batch, steps", [(0, N), (3, 0)])
def test_training_over_empty_sequences(name, dtype, batch, steps):
    cell = MAKERS[name](dtype)
    layer = rnnkit.RNN(cell)
    x = empty_inputs(batch, steps).astype(dtype)
    initial = random_state(cell, batch)
    outputs, state = quickly(layer.forward, x, initial_state=initial, training=True)
    assert outputs.shape == (batch, steps, cell.output_size) and outputs.dtype == dtype
    d_final = random_state(cell, batch, seed=1)
    dx, d_initial = quickly(layer.backward, np.zeros_like(outputs), d_final)
    assert dx.shape == x.shape and dx.dtype == dtype
    # the final state is the initial state: its gradient passes through unchanged
    for got, want in zip(flat(d_initial), flat(d_final)):
        np.testing.assert_array_equal(got, want)
    assert list(cell.grads) == list(cell.variables)
    for key, grad in cell.grads.items():
        assert grad.shape == cell.variables[key].shape and grad.dtype == dtype
        assert not grad.any(), key


def test_training_after_empty_work_is_unchanged():
    """A layer that ran empty work trains on the next batch as a fresh one does."""
    x = rng(1).normal(size=(2, 5, D)).astype(np.float32)
    results = []
    for warm_up in (False, True):
        layer = rnnkit.RNN(MAKERS["lstm"](np.float32))
        if warm_up:
            out, _ = layer.forward(empty_inputs(0, 7))
            layer.backward(out)
        out, _ = layer.forward(x)
        dx, _ = layer.backward(np.ones_like(out))
        results.append((out, dx, dict(layer.grads)))
    (out_a, dx_a, g_a), (out_b, dx_b, g_b) = results
    np.testing.assert_array_equal(out_a, out_b)
    np.testing.assert_array_equal(dx_a, dx_b)
    for key in g_a:
        np.testing.assert_array_equal(g_a[key], g_b[key])


def test_token_ids_training_over_no_rows():
    layer = rnnkit.RNN(MAKERS["gru"](np.float32))
    outputs, _ = quickly(layer.forward, empty_inputs(0, N, ids=True))
    dx, d_initial = quickly(layer.backward, outputs)
    assert dx is None and d_initial.shape == (0, H)


@pytest.mark.parametrize("batch, steps", [(0, N), (3, 0)])
def test_bidirectional_over_empty_sequences(batch, steps):
    layer = rnnkit.Bidirectional(MAKERS["gru"](np.float32), MAKERS["lstm"](np.float32))
    x = empty_inputs(batch, steps)
    (out_fw, out_bw), _ = quickly(rnnkit.bidirectional_dynamic_rnn, *layer.cells, x)
    assert out_fw.shape == out_bw.shape == (batch, steps, H)
    (out_fw, out_bw), (state_fw, state_bw) = quickly(layer.forward, x)
    assert state_fw.shape == (batch, H) and state_bw.c.shape == (batch, H)
    dx = quickly(layer.backward, (out_fw, out_bw))
    assert dx.shape == x.shape
    assert all(not g.any() for g in layer.grads.values())


def test_dense_over_no_rows():
    layer = rnnkit.Dense(5, input_depth=D)
    y = quickly(layer.forward, np.zeros((0, N, D), np.float32))
    assert y.shape == (0, N, 5)
    dx = quickly(layer.backward, y)
    assert dx.shape == (0, N, D)
    assert layer.grads["kernel"].shape == (D, 5) and not layer.grads["kernel"].any() and not layer.grads["bias"].any()


FLAGS = {  # (average_across_timesteps, average_across_batch, sum_over_timesteps, sum_over_batch): loss shape
    (True, True, False, False): lambda b, t: (),
    (False, False, True, True): lambda b, t: (),
    (True, False, False, False): lambda b, t: (b,),
    (False, True, False, False): lambda b, t: (t,),
    (False, False, True, False): lambda b, t: (b,),
    (False, False, False, True): lambda b, t: (t,),
    (False, False, False, False): lambda b, t: (b, t),
}


@pytest.mark.parametrize("flags", list(FLAGS))
@pytest.mark.parametrize("batch, steps", [(0, 6), (4, 0), (0, 0)])
def test_sequence_loss_over_empty_positions(flags, batch, steps):
    loss = rnnkit.SequenceLoss(*flags)
    logits = np.zeros((batch, steps, 5), np.float32)
    value = loss.forward(logits, np.zeros((batch, steps), np.int32), np.ones((batch, steps), np.float32))
    assert np.shape(value) == FLAGS[flags](batch, steps)
    assert not np.any(value)  # an empty sum over a zero weight: div_no_nan's 0
    d_logits = loss.backward()
    assert d_logits.shape == logits.shape


@pytest.mark.parametrize("shape", [(N, 0, 5), (0, N, 5)])
def test_sequence_loss_over_a_long_empty_axis(shape):
    loss = rnnkit.SequenceLoss()
    value = quickly(loss.forward, np.zeros(shape, np.float32), np.zeros(shape[:2], np.int32),
                    np.zeros(shape[:2], np.float32))
    assert value == 0 and np.shape(value) == ()
    assert quickly(loss.backward).shape == shape


def test_one_hot_of_no_ids():
    assert quickly(rnnkit.one_hot, np.zeros((0, N), np.int32), 5).shape == (0, N, 5)
