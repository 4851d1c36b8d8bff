"""DropoutWrapper: inverted dropout on inputs, outputs and state (never an
LSTM's c), only while training, variational masks, seeds, gradients."""

import numpy as np
import pytest

import rnnkit
from helpers import FD_TOL, assert_close, numeric_grad, rng
import reference as ref
from test_multi_and_residual import ref_step_for


def masks_of(layer):
    """(input mask, output mask, flat state masks) recorded by the last forward."""
    tape = layer._tape
    inp, out = tape["masks"]
    inner = tape["inner"]
    return inp, out, inner.get("state_mask")


def reference_with_masks(cell, x, lengths, state, time_major, inp, out_mask, state_mask, variational):
    """TF's DropoutWrapper step by step: x*mi -> cell -> (h*ms as the carried state), output*mo."""
    step = ref_step_for(cell)
    droppable = cell._state_droppable()

    def at(mask, t):
        if mask is None:
            return None
        if variational:
            return mask
        return mask[t] if time_major else mask[:, t]

    xs = np.swapaxes(x, 0, 1) if time_major else x
    B, T = xs.shape[:2]
    L = np.full(B, T) if lengths is None else lengths
    outs = []
    for t in range(T):
        xt = xs[:, t] * (at(inp, t) if inp is not None else 1)
        o, new = step(xt, state)
        new = tuple(n * at(state_mask, t) if (d and state_mask is not None) else n for n, d in zip(new, droppable))
        if out_mask is not None:
            o = o * at(out_mask, t)
        live = (t < L)[:, None]
        outs.append(np.where(live, o, 0))
        state = tuple(np.where(live, n, s) for n, s in zip(new, state))
    out = np.stack(outs, 1)
    return (np.swapaxes(out, 0, 1) if time_major else out), state


@pytest.mark.parametrize("make", [lambda dt: rnnkit.BasicLSTMCell(4, dtype=dt, seed=1),
                                  lambda dt: rnnkit.BasicRNNCell(4, dtype=dt, seed=1),
                                  lambda dt: rnnkit.LSTMCell(4, num_proj=3, dtype=dt, seed=1),
                                  lambda dt: rnnkit.GRUCell(4, dtype=dt, seed=1),
                                  lambda dt: rnnkit.GRUCell(4, reset_after=True, dtype=dt, seed=1)],
                         ids=["lstm", "rnn", "lstm_proj", "gru", "gru_reset_after"])
@pytest.mark.parametrize("variational", [False, True])
@pytest.mark.parametrize("time_major", [False, True])
def test_matches_reference_with_the_recorded_masks(make, variational, time_major):
    dtype = np.float64
    inner = make(dtype)
    cell = rnnkit.DropoutWrapper(inner, 0.7, 0.6, 0.5, variational_recurrent=variational, seed=3)
    B, T, D = 3, 5, 4
    x = rng(0).normal(size=(T, B, D) if time_major else (B, T, D))
    lengths = np.array([5, 3, 0])
    layer = rnnkit.RNN(cell)
    out, final = layer.forward(x, lengths, time_major=time_major, training=True)
    inp, out_mask, state_mask = masks_of(layer)
    if variational:
        assert inp.shape == (B, D) and out_mask.shape == (B, inner.output_size)
    for m, keep in ((inp, 0.7), (out_mask, 0.6), (state_mask, 0.5)):
        assert set(np.unique(m)) <= {0.0, 1.0 / keep} and (m == 0).any() and (m > 0).any()
    zeros = tuple(np.zeros((B, w)) for w in cell._state_widths())
    r_out, r_final = reference_with_masks(inner, x, lengths, zeros, time_major, inp, out_mask, state_mask, variational)
    assert_close(out, r_out)
    for a, b in zip(cell._flatten_state(final, B), r_final):
        assert_close(a, b)


def test_inactive_unless_training():
    inner = rnnkit.BasicLSTMCell(4, seed=1)
    cell = rnnkit.DropoutWrapper(inner, 0.5, 0.5, 0.5, seed=0)
    x = rng(1).normal(size=(2, 3, 4)).astype(np.float32)
    plain, _ = rnnkit.dynamic_rnn(inner, x)
    assert np.array_equal(rnnkit.dynamic_rnn(cell, x)[0], plain)
    assert np.array_equal(rnnkit.RNN(cell).forward(x)[0], plain)            # training defaults to False
    assert not np.array_equal(rnnkit.RNN(cell).forward(x, training=True)[0], plain)
    y, _ = cell(x[:, 0], cell.zero_state(2))
    assert np.array_equal(y, plain[:, 0])


def test_lstm_c_is_never_dropped():
    inner = rnnkit.BasicLSTMCell(5, seed=1)
    cell = rnnkit.DropoutWrapper(inner, state_keep_prob=0.3, seed=0)
    layer = rnnkit.RNN(cell)
    layer.forward(rng(0).normal(size=(4, 6, 3)), training=True)
    assert cell._state_droppable() == [False, True]
    _, _, state_mask = masks_of(layer)
    assert state_mask.shape == (4, 6, 5)  # a mask for h only; c gets none
    assert "state_mask" in layer._tape["inner"] and layer._tape["inner"]["c"] is not None


def test_seed_makes_masks_reproducible():
    x = rng(0).normal(size=(2, 5, 3)).astype(np.float32)
    run = lambda seed: rnnkit.RNN(rnnkit.DropoutWrapper(rnnkit.BasicLSTMCell(4, seed=0), 0.5, 0.5, 0.5, seed=seed)
                                  ).forward(x, training=True)[0]
    assert np.array_equal(run(7), run(7))
    assert not np.array_equal(run(7), run(8))


@pytest.mark.parametrize("name", ["input_keep_prob", "output_keep_prob", "state_keep_prob"])
@pytest.mark.parametrize("bad", [0.0, -0.5, 1.5])
def test_keep_probability_outside_unit_interval(name, bad):
    with pytest.raises(ValueError, match=rf"{name} must lie in \(0, 1\], got {bad}"):
        rnnkit.DropoutWrapper(rnnkit.BasicRNNCell(2), **{name: bad})


@pytest.mark.parametrize("variational", [False, True])
def test_gradients_with_fixed_masks(variational):
    B, T, D = 2, 4, 3
    stack = rnnkit.MultiRNNCell([
        rnnkit.DropoutWrapper(rnnkit.BasicLSTMCell(3, dtype=np.float64, seed=1), 0.8, 0.7, 0.6,
                              variational_recurrent=variational, seed=5),
        rnnkit.DropoutWrapper(rnnkit.GRUCell(3, dtype=np.float64, seed=2), 0.9, 0.5, 0.5,
                              variational_recurrent=variational, seed=6),
        rnnkit.DropoutWrapper(rnnkit.GRUCell(2, reset_after=True, dtype=np.float64, seed=4), 0.9, 0.5, 0.5,
                              variational_recurrent=variational, seed=7),
    ])
    r = rng(2)
    x = r.normal(size=(B, T, D))
    lengths = np.array([4, 2])
    rnnkit.dynamic_rnn(stack, x)
    w_out = r.normal(size=(B, T, 2))
    w_fin = [r.normal(size=(B, w)) for w in stack._state_widths()]

    def reseed():  # every forward draws the masks of call 0
        for c in stack.cells:
            c.calls = 0

    def f():
        reseed()
        out, fin = rnnkit.RNN(stack).forward(x, lengths, training=True)
        return np.sum(out * w_out) + sum(np.sum(a * w) for a, w in zip(stack._flatten_state(fin, B), w_fin))

    reseed()
    layer = rnnkit.RNN(stack)
    layer.forward(x, lengths, training=True)
    dx, _ = layer.backward(w_out, stack._pack_state(w_fin))
    for name, var in stack.variables.items():
        assert_close(stack.grads[name], numeric_grad(f, var), **FD_TOL, err_msg=name)
    assert_close(dx, numeric_grad(f, x), **FD_TOL)


def test_token_ids_with_input_dropout():
    cell = rnnkit.DropoutWrapper(rnnkit.BasicLSTMCell(3, input_depth=5, seed=0), input_keep_prob=0.5, seed=1)
    layer = rnnkit.RNN(cell)
    out, _ = layer.forward(np.array([[0, 4, 2]]), training=True)
    dx, _ = layer.backward(np.ones_like(out))
    assert dx is None and set(cell.grads) == {"kernel", "bias"}


def test_train_step_uses_dropout():
    cell = rnnkit.DropoutWrapper(rnnkit.BasicLSTMCell(4, seed=0), output_keep_prob=0.5, seed=0)
    model = rnnkit.Sequential([rnnkit.RNN(cell), rnnkit.Dense(3, seed=1)], loss=rnnkit.SequenceLoss())
    x = rng(0).normal(size=(2, 3, 2)).astype(np.float32)
    y = np.zeros((2, 3), int)
    w = np.ones((2, 3), np.float32)
    before = float(rnnkit.sequence_loss(model.predict(x), y, w))  # no dropout in predict
    loss = model.train_step(x, y, w, rnnkit.GradientDescentOptimizer(1e-30))
    assert loss != pytest.approx(before, rel=1e-6)


# ---- counter-based masks: the rule, the split, the seed ---------------------------------
def _wrapper(variational=False, seed=11, dtype=np.float64):
    return rnnkit.DropoutWrapper(rnnkit.BasicLSTMCell(4, dtype=dtype, seed=1), 0.7, 0.6, 0.5,
                                 variational_recurrent=variational, seed=seed)


def _masks(cell, x, time_major=False):
    """(input, output, h) masks of one training forward, batch-major."""
    layer = rnnkit.RNN(cell)
    layer.forward(x, time_major=time_major, training=True)
    masks = masks_of(layer)
    if time_major and not cell.variational_recurrent:
        masks = tuple(np.swapaxes(m, 0, 1) for m in masks)
    return masks


@pytest.mark.parametrize("variational", [False, True])
@pytest.mark.parametrize("time_major", [False, True])
def test_masks_follow_the_documented_rule(variational, time_major):
    B, T, D = 3, 4, 5
    cell = _wrapper(variational)
    cell.calls, cell.first_row = 6, 10
    x = rng(0).normal(size=(T, B, D) if time_major else (B, T, D))
    masks = _masks(cell, x, time_major)
    assert cell.calls == 7 and cell.first_row == 10
    for place, keep, mask, width in ((0, 0.7, masks[0], D), (1, 0.6, masks[1], 4), (3, 0.5, masks[2], 4)):
        per_row = width if variational else T * width
        draws = rnnkit.random.uniforms(rnnkit.random.subseed(11, 6, place), (10 + B) * per_row)[10 * per_row:]
        expected = np.where(draws < keep, 1.0 / keep, 0.0).reshape(mask.shape)
        assert np.array_equal(mask, expected), place


@pytest.mark.parametrize("variational", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_rows_masks_do_not_depend_on_the_batch_split(variational, dtype):
    """Rows [0, 7) in one call, and in calls of rows [0, 2), [2, 5), [5, 7)
    that start at the same counter with their first row: the same masks, and
    outputs within rounding."""
    x = rng(1).normal(size=(7, 4, 3)).astype(dtype)
    whole = _wrapper(variational, dtype=dtype)
    layer = rnnkit.RNN(whole)
    whole_out, _ = layer.forward(x, training=True)
    whole_masks = masks_of(layer)
    part = _wrapper(variational, dtype=dtype)
    parts, outs = [], []
    for a, b in ((0, 2), (2, 5), (5, 7)):
        part.calls, part.first_row = 0, a
        layer = rnnkit.RNN(part)
        outs.append(layer.forward(x[a:b], training=True)[0])
        parts.append(masks_of(layer))
    for i, mask in enumerate(whole_masks):
        assert np.array_equal(np.concatenate([p[i] for p in parts]), mask), i
    assert_close(np.concatenate(outs), whole_out)
    assert whole.calls == part.calls == 1


def test_the_same_seed_and_call_reproduce_the_masks():
    x = rng(2).normal(size=(2, 5, 3))
    one, two, other = _wrapper(seed=7), _wrapper(seed=7), _wrapper(seed=8)
    first = [_masks(one, x) for _ in range(3)]
    assert one.calls == 3
    rnnkit.RNN(one).forward(x)  # inference draws nothing
    assert one.calls == 3
    for call, masks in enumerate(first):
        assert all(np.array_equal(a, b) for a, b in zip(_masks(two, x), masks)), call
    assert not np.array_equal(first[0][0], first[1][0])  # every call draws new masks
    one.calls = 1  # replays call 1
    assert all(np.array_equal(a, b) for a, b in zip(_masks(one, x), first[1]))
    assert not np.array_equal(_masks(other, x)[0], first[0][0])
    fresh = [rnnkit.DropoutWrapper(rnnkit.BasicRNNCell(2), 0.5).seed for _ in range(2)]
    assert fresh[0] != fresh[1] and all(0 <= s < 2**64 for s in fresh)


@pytest.mark.parametrize("name, value, error, message", [
    ("calls", -1, ValueError, "calls must be >= 0, got -1"),
    ("first_row", 1.5, TypeError, "first_row must be an int"),
])
def test_bad_stream_position(name, value, error, message):
    with pytest.raises(error, match=message):
        setattr(_wrapper(), name, value)


@pytest.mark.parametrize("seed, error, message", [
    (1.5, TypeError, r"seed must be an int in \[0, 2\*\*64\), got float"),
    (-1, ValueError, r"seed must lie in \[0, 2\*\*64\), got -1"),
])
def test_bad_seed(seed, error, message):
    with pytest.raises(error, match=message):
        rnnkit.DropoutWrapper(rnnkit.BasicRNNCell(2), seed=seed)


def _wrapped_gru():
    return rnnkit.DropoutWrapper(rnnkit.GRUCell(6, dtype=np.float64, seed=2), 0.7, 0.6, 0.5, seed=5)


def _layer_norm_lstm():  # its own candidate dropout, drawn in its kernel
    return rnnkit.LayerNormBasicLSTMCell(6, dropout_keep_prob=0.6, dropout_prob_seed=8, dtype=np.float64, seed=2)


@pytest.mark.parametrize("make_cell,groups", [(_wrapped_gru, 4), (_layer_norm_lstm, 3)])
def test_grouped_fit_draws_the_masks_of_plain_fit(make_cell, groups):
    """fit(groups=...) gives each group the step's counter and its first row:
    the masks of plain fit, so the weights agree to float64 rounding."""
    r = rng(3)
    x, y = r.normal(size=(12, 5, 3)), r.integers(0, 4, (12, 5))
    results = []
    for g in (None, groups):
        cell = make_cell()
        model = rnnkit.Sequential([rnnkit.RNN(cell), rnnkit.Dense(4, dtype=np.float64, seed=3)],
                                  loss=rnnkit.SequenceLoss())
        model.fit(x, y, optimizer=rnnkit.AdamOptimizer(0.05), epochs=2, batch_size=6, seed=1, verbose=0,
                  groups=g)
        results.append(model.get_weights())
        assert cell.calls == 4 and cell.first_row == 0
    for a, b in zip(*results):
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12)
