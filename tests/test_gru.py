"""GRUCell, both formulas: forward against a plain numpy loop, gradients
against central differences, thread-count reproducibility, boundary checks."""

import numpy as np
import pytest

import rnnkit
from rnnkit import _core
from helpers import FD_TOL, TOL, assert_close, numeric_grad, rng
import reference

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)


# ---- the reference ------------------------------------------------------------------

def ref_step(v, x, h, reset_after, activation="tanh"):
    """One GRU step in float64 (tests/reference.py). x [B, D]; h [B, H] -> h' [B, H]."""
    return reference.gru_step(v, x, (h,), reset_after, activation)[0]


def ref_gru(v, x, h0, lengths, reset_after, activation="tanh", time_major=False):
    """dynamic_rnn by an explicit loop over time: past a row's length the
    output is zero and the state is carried. Returns (outputs, final)."""
    v = {k: np.asarray(a, np.float64) for k, a in v.items()}
    xs = np.asarray(x, np.float64)
    if time_major:
        xs = xs.transpose(1, 0, 2)
    B, T, _ = xs.shape
    h = np.asarray(h0, np.float64).copy()
    outputs = np.zeros((B, T, h.shape[1]))
    for t in range(T):
        h_new = ref_step(v, xs[:, t], h, reset_after, activation)
        live = np.ones(B, bool) if lengths is None else t < np.asarray(lengths)
        outputs[live, t] = h_new[live]
        h = np.where(live[:, None], h_new, h)
    if time_major:
        outputs = outputs.transpose(1, 0, 2)
    return outputs, h


def make_cell(H, D, reset_after, dtype=np.float64, activation="tanh", seed=0):
    """A built cell with every variable random (biases too, so that each one
    matters in the tests)."""
    cell = rnnkit.GRUCell(H, activation=activation, reset_after=reset_after, dtype=dtype,
                          input_depth=D, seed=seed)
    g = rng(seed + 100)
    for name, var in cell.variables.items():
        cell.variables[name] = (g.uniform(-1, 1, var.shape)).astype(dtype)
    return cell


def core_weights(cell):
    """The cell's variables as the kernels' keyword arguments ("gates/kernel"
    -> gates_kernel), for calling _core directly."""
    return {name.replace("/", "_"): v for name, v in cell.variables.items()}


def seq_shape(B, T, D, time_major):
    return (T, B, D) if time_major else (B, T, D)


# ---- variables ------------------------------------------------------------------------

def test_variables_tf_names_order_shapes_and_init():
    D, H = 3, 4
    cell = rnnkit.GRUCell(H, input_depth=D, seed=7)
    assert cell.scope_name == "gru_cell"
    assert list(cell.variables) == ["gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias"]
    v = cell.variables
    assert v["gates/kernel"].shape == (D + H, 2 * H) and v["gates/kernel"].dtype == F32
    assert v["candidate/kernel"].shape == (D + H, H)
    np.testing.assert_array_equal(v["gates/bias"], np.ones(2 * H, np.float32))
    np.testing.assert_array_equal(v["candidate/bias"], np.zeros(H, np.float32))
    # Glorot over the whole fused matrix, and seeded
    assert np.abs(v["gates/kernel"]).max() <= np.sqrt(6 / (D + H + 2 * H))
    assert np.abs(v["candidate/kernel"]).max() <= np.sqrt(6 / (D + H + H))
    assert np.abs(v["gates/kernel"]).max() > 0.5 * np.sqrt(6 / (D + H + 2 * H))
    again = rnnkit.GRUCell(H, input_depth=D, seed=7)
    for name in v:
        np.testing.assert_array_equal(v[name], again.variables[name])


def test_variables_reset_after():
    D, H = 3, 4
    cell = rnnkit.GRUCell(H, reset_after=True, input_depth=D, seed=1, dtype=np.float64)
    assert list(cell.variables) == [
        "gates/kernel", "gates/bias", "candidate/input/kernel", "candidate/input/bias",
        "candidate/hidden/kernel", "candidate/hidden/bias",
    ]
    v = cell.variables
    assert v["gates/kernel"].shape == (D + H, 2 * H)
    assert v["candidate/input/kernel"].shape == (D, H)
    assert v["candidate/hidden/kernel"].shape == (H, H)
    np.testing.assert_array_equal(v["gates/bias"], np.ones(2 * H))
    np.testing.assert_array_equal(v["candidate/input/bias"], np.zeros(H))
    np.testing.assert_array_equal(v["candidate/hidden/bias"], np.zeros(H))
    assert np.abs(v["candidate/input/kernel"]).max() <= np.sqrt(6 / (D + H))
    assert np.abs(v["candidate/hidden/kernel"]).max() <= np.sqrt(6 / (2 * H))
    assert cell.dtype == F64 and all(a.dtype == F64 for a in v.values())


def test_exported():
    assert "GRUCell" in rnnkit.__all__
    assert rnnkit.GRUCell is rnnkit.cells.gru.GRUCell


def test_hyperparameter_checks():
    with pytest.raises(ValueError, match="num_units"):
        rnnkit.GRUCell(0)
    with pytest.raises(ValueError, match="activation"):
        rnnkit.GRUCell(3, activation="softsign")
    with pytest.raises(TypeError, match="reset_after"):
        rnnkit.GRUCell(3, reset_after="yes")


# ---- forward --------------------------------------------------------------------------

@pytest.mark.parametrize("reset_after", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("time_major", [False, True])
@pytest.mark.parametrize("lengths", [None, [4, 0, 2]])
@pytest.mark.parametrize("with_initial_state", [False, True])
def test_forward_matches_reference(reset_after, dtype, time_major, lengths, with_initial_state):
    B, T, D, H = 3, 4, 3, 5
    cell = make_cell(H, D, reset_after, dtype)
    g = rng(1)
    x = g.standard_normal(seq_shape(B, T, D, time_major)).astype(dtype)
    h0 = g.standard_normal((B, H)).astype(dtype) if with_initial_state else None
    outputs, final = rnnkit.dynamic_rnn(cell, x, sequence_length=lengths, initial_state=h0,
                                        time_major=time_major)
    ref_out, ref_final = ref_gru(cell.variables, x, np.zeros((B, H)) if h0 is None else h0,
                                 lengths, reset_after, time_major=time_major)
    assert outputs.dtype == np.dtype(dtype) and final.dtype == np.dtype(dtype)
    assert outputs.shape == seq_shape(B, T, H, time_major)
    assert_close(outputs, ref_out, dtype)
    assert_close(final, ref_final, dtype)
    if lengths is not None:
        batch_major = outputs.transpose(1, 0, 2) if time_major else outputs
        assert not batch_major[1].any() and not batch_major[2, 2:].any()  # padded steps are zero
        assert_close(final[0], batch_major[0, 3], dtype)  # state after step len - 1
        assert_close(final[2], batch_major[2, 1], dtype)
        expected_row1 = np.zeros(H) if h0 is None else h0[1]
        np.testing.assert_array_equal(final[1], expected_row1)  # len 0: the initial state, exactly


@pytest.mark.parametrize("reset_after", [False, True])
@pytest.mark.parametrize("B", [1, 70])
def test_forward_and_gradients_at_gemm_sizes(reset_after, B):
    """B = 1 takes Eigen's matrix-vector path; H = 80 gives more than one
    64-wide GEMM panel; rows = 3B past 128 give row panels."""
    T, D, H = 3, 5, 80
    cell = make_cell(H, D, reset_after)
    g = rng(14)
    x = g.standard_normal((B, T, D))
    h0 = g.standard_normal((B, H))
    lengths = g.integers(0, T + 1, size=B)
    lengths[0] = T  # at least one full row, so the checked output below is live
    layer = rnnkit.RNN(cell)
    outputs, final = layer.forward(x, sequence_length=lengths, initial_state=h0)
    ref_out, ref_final = ref_gru(cell.variables, x, h0, lengths, reset_after)
    assert_close(outputs, ref_out)
    assert_close(final, ref_final)
    # a linear loss in one output entry: its gradient w.r.t. h0 checked by differences
    b = int(np.argmax(lengths))
    W1 = np.zeros_like(outputs)
    W1[b, lengths[b] - 1, :] = g.standard_normal(H)
    _, dh0 = layer.backward(W1)

    def loss():
        return np.sum(rnnkit.dynamic_rnn(cell, x, sequence_length=lengths, initial_state=h0)[0] * W1)

    h0_row = h0[b:b + 1]  # only row b feeds that output
    expected = numeric_grad(loss, h0_row)
    assert np.abs(expected).max() > 1e-3
    np.testing.assert_allclose(dh0[b:b + 1], expected, **FD_TOL)
    others = np.delete(np.arange(B), b)
    assert not dh0[others].any()


@pytest.mark.parametrize("reset_after", [False, True])
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "linear"])
def test_forward_activations(reset_after, activation):
    B, T, D, H = 2, 3, 3, 4
    cell = make_cell(H, D, reset_after, activation=activation)
    x = rng(2).standard_normal((B, T, D))
    outputs, final = rnnkit.dynamic_rnn(cell, x)
    ref_out, ref_final = ref_gru(cell.variables, x, np.zeros((B, H)), None, reset_after, activation)
    assert_close(outputs, ref_out)
    assert_close(final, ref_final)


def test_forward_tf_and_reset_after_differ():
    """Same weights laid out for both formulas: the results must differ (they
    are different functions), unless r = 1 where they coincide."""
    B, T, D, H = 2, 3, 3, 4
    tf_cell = make_cell(H, D, reset_after=False)
    ra_cell = rnnkit.GRUCell(H, reset_after=True, input_depth=D, dtype=np.float64)
    v = tf_cell.variables
    ra_cell.variables["gates/kernel"] = v["gates/kernel"]
    ra_cell.variables["gates/bias"] = v["gates/bias"]
    ra_cell.variables["candidate/input/kernel"] = v["candidate/kernel"][:D]
    ra_cell.variables["candidate/input/bias"] = v["candidate/bias"]
    ra_cell.variables["candidate/hidden/kernel"] = v["candidate/kernel"][D:]
    ra_cell.variables["candidate/hidden/bias"] = np.zeros(H)
    x = rng(3).standard_normal((B, T, D))
    h0 = rng(4).standard_normal((B, H))
    out_tf, _ = rnnkit.dynamic_rnn(tf_cell, x, initial_state=h0)
    out_ra, _ = rnnkit.dynamic_rnn(ra_cell, x, initial_state=h0)
    assert np.abs(out_tf - out_ra).max() > 1e-3
    # r = 1 (saturated reset gate): r ⊙ (h W) == (r ⊙ h) W
    for cell in (tf_cell, ra_cell):
        bias = cell.variables["gates/bias"].copy()
        bias[:H] = 1e3
        cell.variables["gates/bias"] = bias
    out_tf, _ = rnnkit.dynamic_rnn(tf_cell, x, initial_state=h0)
    out_ra, _ = rnnkit.dynamic_rnn(ra_cell, x, initial_state=h0)
    assert_close(out_ra, out_tf)


@pytest.mark.parametrize("reset_after", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_single_step_call(reset_after, dtype):
    B, D, H = 3, 3, 4
    cell = make_cell(H, D, reset_after, dtype)
    g = rng(5)
    x = g.standard_normal((B, D)).astype(dtype)
    h = g.standard_normal((B, H)).astype(dtype)
    output, new_state = cell(x, h)
    ref = ref_step({k: a.astype(np.float64) for k, a in cell.variables.items()},
                   x.astype(np.float64), h.astype(np.float64), reset_after)
    assert output.shape == (B, H) and output.dtype == np.dtype(dtype)
    assert_close(output, ref, dtype)
    np.testing.assert_array_equal(new_state, output)


def test_pytorch_gru_matches_reset_after():
    """The variable mapping documented in gru.hpp, against torch.nn.GRU itself."""
    torch = pytest.importorskip("torch")
    B, T, D, H = 3, 5, 4, 6
    torch.manual_seed(0)
    gru = torch.nn.GRU(D, H, batch_first=True).double()
    W_ih = gru.weight_ih_l0.detach().numpy()  # [3H, D], rows r, z, n
    W_hh = gru.weight_hh_l0.detach().numpy()  # [3H, H]
    b_ih = gru.bias_ih_l0.detach().numpy()
    b_hh = gru.bias_hh_l0.detach().numpy()
    cell = rnnkit.GRUCell(H, reset_after=True, input_depth=D, dtype=np.float64)
    v = cell.variables
    v["gates/kernel"] = np.concatenate([W_ih[:2 * H].T, W_hh[:2 * H].T], axis=0)
    v["gates/bias"] = b_ih[:2 * H] + b_hh[:2 * H]
    v["candidate/input/kernel"] = W_ih[2 * H:].T
    v["candidate/input/bias"] = b_ih[2 * H:]
    v["candidate/hidden/kernel"] = W_hh[2 * H:].T
    v["candidate/hidden/bias"] = b_hh[2 * H:]
    x = rng(6).standard_normal((B, T, D))
    h0 = rng(7).standard_normal((B, H))
    with torch.no_grad():
        ref_out, ref_h = gru(torch.from_numpy(x), torch.from_numpy(h0)[None])
    outputs, final = rnnkit.dynamic_rnn(cell, x, initial_state=h0)
    assert_close(outputs, ref_out.numpy())
    assert_close(final, ref_h.numpy()[0])


# ---- gradients ------------------------------------------------------------------------

@pytest.mark.parametrize("reset_after", [False, True])
@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
@pytest.mark.parametrize("lengths", [None, [3, 0, 2]])
@pytest.mark.parametrize("time_major", [False, True])
# B = 40, batch-major: with two threads each runs its own block of batch rows,
# and the weight gradients are summed in groups of 16, 16 and 8 rows
# (common.hpp: batch_blocks, grad_blocks)
@pytest.mark.parametrize("B", [3, 40])
def test_gradients_match_finite_differences(reset_after, activation, lengths, time_major, B):
    T, D, H = 3, 3, 2 if reset_after else 3
    cell = make_cell(H, D, reset_after, activation=activation, seed=3)
    g = rng(8)
    x = g.standard_normal(seq_shape(B, T, D, time_major))
    h0 = g.standard_normal((B, H))
    W1 = g.standard_normal(seq_shape(B, T, H, time_major))  # d loss / d outputs
    W2 = g.standard_normal((B, H))  # d loss / d final state (nonzero)
    if lengths is not None:
        lengths = np.concatenate([lengths, g.integers(0, T + 1, size=B - 3)])

    def loss():
        outputs, final = rnnkit.dynamic_rnn(cell, x, sequence_length=lengths, initial_state=h0,
                                            time_major=time_major)
        return np.sum(outputs * W1) + np.sum(final * W2)

    layer = rnnkit.RNN(cell)
    outputs, final = layer.forward(x, sequence_length=lengths, initial_state=h0, time_major=time_major)
    assert_close(np.sum(outputs * W1) + np.sum(final * W2), loss())
    dx, dh0 = layer.backward(W1, W2)
    assert set(cell.grads) == set(cell.variables)
    for name, var in cell.variables.items():
        assert cell.grads[name].shape == var.shape
        np.testing.assert_allclose(cell.grads[name], numeric_grad(loss, var), err_msg=name, **FD_TOL)
    np.testing.assert_allclose(dx, numeric_grad(loss, x), err_msg="inputs", **FD_TOL)
    np.testing.assert_allclose(dh0, numeric_grad(loss, h0), err_msg="initial_state", **FD_TOL)
    if lengths is not None:
        # nothing flows through masked steps: a length-0 row passes d_final straight to h0
        np.testing.assert_array_equal(dh0[1], W2[1])
        dx_bm = dx.transpose(1, 0, 2) if time_major else dx
        assert not dx_bm[1].any() and not dx_bm[2, 2:].any()


@pytest.mark.parametrize("reset_after", [False, True])
def test_float32_gradients_match_float64(reset_after):
    B, T, D, H = 3, 4, 3, 4
    g = rng(9)
    x = g.standard_normal((B, T, D))
    W1 = g.standard_normal((B, T, H))
    W2 = g.standard_normal((B, H))
    results = {}
    for dtype in (np.float64, np.float32):
        cell = make_cell(H, D, reset_after, np.float64, seed=4)
        if dtype == np.float32:
            cell32 = rnnkit.GRUCell(H, reset_after=reset_after, input_depth=D, dtype=np.float32)
            for name, var in cell.variables.items():
                cell32.variables[name] = var.astype(np.float32)
            cell = cell32
        layer = rnnkit.RNN(cell)
        layer.forward(x.astype(dtype), sequence_length=[4, 1, 3])
        dx, dh0 = layer.backward(W1.astype(dtype), W2.astype(dtype))
        results[dtype] = (dx, dh0, dict(cell.grads))
    dx64, dh64, g64 = results[np.float64]
    dx32, dh32, g32 = results[np.float32]
    tol = dict(rtol=1e-4, atol=1e-5)  # float32 rounding through 4 steps of BPTT
    assert dx32.dtype == F32 and all(a.dtype == F32 for a in g32.values())
    np.testing.assert_allclose(dx32, dx64, **tol)
    np.testing.assert_allclose(dh32, dh64, **tol)
    for name in g64:
        np.testing.assert_allclose(g32[name], g64[name], err_msg=name, **tol)


@pytest.mark.parametrize("reset_after", [False, True])
def test_tape_reused_across_shapes(reset_after):
    """A second forward with another shape reallocates the tape; a third with
    the first shape reuses it; backward always follows the latest forward."""
    D, H = 3, 3
    cell = make_cell(H, D, reset_after)
    layer = rnnkit.RNN(cell)
    g = rng(10)
    x_a, x_b = g.standard_normal((2, 4, D)), g.standard_normal((3, 2, D))
    d_a = g.standard_normal((2, 4, H))
    layer.forward(x_a)
    gates = layer._tape["gates"]
    layer.forward(x_b)
    assert layer._tape["gates"] is not gates
    layer.forward(x_a)
    dx, _ = layer.backward(d_a)
    expected = numeric_grad(lambda: np.sum(rnnkit.dynamic_rnn(cell, x_a)[0] * d_a), x_a)
    np.testing.assert_allclose(dx, expected, **FD_TOL)
    with pytest.raises(RuntimeError, match="forward"):
        layer.backward(d_a)


# ---- threads --------------------------------------------------------------------------

@pytest.mark.parametrize("reset_after", [False, True])
def test_identical_across_thread_counts(reset_after, restore_threads):
    """B*H = 128*512 takes the OpenMP paths of the row passes and every GEMM
    is large enough to be split into blocks (gemm.hpp)."""
    B, T, D, H = 128, 8, 40, 512
    g = rng(11)
    x = g.standard_normal((B, T, D)).astype(np.float32)
    h0 = g.standard_normal((B, H)).astype(np.float32)
    lengths = g.integers(0, T + 1, size=B)
    d_out = g.standard_normal((B, T, H)).astype(np.float32)
    d_final = g.standard_normal((B, H)).astype(np.float32)
    runs = []
    for threads in (1, 2, 1):
        rnnkit.set_num_threads(threads)
        assert rnnkit.get_num_threads() == threads
        cell = rnnkit.GRUCell(H, reset_after=reset_after, input_depth=D, seed=5)
        layer = rnnkit.RNN(cell)
        outputs, final = layer.forward(x, sequence_length=lengths, initial_state=h0)
        dx, dh0 = layer.backward(d_out, d_final)
        infer_out, infer_final = rnnkit.dynamic_rnn(cell, x, sequence_length=lengths, initial_state=h0)
        runs.append([outputs, final, dx, dh0, infer_out, infer_final] + [cell.grads[k] for k in cell.variables])
    for a, b, c in zip(*runs):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    assert np.abs(runs[0][2]).max() > 0 and np.abs(runs[0][-1]).max() > 0


# ---- boundaries -----------------------------------------------------------------------

@pytest.mark.parametrize("reset_after", [False, True])
def test_wrong_input_depth(reset_after):
    cell = rnnkit.GRUCell(3, reset_after=reset_after, input_depth=4)
    with pytest.raises(ValueError, match="inputs must have depth 4"):
        rnnkit.dynamic_rnn(cell, np.zeros((2, 5, 3), np.float32))
    with pytest.raises(ValueError, match="inputs must have depth 4"):
        cell(np.zeros((2, 5), np.float32), np.zeros((2, 3), np.float32))
    # the C++ boundary checks it too, by name
    run = _core.gru_reset_after_forward if reset_after else _core.gru_forward
    weights = core_weights(cell)
    with pytest.raises(ValueError, match=r"inputs must have shape \[\*, \*, 4\], got \[2, 5, 3\]"):
        run(np.zeros((2, 5, 3), np.float32), h0=np.zeros((2, 3), np.float32), **weights)
    with pytest.raises(ValueError, match=r"inputs must have shape \[\*, 4\], got \[2, 3\]"):  # one step
        run(np.zeros((2, 3), np.float32), h0=np.zeros((2, 3), np.float32), **weights)
    with pytest.raises(ValueError, match=r"inputs must have rank 3 \[B, T, D\] \(or rank 2 \[B, D\] for one step\)"):
        run(np.zeros(4, np.float32), h0=np.zeros((2, 3), np.float32), **weights)


@pytest.mark.parametrize("reset_after", [False, True])
def test_wrong_initial_state_shape(reset_after):
    cell = rnnkit.GRUCell(3, reset_after=reset_after, input_depth=4)
    x = np.zeros((2, 5, 4), np.float32)
    with pytest.raises(ValueError, match=r"initial_state must have shape \[2, 3\], got \[2, 4\]"):
        rnnkit.dynamic_rnn(cell, x, initial_state=np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"initial_state must have shape \[2, 3\], got \[3, 3\]"):
        rnnkit.RNN(cell).forward(x, initial_state=np.zeros((3, 3), np.float32))
    with pytest.raises(ValueError, match=r"state must have shape \[2, 3\]"):
        cell(x[:, 0], np.zeros((2, 2), np.float32))
    run = _core.gru_reset_after_forward if reset_after else _core.gru_forward
    with pytest.raises(ValueError, match=r"initial_state must have shape \[2, 3\], got \[2, 2\]"):
        run(x, h0=np.zeros((2, 2), np.float32), **core_weights(cell))


def test_wrong_variable_shapes_at_the_core():
    x = np.zeros((2, 5, 4), np.float32)
    h0 = np.zeros((2, 3), np.float32)
    tf = core_weights(rnnkit.GRUCell(3, input_depth=4))
    ra = core_weights(rnnkit.GRUCell(3, reset_after=True, input_depth=4))
    with pytest.raises(ValueError, match=r"candidate/kernel must have shape \[7, 3\], got \[7, 4\]"):
        _core.gru_forward(x, h0=h0, **dict(tf, candidate_kernel=np.zeros((7, 4), np.float32)))
    with pytest.raises(ValueError, match=r"gates/bias must have shape \[2H\]"):
        _core.gru_forward(x, h0=h0, **dict(tf, gates_bias=np.zeros(5, np.float32)))
    with pytest.raises(ValueError, match=r"gates/kernel must have shape \[D \+ 3, 6\]"):
        _core.gru_forward(x, h0=h0, **dict(tf, gates_kernel=np.zeros((7, 5), np.float32)))
    with pytest.raises(ValueError, match=r"candidate/hidden/kernel must have shape \[3, 3\]"):
        _core.gru_reset_after_forward(x, h0=h0, **dict(ra, candidate_hidden_kernel=np.zeros((4, 3), np.float32)))
    with pytest.raises(ValueError, match=r"candidate/input/kernel must have shape \[4, 3\]"):
        _core.gru_reset_after_forward(x, h0=h0, **dict(ra, candidate_input_kernel=np.zeros((3, 3), np.float32)))
    with pytest.raises(TypeError, match=r"candidate/input/bias must have dtype float32"):
        _core.gru_reset_after_forward(x, h0=h0, **dict(ra, candidate_input_bias=np.zeros(3, np.float64)))
    with pytest.raises(ValueError, match="activation"):
        _core.gru_forward(x, h0=h0, activation="softsign", **tf)


@pytest.mark.parametrize("reset_after", [False, True])
def test_backward_checks(reset_after):
    cell = make_cell(3, 4, reset_after)
    layer = rnnkit.RNN(cell)
    x = np.zeros((2, 5, 4))
    layer.forward(x)
    with pytest.raises(ValueError, match=r"d_final_state must have shape \[2, 3\]"):
        layer.backward(np.zeros((2, 5, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="d_outputs must have shape"):
        layer.backward(np.zeros((2, 4, 3)))
    # the core refuses a tape without a forward, and one from the other variant
    run = _core.gru_reset_after_backward if reset_after else _core.gru_backward
    with pytest.raises(ValueError, match="before forward"):
        run({}, np.zeros((2, 5, 3)), np.zeros((2, 3)), **core_weights(cell))
    other = make_cell(3, 4, not reset_after)
    tape = {}
    other._forward(x, None, [np.zeros((2, 3))], False, tape)
    with pytest.raises(ValueError, match="gates must have shape"):
        run(tape, np.zeros((2, 5, 3)), np.zeros((2, 3)), **core_weights(cell))


@pytest.mark.parametrize("reset_after", [False, True])
def test_zero_batch(reset_after):
    D, H = 3, 4
    cell = make_cell(H, D, reset_after)
    layer = rnnkit.RNN(cell)
    outputs, final = layer.forward(np.zeros((0, 5, D)), sequence_length=np.zeros(0, np.int32))
    assert outputs.shape == (0, 5, H) and final.shape == (0, H)
    dx, dh0 = layer.backward(np.zeros((0, 5, H)), np.zeros((0, H)))
    assert dx.shape == (0, 5, D) and dh0.shape == (0, H)
    for name, var in cell.variables.items():
        np.testing.assert_array_equal(cell.grads[name], np.zeros_like(var))


@pytest.mark.parametrize("reset_after", [False, True])
def test_zero_time_steps(reset_after):
    B, D, H = 2, 3, 4
    cell = make_cell(H, D, reset_after)
    layer = rnnkit.RNN(cell)
    h0 = rng(12).standard_normal((B, H))
    for time_major in (False, True):
        x = np.zeros(seq_shape(B, 0, D, time_major))
        outputs, final = layer.forward(x, initial_state=h0, time_major=time_major)
        assert outputs.shape == seq_shape(B, 0, H, time_major)
        np.testing.assert_array_equal(final, h0)
        d_final = rng(13).standard_normal((B, H))
        dx, dh0 = layer.backward(np.zeros(seq_shape(B, 0, H, time_major)), d_final)
        assert dx.shape == x.shape
        np.testing.assert_array_equal(dh0, d_final)
        for name, var in cell.variables.items():
            np.testing.assert_array_equal(cell.grads[name], np.zeros_like(var))
