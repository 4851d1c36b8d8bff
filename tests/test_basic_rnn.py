"""BasicRNNCell: forward against the numpy reference and gradients against
finite differences."""

import functools

import numpy as np
import pytest

import rnnkit
from helpers import FD_TOL, assert_close, numeric_grad, rng
import reference as ref


def make_cell(D, H, dtype, activation="tanh", seed=1):
    cell = rnnkit.BasicRNNCell(H, activation=activation, dtype=dtype, input_depth=D, seed=seed)
    cell.variables["bias"] = rng(seed + 5).uniform(-0.5, 0.5, H).astype(dtype)
    return cell


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid"])
@pytest.mark.parametrize("time_major", [False, True])
@pytest.mark.parametrize("with_lengths", [False, True])
@pytest.mark.parametrize("with_state", [False, True])
def test_forward_matches_reference(dtype, activation, time_major, with_lengths, with_state):
    B, T, D, H = 3, 5, 4, 6
    r = rng(2)
    cell = make_cell(D, H, dtype, activation)
    x = r.normal(size=(T, B, D) if time_major else (B, T, D)).astype(dtype)
    lengths = np.array([5, 2, 0]) if with_lengths else None
    h0 = r.normal(size=(B, H)).astype(dtype) if with_state else None
    out, final = rnnkit.dynamic_rnn(cell, x, sequence_length=lengths, initial_state=h0, time_major=time_major)
    v = {k: a.astype(np.float64) for k, a in cell.variables.items()}
    step = functools.partial(ref.basic_rnn_step, v, activation=activation)
    ref_h0 = np.zeros((B, H)) if h0 is None else h0.astype(np.float64)
    ref_out, (ref_final,) = ref.dynamic_rnn(step, x.astype(np.float64), (ref_h0,), lengths, time_major)
    assert out.dtype == dtype
    assert_close(out, ref_out, dtype)
    assert_close(final, ref_final, dtype)


def test_variables_follow_tf():
    cell = rnnkit.BasicRNNCell(2, input_depth=5, seed=0)
    assert list(cell.variables) == ["kernel", "bias"]
    assert cell.variables["kernel"].shape == (7, 2) and cell.variables["bias"].shape == (2,)


@pytest.mark.parametrize("time_major", [False, True])
@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
# B = 40, batch-major: with two threads each runs its own block of batch rows,
# and the weight gradients are summed in groups of 16, 16 and 8 rows
# (common.hpp: batch_blocks, grad_blocks)
@pytest.mark.parametrize("B", [3, 40])
def test_gradients_match_finite_differences(time_major, activation, B):
    T, D, H = 4, 2, 3
    r = rng(4)
    cell = make_cell(D, H, np.float64, activation)
    x = r.normal(size=(T, B, D) if time_major else (B, T, D))
    lengths = np.concatenate([[4, 1, 0], r.integers(0, T + 1, size=B - 3)])
    h0 = r.normal(size=(B, H))
    w_out, w_h = r.normal(size=x.shape[:2] + (H,)), r.normal(size=(B, H))
    layer = rnnkit.RNN(cell)
    layer.forward(x, sequence_length=lengths, initial_state=h0, time_major=time_major)
    dx, dh0 = layer.backward(w_out, w_h)

    def f():
        out, final = rnnkit.dynamic_rnn(cell, x, sequence_length=lengths, initial_state=h0, time_major=time_major)
        return np.sum(out * w_out) + np.sum(final * w_h)

    for name, var in cell.variables.items():
        assert_close(cell.grads[name], numeric_grad(f, var), **FD_TOL, err_msg=name)
    assert_close(dx, numeric_grad(f, x), **FD_TOL)
    assert_close(dh0, numeric_grad(f, h0), **FD_TOL)
    assert [g.shape for g, v in layer.grads_and_vars()] == [(5, 3), (3,)]
