"""LayerNormBasicLSTMCell: TF1's published values, forward against the
numpy reference, every gradient against finite differences, and the cell in
every place a cell goes (stacks, layers, training, checkpoints, threads)."""

import functools

import numpy as np
import pytest

import rnnkit
from helpers import FD_TOL, assert_close, numeric_grad, rng
import reference as ref
from rnnkit.random import subseed, uniforms

NORMS = ("input", "transform", "forget", "output", "state")


def make_cell(H, D, dtype=np.float64, seed=1, **options):
    """A built cell with every variable random, so that each term of the formula shows."""
    cell = rnnkit.LayerNormBasicLSTMCell(H, input_depth=D, dtype=dtype, seed=seed, **options)
    r = rng(seed + 7)
    for name, var in cell.variables.items():
        if name.endswith("gamma"):
            cell.variables[name] = r.uniform(0.5, 1.5, var.shape).astype(dtype)
        elif name != "kernel":  # beta, bias
            cell.variables[name] = r.uniform(-0.5, 0.5, var.shape).astype(dtype)
    return cell


def reference_step(cell, **kw):
    v = {k: a.astype(np.float64) for k, a in cell.variables.items()}
    return functools.partial(ref.layer_norm_lstm_step, v, forget_bias=cell.forget_bias, layer_norm=cell.layer_norm,
                             activation=cell.activation, **kw)


# ---- TF1's own test values (contrib/rnn/python/kernel_tests/rnn_cell_test.py,
# LayerNormBasicLSTMCellTest: every kernel and bias 0.5, gains 1, shifts 0) ----
def tf_test_cell(D, layer_norm):
    half = rnnkit.initializers.constant(0.5)
    return rnnkit.LayerNormBasicLSTMCell(2, layer_norm=layer_norm, input_depth=D, kernel_initializer=half,
                                         bias_initializer=half)


@pytest.mark.parametrize("layer_norm, h0, c0, h1, c1", [
    (True, [-0.38079708, 0.38079708], [-1.0, 1.0], [-0.38079708, 0.38079708], [-1.0, 1.0]),
    (False, [0.56668288, 0.60858738], [0.8020075, 0.89599884], [0.70230919, 0.72581059], [1.17500675, 1.26892781]),
])
def test_tf1_values_two_layers(layer_norm, h0, c0, h1, c1):
    cell = rnnkit.MultiRNNCell([tf_test_cell(2, layer_norm), tf_test_cell(2, layer_norm)])
    state = (rnnkit.LSTMStateTuple(np.float32([[0.0, 0.1]]), np.float32([[0.2, 0.3]])),
             rnnkit.LSTMStateTuple(np.float32([[0.4, 0.5]]), np.float32([[0.6, 0.7]])))
    h, (s0, s1) = cell(np.ones((1, 2), np.float32), state)
    for actual, expected in ((s0.c, c0), (s0.h, h0), (s1.c, c1), (s1.h, h1), (h, h1)):
        np.testing.assert_allclose(actual, [expected], rtol=1e-5)


@pytest.mark.parametrize("layer_norm, h, c", [
    (True, [-0.38079708, 0.38079708], [-1.0, 1.0]),
    (False, [0.64121795, 0.68166804], [0.88477188, 0.98103917]),
])
def test_tf1_values_input_depth_other_than_num_units(layer_norm, h, c):
    cell = tf_test_cell(3, layer_norm)
    out, state = cell(np.ones((1, 3), np.float32), rnnkit.LSTMStateTuple(np.float32([[0, 0.1]]),
                                                                        np.float32([[0.2, 0.3]])))
    np.testing.assert_allclose(out, [h], rtol=1e-5)
    np.testing.assert_allclose(state.c, [c], rtol=1e-5)
    np.testing.assert_allclose(state.h, [h], rtol=1e-5)


# ---- forward ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("options", [{}, {"layer_norm": False}, {"forget_bias": 0.3, "activation": "relu"}])
@pytest.mark.parametrize("time_major", [False, True])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_forward_matches_reference(dtype, options, time_major, with_lengths):
    B, T, D, H = 4, 5, 3, 6  # H = 6: a short last chunk in every row pass and norm
    r = rng(3)
    cell = make_cell(H, D, dtype, **options)
    x = r.normal(size=(T, B, D) if time_major else (B, T, D)).astype(dtype)
    lengths = np.array([5, 0, 3, 1]) if with_lengths else None
    state = rnnkit.LSTMStateTuple(r.normal(size=(B, H)).astype(dtype), r.normal(size=(B, H)).astype(dtype))
    out, final = rnnkit.dynamic_rnn(cell, x, sequence_length=lengths, initial_state=state, time_major=time_major)
    ref_out, ref_final = ref.dynamic_rnn(reference_step(cell), x.astype(np.float64),
                                         tuple(s.astype(np.float64) for s in state), lengths, time_major)
    assert out.dtype == dtype and out.shape == ref_out.shape
    assert isinstance(final, rnnkit.LSTMStateTuple)
    assert_close(out, ref_out, dtype)
    assert_close(final.c, ref_final[0], dtype)
    assert_close(final.h, ref_final[1], dtype)
    if with_lengths:  # a row of length 0 keeps its initial state and outputs zeros
        assert np.all((out[:, 1] if time_major else out[1]) == 0)
        assert np.array_equal(final.c[1], state.c[1])


def test_without_layer_norm_it_is_basic_lstm_with_a_bias():
    ln = make_cell(5, 3, np.float32, layer_norm=False)
    basic = rnnkit.BasicLSTMCell(5, input_depth=3)
    basic.variables["kernel"] = ln.variables["kernel"]
    basic.variables["bias"] = ln.variables["bias"]
    x = rng(2).normal(size=(3, 4, 3)).astype(np.float32)
    out, final = rnnkit.dynamic_rnn(ln, x)
    out_b, final_b = rnnkit.dynamic_rnn(basic, x)
    assert_close(out, out_b)
    assert_close(final.c, final_b.c)
    assert list(ln.variables) == ["kernel", "bias"]


def test_variables_names_order_and_initial_values():
    cell = rnnkit.LayerNormBasicLSTMCell(4, norm_gain=0.7, norm_shift=0.2, input_depth=3, seed=0)
    assert list(cell.variables) == ["kernel"] + [f"{n}/{p}" for n in NORMS for p in ("gamma", "beta")]
    assert cell.variables["kernel"].shape == (7, 16)
    for n in NORMS:
        assert np.all(cell.variables[f"{n}/gamma"] == np.float32(0.7))
        assert np.all(cell.variables[f"{n}/beta"] == np.float32(0.2))
    limit = np.sqrt(6 / (7 + 16))
    assert 0.5 * limit < np.abs(cell.variables["kernel"]).max() <= limit
    # TF1 gives the bias no initializer: Glorot-uniform over [4H], fan_in = fan_out = 16
    bias = rnnkit.LayerNormBasicLSTMCell(4, layer_norm=False, input_depth=3, seed=0).variables["bias"]
    assert bias.shape == (16,) and 0.5 * np.sqrt(6 / 32) < np.abs(bias).max() <= np.sqrt(6 / 32)
    zeros = rnnkit.LayerNormBasicLSTMCell(4, layer_norm=False, input_depth=3,
                                          bias_initializer=rnnkit.initializers.zeros())
    assert np.all(zeros.variables["bias"] == 0)


def test_single_steps_match_the_sequence():
    cell = make_cell(3, 2, np.float32)
    x = rng(4).normal(size=(2, 3, 2)).astype(np.float32)
    out, final = rnnkit.dynamic_rnn(cell, x)
    state = cell.zero_state(2)
    for t in range(3):
        y, state = cell(x[:, t], state)
        assert_close(y, out[:, t])
    assert_close(state.c, final.c)
    assert cell.state_size == (3, 3) and cell.output_size == 3


def test_token_ids_equal_one_hot_inputs():
    cell = make_cell(4, 5, np.float32)
    ids = rng(5).integers(0, 5, size=(3, 4)).astype(np.int32)
    out_ids, final_ids = rnnkit.dynamic_rnn(cell, ids)
    out, final = rnnkit.dynamic_rnn(cell, rnnkit.one_hot(ids, 5))
    assert_close(out_ids, out)
    assert_close(final_ids.h, final.h)


# ---- gradients ---------------------------------------------------------------------------
def loss_and_grads(cell, x, lengths, state, w_out, w_c, w_h, time_major, training=False):
    layer = rnnkit.RNN(cell)
    layer.forward(x, sequence_length=lengths, initial_state=state, time_major=time_major, training=training)
    dx, d_state = layer.backward(w_out, rnnkit.LSTMStateTuple(w_c, w_h))
    return dx, d_state, dict(cell.grads)


def scalar_loss(cell, x, lengths, state, w_out, w_c, w_h, time_major, training=False):
    layer = rnnkit.RNN(cell)
    out, final = layer.forward(x, sequence_length=lengths, initial_state=state, time_major=time_major,
                               training=training)
    return np.sum(out * w_out) + np.sum(final.c * w_c) + np.sum(final.h * w_h)


@pytest.mark.parametrize("options", [{}, {"layer_norm": False}, {"forget_bias": 0.3, "activation": "sigmoid"}])
@pytest.mark.parametrize("time_major", [False, True])
def test_gradients_match_finite_differences(options, time_major):
    B, T, D, H = 3, 4, 3, 3
    r = rng(8)
    cell = make_cell(H, D, np.float64, seed=3, **options)
    x = r.normal(size=(T, B, D) if time_major else (B, T, D))
    lengths = np.array([4, 2, 0])
    state = rnnkit.LSTMStateTuple(r.normal(size=(B, H)), r.normal(size=(B, H)))
    w_out = r.normal(size=x.shape[:2] + (H,))
    w_c, w_h = r.normal(size=(B, H)), r.normal(size=(B, H))
    args = (cell, x, lengths, state, w_out, w_c, w_h, time_major)
    dx, d_state, grads = loss_and_grads(*args)
    f = lambda: scalar_loss(*args)
    assert set(grads) == set(cell.variables)
    for name, var in cell.variables.items():
        assert_close(grads[name], numeric_grad(f, var), **FD_TOL, err_msg=name)
    assert_close(dx, numeric_grad(f, x), **FD_TOL)
    assert_close(d_state.c, numeric_grad(f, state.c), **FD_TOL)
    assert_close(d_state.h, numeric_grad(f, state.h), **FD_TOL)
    pad = dx[2:, 1] if time_major else dx[1, 2:]  # nothing flows into padded steps
    assert np.all(pad == 0)


def test_gradients_with_state_dropout_from_a_wrapper():
    # DropoutWrapper's state mask reaches this cell's h; a fixed seed per call
    # gives finite differences the same masks.
    B, T, D, H = 2, 3, 2, 3
    r = rng(9)
    inner = make_cell(H, D, np.float64, seed=4)

    def wrapped():
        return rnnkit.DropoutWrapper(inner, state_keep_prob=0.6, seed=5)

    x = r.normal(size=(B, T, D))
    state = rnnkit.LSTMStateTuple(r.normal(size=(B, H)), r.normal(size=(B, H)))
    w_out, w_c, w_h = r.normal(size=(B, T, H)), r.normal(size=(B, H)), r.normal(size=(B, H))
    args = (x, None, state, w_out, w_c, w_h, False, True)
    _, d_state, grads = loss_and_grads(wrapped(), *args)
    f = lambda: scalar_loss(wrapped(), *args)
    assert_close(grads["kernel"], numeric_grad(f, inner.variables["kernel"]), **FD_TOL)
    assert_close(grads["state/gamma"], numeric_grad(f, inner.variables["state/gamma"]), **FD_TOL)
    assert_close(d_state.h, numeric_grad(f, state.h), **FD_TOL)


# ---- dropout on the candidate ------------------------------------------------------------
def documented_mask(seed, call, first_row, B, T, H, keep):
    """The cell's docstring: entry (b, t, k) of call `call` is kept when
    uniforms(subseed(seed, call) >> 11, n)[((first_row + b)·T + t)·H + k] < keep."""
    kept = uniforms(subseed(seed, call) >> 11, B * T * H, first_row * T * H).reshape(B, T, H) < keep
    return kept / keep


@pytest.mark.parametrize("time_major", [False, True])
def test_dropout_masks_the_candidate_when_training_only(time_major):
    B, T, D, H = 3, 4, 2, 5
    cell = make_cell(H, D, np.float64, seed=2, dropout_keep_prob=0.6, dropout_prob_seed=7)
    x = rng(1).normal(size=(B, T, D))
    x_in = np.ascontiguousarray(x.transpose(1, 0, 2)) if time_major else x
    out_infer, _ = rnnkit.dynamic_rnn(cell, x_in, time_major=time_major)  # inference: no dropout
    ref_out, _ = ref.dynamic_rnn(reference_step(cell), x, (np.zeros((B, H)),) * 2)
    assert_close(out_infer, ref_out.transpose(1, 0, 2) if time_major else ref_out)
    cell.calls, cell.first_row = 3, 5
    out_train, _ = rnnkit.RNN(cell).forward(x_in, time_major=time_major, training=True)
    assert cell.calls == 4
    mask = documented_mask(7, 3, 5, B, T, H, 0.6)
    assert 0 < np.count_nonzero(mask) < mask.size
    steps = iter(range(T))
    step = reference_step(cell)
    ref_train, _ = ref.dynamic_rnn(lambda x_t, s: step(x_t, s, dropout_mask=mask[:, next(steps)]), x,
                                   (np.zeros((B, H)),) * 2)
    assert_close(out_train, ref_train.transpose(1, 0, 2) if time_major else ref_train)


def test_dropout_is_reproducible_with_its_seed():
    def run(seed):
        cell = make_cell(4, 2, np.float32, seed=2, dropout_keep_prob=0.5, dropout_prob_seed=seed)
        x = rng(1).normal(size=(2, 5, 2)).astype(np.float32)
        layer = rnnkit.RNN(cell)
        return [layer.forward(x, training=True)[0] for _ in range(2)]

    a, b, c = run(3), run(3), run(4)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], a[1])  # a fresh mask at every call
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_masks_do_not_depend_on_how_a_batch_is_split(dtype):
    B, T, D, H = 6, 4, 3, 5
    x = rng(3).normal(size=(B, T, D)).astype(dtype)
    cell = make_cell(H, D, dtype, seed=2, dropout_keep_prob=0.5, dropout_prob_seed=9)
    layer = rnnkit.RNN(cell)
    whole = layer.forward(x, training=True)[0]
    parts = []
    for a, b in [(0, 2), (2, 5), (5, 6)]:
        cell.calls, cell.first_row = 0, a
        parts.append(layer.forward(x[a:b], training=True)[0])
    # the same masks: equal up to the products' rounding, which may differ with the number of rows
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.concatenate(parts), whole, **tol)
    cell.calls, cell.first_row = 0, 1  # another row's masks
    assert not np.allclose(layer.forward(x[:2], training=True)[0], whole[:2], rtol=1e-2, atol=1e-3)


def test_dropout_gradients_match_finite_differences():
    B, T, D, H = 2, 3, 2, 3
    r = rng(6)
    cell = make_cell(H, D, np.float64, seed=5, dropout_keep_prob=0.7)
    x = r.normal(size=(B, T, D))
    state = rnnkit.LSTMStateTuple(r.normal(size=(B, H)), r.normal(size=(B, H)))
    w_out, w_c, w_h = r.normal(size=(B, T, H)), r.normal(size=(B, H)), r.normal(size=(B, H))
    args = (cell, x, [3, 2], state, w_out, w_c, w_h, False, True)
    dx, d_state, grads = loss_and_grads(*args)

    def f():  # the mask of call 0 for every finite difference
        cell.calls = 0
        return scalar_loss(*args)
    for name in ("kernel", "transform/gamma", "input/beta"):
        assert_close(grads[name], numeric_grad(f, cell.variables[name]), **FD_TOL, err_msg=name)
    assert_close(dx, numeric_grad(f, x), **FD_TOL)
    assert_close(d_state.c, numeric_grad(f, state.c), **FD_TOL)


# ---- in stacks, layers and models ---------------------------------------------------------
def test_inside_multi_rnn_cell_matches_the_stacked_reference():
    B, T, D = 2, 4, 3
    cells = [make_cell(5, D, np.float32, seed=1), make_cell(4, 5, np.float32, seed=2, layer_norm=False)]
    stack = rnnkit.MultiRNNCell(cells)
    x = rng(3).normal(size=(B, T, D)).astype(np.float32)
    out, (s0, s1) = rnnkit.dynamic_rnn(stack, x, sequence_length=[4, 2])
    out0, ref0 = ref.dynamic_rnn(reference_step(cells[0]), x.astype(np.float64), (np.zeros((B, 5)),) * 2, [4, 2])
    out1, ref1 = ref.dynamic_rnn(reference_step(cells[1]), out0, (np.zeros((B, 4)),) * 2, [4, 2])
    assert_close(out, out1)
    assert_close(s0.c, ref0[0])
    assert_close(s1.h, ref1[1])
    assert "cell_0/layer_norm_basic_lstm_cell/state/gamma" in stack.variables


def test_rnn_layer_learns_with_adam():
    r = rng(0)
    x = r.normal(size=(4, 6, 3)).astype(np.float32)
    y = r.integers(0, 5, size=(4, 6))
    w = np.ones((4, 6), np.float32)
    model = rnnkit.Sequential([rnnkit.RNN(rnnkit.LayerNormBasicLSTMCell(8, input_depth=3, seed=1)), rnnkit.Dense(5, seed=2)],
                              loss=rnnkit.SequenceLoss())
    opt = rnnkit.AdamOptimizer(0.05)
    gamma = model.layers[0].cell.variables["forget/gamma"].copy()
    losses = [model.train_step(x, y, w, opt) for _ in range(30)]
    assert losses[-1] < 0.5 * losses[0]
    assert not np.array_equal(model.layers[0].cell.variables["forget/gamma"], gamma)  # the gains train too


def test_checkpoint_names_are_tf1s(tmp_path):
    cell = make_cell(3, 2, np.float32)
    names = rnnkit.checkpoint_names(rnnkit.RNN(cell))
    assert list(names) == ["rnn/layer_norm_basic_lstm_cell/kernel"] + [
        f"rnn/layer_norm_basic_lstm_cell/{n}/{p}" for n in NORMS for p in ("gamma", "beta")]
    assert names["rnn/layer_norm_basic_lstm_cell/kernel"] == (5, 12)
    assert names["rnn/layer_norm_basic_lstm_cell/state/beta"] == (3,)
    prefix = rnnkit.save_tf_checkpoint(tmp_path / "model.ckpt", rnnkit.RNN(cell))
    assert sorted(rnnkit.list_tf_checkpoint(prefix)) == sorted(names)
    other = rnnkit.LayerNormBasicLSTMCell(3, input_depth=2, seed=9)
    rnnkit.load_tf_checkpoint(prefix, rnnkit.RNN(other))
    for name, var in cell.variables.items():
        assert np.array_equal(other.variables[name], var)


def test_bit_identical_across_thread_counts(restore_threads):
    B, T, D, H = 64, 3, 8, 64  # large enough for every parallel loop to open
    cell = make_cell(H, D, np.float32, seed=4)
    r = rng(2)
    x = r.normal(size=(B, T, D)).astype(np.float32)
    lengths = r.integers(0, T + 1, size=B)
    w_out = r.normal(size=(B, T, H)).astype(np.float32)
    z = np.zeros((B, H), np.float32)
    results = []
    for n in (1, 2):
        rnnkit.set_num_threads(n)
        layer = rnnkit.RNN(cell)
        out, final = layer.forward(x, sequence_length=lengths, training=True)
        dx, d_state = layer.backward(w_out, rnnkit.LSTMStateTuple(z, z))
        results.append([out, final.c, final.h, dx, d_state.c, d_state.h] + [cell.grads[k] for k in cell.variables])
    for a, b in zip(*results):
        assert np.array_equal(a, b)


# ---- what it refuses ----------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, error, match", [
    ({"num_units": 0}, ValueError, "num_units must be > 0"),
    ({"dropout_keep_prob": 0.0}, ValueError, r"dropout_keep_prob must lie in \(0, 1\], got 0.0"),
    ({"dropout_keep_prob": 1.5}, ValueError, "dropout_keep_prob must lie in"),
    ({"dropout_keep_prob": "0.5"}, TypeError, "dropout_keep_prob must be a finite number"),
    ({"layer_norm": "yes"}, TypeError, "layer_norm must be a bool, got str"),
    ({"norm_gain": float("nan")}, TypeError, "norm_gain must be a finite number"),
    ({"norm_shift": None}, TypeError, "norm_shift must be a finite number"),
    ({"forget_bias": [1.0]}, TypeError, "forget_bias must be a finite number"),
    ({"activation": "softsign"}, ValueError, "activation must be one of"),
    ({"dtype": np.int32}, TypeError, "dtype must be float32 or float64"),
    ({"dropout_prob_seed": -1}, ValueError, r"dropout_prob_seed must lie in \[0, 2\*\*64\), got -1"),
    ({"dropout_prob_seed": 2**64}, ValueError, r"dropout_prob_seed must lie in \[0, 2\*\*64\)"),
    ({"dropout_prob_seed": 1.5}, TypeError, r"dropout_prob_seed must be an int in \[0, 2\*\*64\), got float"),
])
def test_bad_arguments_are_named(kwargs, error, match):
    kwargs = {"num_units": 3, **kwargs}
    with pytest.raises(error, match=match):
        rnnkit.LayerNormBasicLSTMCell(**kwargs)


def test_arguments_keep_tf1s_positions():
    with pytest.warns(DeprecationWarning, match="input_size is deprecated and unused"):
        cell = rnnkit.LayerNormBasicLSTMCell(3, 0.5, 7, "relu", False, 1.0, 0.0, 0.8, 11)
    assert (cell.forget_bias, cell.activation, cell.layer_norm, cell.dropout_keep_prob, cell.dropout_prob_seed) == (
        0.5, "relu", False, 0.8, 11)


def test_bad_inputs_and_states_are_named():
    cell = make_cell(3, 2, np.float32)
    with pytest.raises(ValueError, match=r"depth 2"):
        rnnkit.dynamic_rnn(cell, np.zeros((1, 2, 4), np.float32))
    with pytest.raises(ValueError, match=r"initial_state.c must have shape \[1, 3\], got \[1, 4\]"):
        rnnkit.dynamic_rnn(cell, np.zeros((1, 2, 2), np.float32),
                           initial_state=rnnkit.LSTMStateTuple(np.zeros((1, 4)), np.zeros((1, 3))))
    with pytest.raises(TypeError, match="LSTMStateTuple"):
        rnnkit.dynamic_rnn(cell, np.zeros((1, 2, 2), np.float32), initial_state=np.zeros((1, 6)))
    with pytest.raises(ValueError, match=r"input/gamma.*\[3\].*\[4\]"):
        cell.variables["input/gamma"] = np.ones(4, np.float32)


def test_onnx_export_refuses_it_by_name(tmp_path):
    pytest.importorskip("onnx", reason="ONNX export needs the onnx extra: pip install rnnkit[onnx]")
    with pytest.raises(TypeError, match="cannot export a LayerNormBasicLSTMCell"):
        rnnkit.onnx.export(rnnkit.RNN(make_cell(3, 2, np.float32)), tmp_path / "m.onnx")


def test_to_torch_refuses_it_by_name():
    pytest.importorskip("torch", reason="torch conversion needs the torch extra: pip install rnnkit[torch]")
    with pytest.raises(TypeError, match="got LayerNormBasicLSTMCell"):
        rnnkit.interop.to_torch(make_cell(3, 2, np.float32))
