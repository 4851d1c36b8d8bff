"""last_output, RNN / Bidirectional(return_sequences=False), static_rnn and
static_bidirectional_rnn: numpy references (TF1's semantics), float64
finite-difference gradients, bad input."""

import numpy as np
import pytest

import rnnkit
from helpers import FD_TOL, assert_close, cell_makers, numeric_grad, rng

DTYPES = [np.float32, np.float64]


def ref_last(outputs, lengths=None, time_major=False):
    if time_major:
        outputs = np.swapaxes(outputs, 0, 1)
    B, T = outputs.shape[:2]
    lengths = np.full(B, T) if lengths is None else np.asarray(lengths)
    return np.stack([outputs[b, n - 1] if n > 0 else np.zeros(outputs.shape[2]) for b, n in enumerate(lengths)])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("time_major", [False, True])
def test_last_output_matches_reference(dtype, time_major):
    batch_major = rng(0).normal(size=(4, 5, 3)).astype(dtype)
    x = np.ascontiguousarray(batch_major.swapaxes(0, 1)) if time_major else batch_major
    lengths = np.array([5, 0, 2, 1])
    out = rnnkit.last_output(x, lengths, time_major=time_major)
    assert out.dtype == dtype and out.shape == (4, 3)
    np.testing.assert_array_equal(out, ref_last(batch_major, lengths))
    assert np.all(out[1] == 0)
    np.testing.assert_array_equal(rnnkit.last_output(x, time_major=time_major), batch_major[:, -1])


def test_last_output_bad_input():
    with pytest.raises(ValueError, match=r"outputs must have rank 3"):
        rnnkit.last_output(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"sequence_length values must lie in \[0, 3\], got 4 at index 1"):
        rnnkit.last_output(np.zeros((2, 3, 1)), [1, 4])
    with pytest.raises(ValueError, match=r"sequence_length must have shape \[2\]"):
        rnnkit.last_output(np.zeros((2, 3, 1)), [1, 2, 3])


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru", "lstm_proj"])
@pytest.mark.parametrize("time_major", [False, True])
def test_rnn_last_output_forward_and_gradient(kind, time_major):
    """RNN(return_sequences=False): outputs[b, len_b - 1] (zeros, no gradient, at length 0), the
    final state's h where the cell has no projection, and d/dx, d/dweights by finite differences."""
    make = cell_makers(4, 3)[kind]
    cell = make(np.float64)
    r = rng(1)
    x = r.normal(size=(5, 3, 3) if time_major else (3, 5, 3))
    lengths = np.array([5, 2, 0])
    w = r.normal(size=(3, cell.output_size))
    layer = rnnkit.RNN(cell, return_sequences=False)
    last, state = layer.forward(x, lengths, time_major=time_major)
    full, _ = rnnkit.dynamic_rnn(cell, x, lengths, time_major=time_major)
    np.testing.assert_array_equal(last, ref_last(full, lengths, time_major))
    assert np.all(last[2] == 0)
    if kind != "lstm_proj":
        h = state[1] if isinstance(state, tuple) else state
        np.testing.assert_array_equal(last[:2], h[:2])
    dx, _ = layer.backward(w)
    numeric = numeric_grad(lambda: float((layer(x, lengths, time_major=time_major)[0] * w).sum()), x)
    np.testing.assert_allclose(dx, numeric, **FD_TOL)
    name = next(iter(cell.variables))
    grad = cell.grads[name].copy()
    numeric = numeric_grad(lambda: float((layer(x, lengths, time_major=time_major)[0] * w).sum()),
                           cell.variables[name])
    np.testing.assert_allclose(grad, numeric, **FD_TOL)


def test_rnn_return_sequences_default_and_bad_input():
    cell = rnnkit.GRUCell(3, input_depth=2)
    assert rnnkit.RNN(cell).return_sequences is True
    x = np.zeros((2, 4, 2), np.float32)
    outputs, _ = rnnkit.RNN(cell).forward(x)
    assert outputs.shape == (2, 4, 3)
    layer = rnnkit.RNN(cell, return_sequences=False)
    assert layer.forward(x)[0].shape == (2, 3)
    assert layer(x)[0].shape == (2, 3)
    with pytest.raises(ValueError, match=r"d_outputs must have shape \[2, 3\] \(the last outputs' shape\), got \[2, 4, 3\]"):
        layer.backward(np.zeros((2, 4, 3), np.float32))
    with pytest.raises(TypeError, match="return_sequences must be a bool"):
        rnnkit.RNN(cell, return_sequences=None)


def test_last_output_model_trains_and_its_loss_gradient_flows():
    """RNN(return_sequences=False) + Dense + sparse softmax cross-entropy: the whole chain's
    gradient with respect to a weight matches finite differences."""
    cell = rnnkit.BasicLSTMCell(4, input_depth=3, dtype=np.float64, seed=0)
    rnn, dense, loss = rnnkit.RNN(cell, return_sequences=False), rnnkit.Dense(2, dtype=np.float64, seed=1), \
        rnnkit.SoftmaxCrossEntropy()
    r = rng(2)
    x, y, lengths = r.normal(size=(3, 4, 3)), np.array([0, 1, 1]), np.array([4, 2, 3])
    last, _ = rnn.forward(x, lengths)
    loss.forward(dense.forward(last), y)
    rnn.backward(dense.backward(loss.backward()))
    kernel = cell.variables["kernel"]
    numeric = numeric_grad(lambda: float(loss(dense(rnn(x, lengths)[0]), y)), kernel)
    np.testing.assert_allclose(cell.grads["kernel"], numeric, **FD_TOL)


# ---- Bidirectional ------------------------------------------------------------------
def _bi(dtype=np.float64, return_sequences=False):
    fw = rnnkit.GRUCell(3, input_depth=2, dtype=dtype, seed=1)
    bw = rnnkit.BasicLSTMCell(4, input_depth=2, dtype=dtype, seed=2)
    return rnnkit.Bidirectional(fw, bw, return_sequences=return_sequences)


@pytest.mark.parametrize("time_major", [False, True])
def test_bidirectional_last_output_is_time_aligned_concat_at_last_valid_step(time_major):
    layer = _bi()
    x = rng(3).normal(size=(4, 3, 2) if time_major else (3, 4, 2))
    lengths = np.array([4, 1, 0])
    last, (state_fw, state_bw) = layer.forward(x, lengths, time_major=time_major)
    (out_fw, out_bw), _ = rnnkit.bidirectional_dynamic_rnn(*layer.cells, x, lengths, time_major=time_major)
    expect = np.concatenate([ref_last(out_fw, lengths, time_major), ref_last(out_bw, lengths, time_major)], 1)
    np.testing.assert_array_equal(last, expect)
    assert last.shape == (3, 7) and np.all(last[2] == 0)
    np.testing.assert_array_equal(layer(x, lengths, time_major=time_major)[0], last)
    # fw half: the fw final state's h; bw half: the bw cell after only the row's last step
    np.testing.assert_array_equal(last[:2, :3], state_fw[:2])
    steps = [x[t] if time_major else x[:, t] for t in range(4)]
    outputs, _, _ = rnnkit.static_bidirectional_rnn(*layer.cells, steps)
    np.testing.assert_allclose(last[0], outputs[-1][0], rtol=1e-14, atol=0)  # a full-length row: TF1's outputs[-1]


def test_bidirectional_last_output_gradient_matches_finite_differences():
    layer = _bi()
    r = rng(4)
    x, lengths, w = r.normal(size=(3, 4, 2)), np.array([4, 2, 0]), r.normal(size=(3, 7))
    layer.forward(x, lengths)
    dx = layer.backward(w)
    numeric = numeric_grad(lambda: float((layer(x, lengths)[0] * w).sum()), x)
    np.testing.assert_allclose(dx, numeric, **FD_TOL)
    kernel = layer.bw.cell.variables["kernel"]
    grad = layer.bw.cell.grads["kernel"].copy()
    np.testing.assert_allclose(grad, numeric_grad(lambda: float((layer(x, lengths)[0] * w).sum()), kernel), **FD_TOL)
    layer.forward(x, lengths)
    with pytest.raises(TypeError, match=r"d_outputs must be one array \[3, 7\] \(the last outputs"):
        layer.backward((np.zeros((3, 4, 3)), np.zeros((3, 4, 4))))
    with pytest.raises(ValueError, match=r"d_outputs must have shape \[3, 7\]"):
        layer.backward(np.zeros((3, 6)))


def test_bidirectional_forward_defaults_to_inference():
    """training=False by default, as RNN.forward: a DropoutWrapper does not drop."""
    fw = rnnkit.DropoutWrapper(rnnkit.GRUCell(3, input_depth=2, seed=0), output_keep_prob=0.5, seed=0)
    bw = rnnkit.GRUCell(3, input_depth=2, seed=1)
    layer = rnnkit.Bidirectional(fw, bw)
    x = rng(5).normal(size=(2, 3, 2)).astype(np.float32)
    (out_fw, _), _ = layer.forward(x)
    np.testing.assert_array_equal(out_fw, rnnkit.dynamic_rnn(fw, x)[0])
    (dropped, _), _ = layer.forward(x, training=True)
    assert np.any(dropped != out_fw)


# ---- static_rnn ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_static_rnn_is_dynamic_rnn_on_a_list(dtype):
    cell = rnnkit.BasicLSTMCell(3, input_depth=2, dtype=dtype, seed=0)
    r = rng(6)
    x = r.normal(size=(2, 4, 2)).astype(dtype)
    lengths = np.array([4, 2])
    outputs, state = rnnkit.static_rnn(cell, [x[:, t] for t in range(4)], sequence_length=lengths, dtype=dtype)
    ref, ref_state = rnnkit.dynamic_rnn(cell, x, lengths)
    assert isinstance(outputs, list) and len(outputs) == 4 and outputs[0].shape == (2, 3)
    for t in range(4):
        assert_close(outputs[t], ref[:, t])
    assert_close(state.c, ref_state.c)
    assert_close(state.h, ref_state.h)
    initial = rnnkit.LSTMStateTuple(np.ones((2, 3), dtype), np.ones((2, 3), dtype))
    outputs, _ = rnnkit.static_rnn(cell, list(x.swapaxes(0, 1)), initial_state=initial)
    assert_close(np.stack(outputs, 1), rnnkit.dynamic_rnn(cell, x, initial_state=initial)[0])
    assert rnnkit.nn.static_rnn is rnnkit.static_rnn


def test_static_rnn_token_ids():
    cell = rnnkit.GRUCell(3, input_depth=5, seed=0)
    ids = np.array([[1, 4, 0], [2, 2, 3]])
    outputs, _ = rnnkit.static_rnn(cell, [ids[:, t] for t in range(3)])
    assert_close(np.stack(outputs, 1), rnnkit.dynamic_rnn(cell, ids)[0])


def test_static_bidirectional_rnn_returns_tf1_triple():
    fw, bw = rnnkit.GRUCell(3, input_depth=2, seed=0), rnnkit.GRUCell(2, input_depth=2, seed=1)
    x = rng(7).normal(size=(2, 5, 2)).astype(np.float32)
    lengths = np.array([5, 3])
    outputs, state_fw, state_bw = rnnkit.static_bidirectional_rnn(fw, bw, [x[:, t] for t in range(5)],
                                                                  sequence_length=lengths)
    (out_fw, out_bw), (ref_fw, ref_bw) = rnnkit.bidirectional_dynamic_rnn(fw, bw, x, lengths)
    assert len(outputs) == 5 and outputs[0].shape == (2, 5)
    for t in range(5):
        assert_close(outputs[t], np.concatenate([out_fw[:, t], out_bw[:, t]], 1))
    assert np.all(outputs[4][1] == 0)  # past a short row's length both halves are zero
    assert_close(state_fw, ref_fw)
    assert_close(state_bw, ref_bw)


def test_static_rnn_bad_inputs():
    cell = rnnkit.GRUCell(3, input_depth=2)
    with pytest.raises(TypeError, match="inputs must be a list of T arrays"):
        rnnkit.static_rnn(cell, np.zeros((4, 2, 2), np.float32))
    with pytest.raises(ValueError, match="at least one step"):
        rnnkit.static_rnn(cell, [])
    with pytest.raises(ValueError, match=r"inputs\[1\] must have inputs\[0\]'s shape \[2, 2\]"):
        rnnkit.static_rnn(cell, [np.zeros((2, 2), np.float32), np.zeros((3, 2), np.float32)])
    with pytest.raises(ValueError, match=r"inputs\[0\] must have rank 2"):
        rnnkit.static_rnn(cell, [np.zeros((1, 2, 2), np.float32)])
