"""BasicLSTMCell and LSTMCell: forward against the numpy reference, every
gradient against finite differences, single steps and state layouts."""

import functools

import numpy as np
import pytest

import rnnkit
from helpers import FD_TOL, assert_close, numeric_grad, rng
import reference as ref

LSTM_OPTIONS = [
    {},
    {"use_peepholes": True},
    {"cell_clip": 0.3},
    {"num_proj": 2},
    {"num_proj": 2, "proj_clip": 0.05},
    {"use_peepholes": True, "cell_clip": 0.3, "num_proj": 2, "proj_clip": 0.05, "forget_bias": 0.5},
]


def make_cell(options, D, H, dtype, seed=1):
    cell = rnnkit.LSTMCell(H, dtype=dtype, input_depth=D, seed=seed, **options)
    # non-zero biases so every term of the formula is exercised
    cell.variables["bias"] = rng(seed + 7).uniform(-0.5, 0.5, 4 * H).astype(dtype)
    return cell


def reference_step(cell, options):
    opts = {k: v for k, v in options.items()}
    opts.setdefault("forget_bias", 1.0)
    return functools.partial(ref.lstm_step, {k: v.astype(np.float64) for k, v in cell.variables.items()}, **opts)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("options", LSTM_OPTIONS)
@pytest.mark.parametrize("time_major", [False, True])
@pytest.mark.parametrize("with_lengths", [False, True])
@pytest.mark.parametrize("with_state", [False, True])
def test_forward_matches_reference(dtype, options, time_major, with_lengths, with_state):
    B, T, D, H = 4, 6, 3, 5
    r = rng(3)
    cell = make_cell(options, D, H, dtype)
    R = cell.output_size
    x = r.normal(size=(T, B, D) if time_major else (B, T, D)).astype(dtype)
    lengths = np.array([6, 0, 3, 1]) if with_lengths else None
    state = rnnkit.LSTMStateTuple(r.normal(size=(B, H)).astype(dtype), r.normal(size=(B, R)).astype(dtype)) if with_state else None
    out, final = rnnkit.dynamic_rnn(cell, x, sequence_length=lengths, initial_state=state, time_major=time_major)
    ref_state = tuple(np.zeros((B, w)) for w in (H, R)) if state is None else tuple(s.astype(np.float64) for s in state)
    ref_out, ref_final = ref.dynamic_rnn(reference_step(cell, options), x.astype(np.float64), ref_state, lengths, time_major)
    assert out.dtype == dtype and out.shape == ref_out.shape
    assert isinstance(final, rnnkit.LSTMStateTuple)
    assert_close(out, ref_out, dtype)
    assert_close(final.c, ref_final[0], dtype)
    assert_close(final.h, ref_final[1], dtype)
    if with_lengths:  # the spec's invariants of masking
        assert np.all(out[1] == 0) if not time_major else np.all(out[:, 1] == 0)
        if state is not None:
            assert_close(final.c[1], state.c[1], dtype)


def test_basic_lstm_is_lstm_without_options():
    cell = rnnkit.BasicLSTMCell(3, input_depth=2, seed=5)
    assert list(cell.variables) == ["kernel", "bias"]
    assert cell.variables["kernel"].shape == (5, 12)
    x = rng(1).normal(size=(2, 4, 2)).astype(np.float32)
    out, final = rnnkit.dynamic_rnn(cell, x)
    ref_out, ref_final = ref.dynamic_rnn(reference_step(cell, {}), x.astype(np.float64), (np.zeros((2, 3)),) * 2)
    assert_close(out, ref_out)
    assert_close(final.h, out[:, -1])


def test_variable_names_and_order_follow_tf():
    cell = rnnkit.LSTMCell(4, use_peepholes=True, num_proj=3, input_depth=2, seed=0)
    assert list(cell.variables) == ["kernel", "bias", "w_f_diag", "w_i_diag", "w_o_diag", "projection/kernel"]
    assert cell.variables["kernel"].shape == (2 + 3, 16)
    assert cell.variables["projection/kernel"].shape == (4, 3)
    assert np.all(cell.variables["bias"] == 0)
    limit = np.sqrt(6 / (5 + 16))
    k = cell.variables["kernel"]
    assert np.abs(k).max() <= limit and np.abs(k).max() > 0.5 * limit


def test_seeded_init_is_reproducible():
    a = rnnkit.BasicLSTMCell(3, input_depth=2, seed=11)
    b = rnnkit.BasicLSTMCell(3, input_depth=2, seed=11)
    c = rnnkit.BasicLSTMCell(3, input_depth=2, seed=12)
    assert np.array_equal(a.variables["kernel"], b.variables["kernel"])
    assert not np.array_equal(a.variables["kernel"], c.variables["kernel"])


def test_variables_reject_wrong_shape_and_dtype_and_stay_live():
    cell = rnnkit.BasicLSTMCell(2, input_depth=3)
    live = cell.variables["kernel"]
    with pytest.raises(ValueError, match=r"kernel.*\[5, 8\].*\[4, 8\]"):
        cell.variables["kernel"] = np.zeros((4, 8), np.float32)
    with pytest.raises(TypeError, match="float32.*float64"):
        cell.variables["kernel"] = np.zeros((5, 8), np.float64)
    cell.variables["kernel"] = np.ones((5, 8), np.float32)
    assert cell.variables["kernel"] is live and np.all(live == 1)


@pytest.mark.parametrize("state_is_tuple", [True, False])
def test_single_step_matches_sequence(state_is_tuple):
    cell = rnnkit.BasicLSTMCell(3, state_is_tuple=state_is_tuple, input_depth=2, seed=2)
    x = rng(4).normal(size=(2, 3, 2)).astype(np.float32)
    out, final = rnnkit.dynamic_rnn(cell, x)
    state = cell.zero_state(2)
    if not state_is_tuple:
        assert state.shape == (2, 6)
    for t in range(3):
        y, state = cell(x[:, t], state)
        assert_close(y, out[:, t])
    if state_is_tuple:
        assert_close(state.c, final.c)
    else:
        assert isinstance(final, np.ndarray) and final.shape == (2, 6)
        assert_close(state, final)


def test_zero_state_shapes_and_dtype():
    cell = rnnkit.LSTMCell(4, num_proj=2, dtype=np.float64)
    s = cell.zero_state(3)
    assert s.c.shape == (3, 4) and s.h.shape == (3, 2) and s.c.dtype == np.float64
    assert cell.zero_state(3, np.float32).h.dtype == np.float32
    assert cell.state_size == (4, 2) and cell.output_size == 2


def loss_and_grads(cell, x, lengths, state, w_out, w_c, w_h, time_major):
    layer = rnnkit.RNN(cell)
    out, final = layer.forward(x, sequence_length=lengths, initial_state=state, time_major=time_major)
    dx, d_state = layer.backward(w_out, rnnkit.LSTMStateTuple(w_c, w_h))
    return dx, d_state, dict(cell.grads)


def scalar_loss(cell, x, lengths, state, w_out, w_c, w_h, time_major):
    out, final = rnnkit.dynamic_rnn(cell, x, sequence_length=lengths, initial_state=state, time_major=time_major)
    return np.sum(out * w_out) + np.sum(final.c * w_c) + np.sum(final.h * w_h)


@pytest.mark.parametrize("options", LSTM_OPTIONS)
@pytest.mark.parametrize("time_major", [False, True])
# B = 40, batch-major: the weight gradients are summed in groups of 16, 16
# and 8 batch rows and then added (common.hpp: grad_blocks)
@pytest.mark.parametrize("B", [3, 40])
def test_gradients_match_finite_differences(options, time_major, B):
    T, D, H = 4, 3, 3
    r = rng(8)
    if "cell_clip" in options:  # make the clip bind at some entries but not all
        options = dict(options, cell_clip=0.6)
    cell = make_cell(options, D, H, np.float64, seed=3)
    R = cell.output_size
    x = r.normal(size=(T, B, D) if time_major else (B, T, D))
    lengths = np.concatenate([[4, 2, 0], r.integers(0, T + 1, size=B - 3)])
    state = rnnkit.LSTMStateTuple(r.normal(size=(B, H)), r.normal(size=(B, R)))
    w_out = r.normal(size=x.shape[:2] + (R,))
    w_c, w_h = r.normal(size=(B, H)), r.normal(size=(B, R))
    dx, d_state, grads = loss_and_grads(cell, x, lengths, state, w_out, w_c, w_h, time_major)
    f = lambda: scalar_loss(cell, x, lengths, state, w_out, w_c, w_h, time_major)
    assert set(grads) == set(cell.variables)
    for name, var in cell.variables.items():
        assert_close(grads[name], numeric_grad(f, var), **FD_TOL, err_msg=name)
    assert_close(dx, numeric_grad(f, x), **FD_TOL)
    assert_close(d_state.c, numeric_grad(f, state.c), **FD_TOL)
    assert_close(d_state.h, numeric_grad(f, state.h), **FD_TOL)
    # nothing flows into the padded steps of the inputs
    pad = dx[:, 2:] if not time_major else dx[2:, :]
    assert np.all((pad[1] if not time_major else pad[:, 1]) == 0)


def test_relu_activation_gradients():
    cell = make_cell({"activation": "relu"}, 2, 3, np.float64, seed=4)
    r = rng(2)
    x, w_out = r.normal(size=(2, 3, 2)), r.normal(size=(2, 3, 3))
    state = cell.zero_state(2)
    z = np.zeros((2, 3))
    dx, _, grads = loss_and_grads(cell, x, None, state, w_out, z, z, False)
    f = lambda: scalar_loss(cell, x, None, state, w_out, z, z, False)
    assert_close(grads["kernel"], numeric_grad(f, cell.variables["kernel"]), **FD_TOL)
    assert_close(dx, numeric_grad(f, x), **FD_TOL)
