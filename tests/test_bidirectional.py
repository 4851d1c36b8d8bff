"""bidirectional_dynamic_rnn and the Bidirectional layer against a numpy
reference built from reverse_sequence, and their gradients."""

import numpy as np
import pytest

import rnnkit
from helpers import FD_TOL, assert_close, numeric_grad, rng
import reference as ref
from test_multi_and_residual import ref_step_for


def reverse_rows(x, lengths, time_major):
    """numpy reverse_sequence on the time axis."""
    xb = np.swapaxes(x, 0, 1) if time_major else x
    out = xb.copy()
    for b, L in enumerate(lengths):
        out[b, :L] = xb[b, :L][::-1]
    return np.swapaxes(out, 0, 1) if time_major else out


def make_cells(dtype):
    return (rnnkit.BasicLSTMCell(3, dtype=dtype, seed=1),
            rnnkit.LSTMCell(2, use_peepholes=True, dtype=dtype, seed=2))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("time_major", [False, True])
def test_matches_reference(dtype, time_major):
    fw, bw = make_cells(dtype)
    B, T, D = 3, 5, 4
    x = rng(0).normal(size=(T, B, D) if time_major else (B, T, D)).astype(dtype)
    lengths = np.array([5, 2, 0])
    (out_fw, out_bw), (s_fw, s_bw) = rnnkit.bidirectional_dynamic_rnn(fw, bw, x, lengths, time_major=time_major)
    x64 = x.astype(np.float64)
    zeros = lambda c: tuple(np.zeros((B, w)) for w in c._state_widths())
    r_fw, rs_fw = ref.dynamic_rnn(ref_step_for(fw), x64, zeros(fw), lengths, time_major)
    r_rev, rs_bw = ref.dynamic_rnn(ref_step_for(bw), reverse_rows(x64, lengths, time_major), zeros(bw), lengths, time_major)
    assert_close(out_fw, r_fw, dtype)
    assert_close(out_bw, reverse_rows(r_rev, lengths, time_major), dtype)
    assert_close(s_bw.h, rs_bw[1], dtype)
    assert_close(s_fw.c, rs_fw[0], dtype)
    # both directions aligned in time: bw at t = 0 has seen the whole row
    if not time_major:
        assert_close(out_bw[0, 0], s_bw.h[0], dtype)
        assert np.all(out_bw[1, 2:] == 0)


def test_reverse_sequence_core():
    x = np.arange(2 * 4 * 1, dtype=np.float32).reshape(2, 4, 1)
    out = rnnkit._core.reverse_sequence(x, np.array([3, 0], np.int32))
    assert out[0, :, 0].tolist() == [2, 1, 0, 3] and out[1, :, 0].tolist() == [4, 5, 6, 7]
    ids = np.array([[1, 2, 3]], np.int32)
    assert rnnkit._core.reverse_sequence(ids, np.array([2], np.int32)).tolist() == [[2, 1, 3]]


@pytest.mark.parametrize("time_major", [False, True])
def test_layer_gradients(time_major):
    fw, bw = make_cells(np.float64)
    B, T, D = 2, 4, 3
    r = rng(3)
    x = r.normal(size=(T, B, D) if time_major else (B, T, D))
    lengths = np.array([4, 2])
    layer = rnnkit.Bidirectional(fw, bw)
    (o_fw, o_bw), (s_fw, s_bw) = layer.forward(x, lengths, time_major=time_major)
    w_fw, w_bw = r.normal(size=o_fw.shape), r.normal(size=o_bw.shape)
    w_sf = rnnkit.LSTMStateTuple(r.normal(size=s_fw.c.shape), r.normal(size=s_fw.h.shape))
    w_sb = rnnkit.LSTMStateTuple(r.normal(size=s_bw.c.shape), r.normal(size=s_bw.h.shape))
    dx = layer.backward((w_fw, w_bw), (w_sf, w_sb))

    def f():
        (a, b), (sa, sb) = rnnkit.bidirectional_dynamic_rnn(fw, bw, x, lengths, time_major=time_major)
        return (np.sum(a * w_fw) + np.sum(b * w_bw) + sum(np.sum(p * q) for p, q in zip(sa, w_sf))
                + sum(np.sum(p * q) for p, q in zip(sb, w_sb)))

    grads = layer.grads
    assert list(grads) == list(layer.variables)
    assert list(layer.variables)[0] == "fw/basic_lstm_cell/kernel"
    assert "bw/lstm_cell/w_o_diag" in grads
    for name, var in layer.variables.items():
        assert_close(grads[name], numeric_grad(f, var), **FD_TOL, err_msg=name)
    assert_close(dx, numeric_grad(f, x), **FD_TOL)
    assert len(layer.grads_and_vars()) == len(grads)


def test_token_ids_and_errors():
    fw = rnnkit.BasicRNNCell(2, input_depth=5, seed=0)
    bw = rnnkit.BasicRNNCell(2, input_depth=5, seed=1)
    ids = np.array([[0, 4, 2]])
    (a, b), _ = rnnkit.bidirectional_dynamic_rnn(fw, bw, ids)
    (c, d), _ = rnnkit.bidirectional_dynamic_rnn(fw, bw, rnnkit.one_hot(ids, 5))
    assert np.array_equal(a, c) and np.array_equal(b, d)
    with pytest.raises(TypeError, match="cell_bw has dtype float64"):
        rnnkit.bidirectional_dynamic_rnn(fw, rnnkit.BasicRNNCell(2, dtype=np.float64), np.zeros((1, 2, 5)))
    layer = rnnkit.Bidirectional(fw, bw)
    with pytest.raises(RuntimeError, match="backward called before forward"):
        layer.backward((np.zeros((1, 3, 2)), np.zeros((1, 3, 2))))
    with pytest.raises(TypeError, match=r"d_outputs must be a pair"):
        layer.backward(np.zeros((1, 3, 2)))
