"""Sequential's chains and carried state: Bidirectional outputs concatenated
for the next layer, chains that do not fit named by both layers,
final_state / initial_state, stateful models and truncated BPTT."""

import numpy as np
import pytest

import rnnkit
from helpers import assert_close, numeric_grad, rng

B, T, D, H, C = 3, 6, 4, 5, 7


def data(seed=0, steps=T):
    x = rng(seed).normal(size=(B, steps, D)).astype(np.float32)
    y = rng(seed + 1).integers(0, C, size=(B, steps))
    return x, y, np.ones((B, steps), np.float32)


def lstm_model(stateful=False, seed=0):
    return rnnkit.Sequential([rnnkit.RNN(rnnkit.BasicLSTMCell(H, seed=seed)), rnnkit.Dense(C, seed=seed + 1)],
                             loss=rnnkit.SequenceLoss(), stateful=stateful)


# ---- Bidirectional into Dense ----------------------------------------------------------------
def test_bidirectional_outputs_enter_the_next_layer_concatenated():
    x, y, w = data()

    def model():
        return rnnkit.Sequential([rnnkit.Bidirectional(rnnkit.BasicLSTMCell(H, seed=1), rnnkit.GRUCell(3, seed=2)),
                                  rnnkit.Dense(C, seed=3)], loss=rnnkit.SequenceLoss())

    a, b = model(), model()
    opt_a, opt_b = rnnkit.GradientDescentOptimizer(0.5), rnnkit.GradientDescentOptimizer(0.5)
    lengths = np.array([6, 2, 4])
    for _ in range(2):
        loss_a = a.train_step(x, y, w, opt_a, sequence_length=lengths)
        bi, dense = b.layers
        (fw, bw), _ = bi.forward(x, sequence_length=lengths)
        assert fw.shape[-1] == H and bw.shape[-1] == 3
        loss_b = b.loss.forward(dense.forward(np.concatenate([fw, bw], axis=-1)), y, w)
        d = dense.backward(b.loss.backward())
        bi.backward((d[..., :H], d[..., H:]))
        opt_b.apply_gradients(bi.grads_and_vars() + dense.grads_and_vars())
        assert loss_a == float(loss_b)
    for (ga, va), (gb, vb) in zip(a.grads_and_vars(), b.grads_and_vars()):
        assert np.array_equal(ga, gb) and np.array_equal(va, vb)
    assert a.predict(x, sequence_length=lengths).shape == (B, T, C)


# ---- chains that do not fit ----------------------------------------------------------------------
def test_a_depth_mismatch_names_both_layers_at_construction():
    with pytest.raises(ValueError, match=r"layers\[1\] \(RNN\) reads depth 5 \(its input depth\), "
                                         r"but layers\[0\] \(Dense\) outputs depth 8"):
        rnnkit.Sequential([rnnkit.Dense(8), rnnkit.RNN(rnnkit.BasicLSTMCell(4, input_depth=5))])
    with pytest.raises(ValueError, match=r"layers\[1\] \(Bidirectional\) reads depth 3 .* layers\[0\] "
                                         r"\(Bidirectional\) outputs depth 4"):
        cells = [rnnkit.BasicRNNCell(2, input_depth=3) for _ in range(4)]
        rnnkit.Sequential([rnnkit.Bidirectional(*cells[:2]), rnnkit.Bidirectional(*cells[2:])])
    with pytest.raises(ValueError, match=r"layers\[2\] \(Dense\) reads depth 9 .* layers\[1\] \(RNN\) outputs depth 4"):
        rnnkit.Sequential([rnnkit.RNN(rnnkit.BasicRNNCell(3)), rnnkit.RNN(rnnkit.BasicRNNCell(4)),
                           rnnkit.Dense(2, input_depth=9)])


def test_a_rank_mismatch_names_both_layers_at_the_first_call():
    model = rnnkit.Sequential([rnnkit.Dense(8), rnnkit.RNN(rnnkit.BasicLSTMCell(4))])
    with pytest.raises(ValueError, match=r"layers\[1\] \(RNN\) reads sequences \[B, T, D\], but layers\[0\] "
                                         r"\(Dense\) outputs rank 2"):
        model.predict(np.zeros((2, 3), np.float32))
    assert model.predict(np.zeros((2, 5, 3), np.float32)).shape == (2, 5, 4)  # a sequence fits


def test_sequential_errors():
    with pytest.raises(ValueError, match="layers must hold at least one layer"):
        rnnkit.Sequential([])
    with pytest.raises(TypeError, match=r"layers\[0\] must have forward and backward"):
        rnnkit.Sequential([object()])
    x, y, w = data()
    with pytest.raises(ValueError, match="train_step needs a loss"):
        rnnkit.Sequential([rnnkit.Dense(2)]).train_step(x, y, w, rnnkit.AdamOptimizer())
    with pytest.raises(TypeError, match="optimizer must be an rnnkit optimizer .* got NoneType"):
        lstm_model().train_step(x, y, w)


# ---- state ---------------------------------------------------------------------------------------------
def test_final_state_holds_each_recurrent_layers_state():
    x, y, w = data()
    cell = rnnkit.MultiRNNCell([rnnkit.BasicLSTMCell(H, seed=0), rnnkit.GRUCell(3, seed=1)])
    bi = rnnkit.Bidirectional(rnnkit.BasicRNNCell(2, seed=2), rnnkit.BasicRNNCell(2, seed=3))
    model = rnnkit.Sequential([rnnkit.RNN(cell), bi, rnnkit.Dense(C, seed=4)], loss=rnnkit.SequenceLoss())
    assert model.final_state is None
    model.predict(x)
    h, state = rnnkit.dynamic_rnn(cell, x)
    (_, _), (state_fw, state_bw) = rnnkit.bidirectional_dynamic_rnn(*bi.cells, h)
    first, second = model.final_state
    assert_close(first[0].c, state[0].c)
    assert_close(first[1], state[1])
    assert_close(second[0], state_fw)
    assert_close(second[1], state_bw)


def test_initial_state_is_used_and_checked():
    x, y, w = data()
    model = lstm_model()
    start = rnnkit.LSTMStateTuple(*(rng(5).normal(size=(2, B, H)).astype(np.float32)))
    h, _ = rnnkit.dynamic_rnn(model.layers[0].cell, x, initial_state=start)
    assert_close(model.predict(x, initial_state=[start]), model.layers[1](h))
    with pytest.raises(TypeError, match=r"initial_state must be a list with one state per recurrent layer \(1, like "
                                        r"final_state\), got LSTMStateTuple"):
        model.predict(x, initial_state=start)
    with pytest.raises(ValueError, match=r"initial_state must hold one state per recurrent layer \(1, like "
                                         r"final_state\), got 2"):
        model.predict(x, initial_state=[start, start])


def test_stateful_predict_in_pieces_equals_the_whole_sequence():
    x, _, _ = data(steps=8)
    whole = lstm_model().predict(x)
    model = lstm_model(stateful=True)
    pieces = [model.predict(x[:, :3]), model.predict(x[:, 3:5]), model.predict(x[:, 5:])]
    assert_close(np.concatenate(pieces, axis=1), whole)
    model.reset_states()
    assert model.final_state is None
    assert_close(model.predict(x[:, :3]), whole[:, :3])


def test_stateful_batch_size_change_is_an_error():
    x, _, _ = data()
    model = lstm_model(stateful=True)
    model.predict(x)
    with pytest.raises(ValueError, match="carries state for batches of 3 rows, got x with 2 rows: call reset_states"):
        model.predict(x[:2])
    model.reset_states()
    assert model.predict(x[:2]).shape == (2, T, C)


def test_truncated_bptt_carries_the_forward_state_and_no_gradient_into_it():
    """A stateful train_step starts from the previous call's final state (as
    the forward computed it, before the update) and matches the layers run by
    hand from that state as a constant."""
    x, y, w = data(steps=8)
    a, b = lstm_model(stateful=True), lstm_model()
    opt_a, opt_b = rnnkit.AdamOptimizer(0.05), rnnkit.AdamOptimizer(0.05)
    state = None
    for piece in (slice(0, 4), slice(4, 8)):
        xs, ys, ws = x[:, piece], y[:, piece], w[:, piece]
        loss_a = a.train_step(xs, ys, ws, opt_a)
        rnn, dense = b.layers
        h, final = rnn.forward(xs, initial_state=state)
        loss_b = b.loss.forward(dense.forward(h), ys, ws)
        rnn.backward(dense.backward(b.loss.backward()))
        opt_b.apply_gradients(rnn.grads_and_vars() + dense.grads_and_vars())
        assert loss_a == float(loss_b)
        np.testing.assert_array_equal(a.final_state[0].c, final.c)
        np.testing.assert_array_equal(a.final_state[0].h, final.h)
        state = final
    for (ga, va), (gb, vb) in zip(a.grads_and_vars(), b.grads_and_vars()):
        assert np.array_equal(ga, gb) and np.array_equal(va, vb)


def test_train_step_keeps_its_positional_signature_and_minimize_is_one_step():
    x, y, w = data()
    for make in (lambda: rnnkit.AdamOptimizer(0.05), lambda: rnnkit.GradientDescentOptimizer(0.5)):
        a, b = lstm_model(), lstm_model()
        opt_a, opt_b = make(), make()
        for _ in range(2):
            assert a.train_step(x, y, w, opt_a, None) == opt_b.minimize(b, x, y, w)
        for (ga, va), (gb, vb) in zip(a.grads_and_vars(), b.grads_and_vars()):
            assert np.array_equal(va, vb)


def test_train_step_clip_norm_clips_before_the_update():
    x, y, w = data()
    a, b = lstm_model(), lstm_model()
    a.train_step(x, y, w, rnnkit.GradientDescentOptimizer(1.0), clip_norm=0.01)
    b.forward(x)
    b.loss.forward(b.forward(x), y, w)
    b.backward(b.loss.backward())
    pairs = b.grads_and_vars()
    clipped, norm = rnnkit.clip_by_global_norm([g for g, _ in pairs], 0.01)
    assert norm > 0.01  # the clip does something
    rnnkit.GradientDescentOptimizer(1.0).apply_gradients(zip(clipped, [v for _, v in pairs]))
    for (_, va), (_, vb) in zip(a.grads_and_vars(), b.grads_and_vars()):
        np.testing.assert_array_equal(va, vb)


def test_learning_rate_changes_take_effect_at_once_and_keep_adams_state():
    """The char-rnn decay pattern: optimizer.learning_rate = ... between steps."""
    var = np.array([1.0, -2.0, 0.5])
    grads = [np.array([0.3, -0.1, 0.2]), np.array([-0.2, 0.4, 0.1]), np.array([0.1, 0.1, -0.3])]
    rates = [0.1, 0.01, 0.05]
    opt = rnnkit.AdamOptimizer(rates[0])
    ref, m, v = var.copy(), np.zeros(3), np.zeros(3)
    for t, (g, lr) in enumerate(zip(grads, rates), start=1):
        opt.learning_rate = lr
        opt.apply_gradients([(g, var)])
        lr_t = lr * np.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
        m += (g - m) * (1 - 0.9)
        v += (g * g - v) * (1 - 0.999)
        ref -= lr_t * m / (np.sqrt(v) + 1e-8)
        assert_close(var, ref)
    assert opt.iterations == 3
    with pytest.raises(ValueError, match="learning_rate must be a finite number > 0, got -1"):
        opt.learning_rate = -1
    assert opt.learning_rate == rates[-1]


# ---- the layers of issue 21 in a chain ---------------------------------------------------------------
def test_chains_with_last_outputs_and_loss_layers_name_both_layers():
    with pytest.raises(ValueError, match=r"layers\[1\] \(RNN\) reads sequences \[B, T, D\], but layers\[0\] \(RNN\) "
                                         r"outputs one vector per row \[B, H\] \(return_sequences=False\)"):
        rnnkit.Sequential([rnnkit.RNN(rnnkit.BasicLSTMCell(4), return_sequences=False),
                           rnnkit.RNN(rnnkit.BasicLSTMCell(4))])
    with pytest.raises(ValueError, match=r"the loss \(SequenceLoss\) reads logits \[B, T, C\], but layers\[1\] "
                                         r"\(Dense\) outputs rank 2"):
        rnnkit.Sequential([rnnkit.RNN(rnnkit.BasicLSTMCell(4), return_sequences=False), rnnkit.Dense(3)],
                          loss=rnnkit.SequenceLoss())
    with pytest.raises(ValueError, match=r"layers\[1\] \(Embedding\) reads integer token ids, so it must be the "
                                         r"first layer; it follows layers\[0\] \(Dense\)"):
        rnnkit.Sequential([rnnkit.Dense(3), rnnkit.Embedding(5, 3)])
    with pytest.raises(ValueError, match=r"layers\[1\] \(RNN\) reads depth 4 .* layers\[0\] \(Embedding\) outputs "
                                         r"depth 3"):
        rnnkit.Sequential([rnnkit.Embedding(5, 3), rnnkit.RNN(rnnkit.BasicLSTMCell(4, input_depth=4))])


def test_sequential_gradients_match_finite_differences_through_every_kind_of_layer():
    """Embedding -> Bidirectional (last outputs, concatenated) -> Dense ->
    sparse softmax cross-entropy, ragged lengths, float64."""
    f64 = np.float64
    ids = rng(3).integers(0, 6, size=(3, 4))
    labels = np.array([0, 4, 2])
    lengths = np.array([4, 2, 3])
    bi = rnnkit.Bidirectional(rnnkit.BasicLSTMCell(3, dtype=f64, seed=1), rnnkit.GRUCell(2, dtype=f64, seed=2),
                              return_sequences=False)
    model = rnnkit.Sequential([rnnkit.Embedding(6, 3, dtype=f64, seed=0), bi, rnnkit.Dense(5, dtype=f64, seed=3)],
                              loss=rnnkit.SoftmaxCrossEntropy(sparse=True))
    weights = np.array([1.0, 0.5, 2.0])

    def loss():
        return float(model.loss.forward(model.predict(ids, sequence_length=lengths), labels, weights))

    model.loss.forward(model.forward(ids, sequence_length=lengths), labels, weights)
    model.backward(model.loss.backward())
    analytic = [g.copy() for g, _ in model.grads_and_vars()]
    for g, (_, var) in zip(analytic, model.grads_and_vars()):
        np.testing.assert_allclose(g, numeric_grad(loss, var), rtol=1e-6, atol=1e-8)


def test_stateful_classification_with_embedding_and_two_lstm_layers():
    ids = rng(4).integers(0, 8, size=(4, 6))
    def make(stateful):
        return rnnkit.Sequential([rnnkit.Embedding(8, 5, seed=0), rnnkit.RNN(rnnkit.BasicLSTMCell(6, seed=1)),
                                  rnnkit.RNN(rnnkit.GRUCell(4, seed=2)), rnnkit.Dense(8, seed=3)],
                                 loss=rnnkit.SequenceLoss(), stateful=stateful)
    whole = make(False).predict(ids)
    model = make(True)
    assert_close(np.concatenate([model.predict(ids[:, :2]), model.predict(ids[:, 2:])], axis=1), whole)
    assert len(model.final_state) == 2
    loss = model.train_step(ids[:, :3], ids[:, 1:4], optimizer=rnnkit.AdamOptimizer(0.01))
    assert np.isfinite(loss)


def test_dropout_wrapped_cells_drop_only_in_training():
    x, y, w = data()
    cell = rnnkit.DropoutWrapper(rnnkit.BasicLSTMCell(H, seed=0), output_keep_prob=0.5, seed=3)
    model = rnnkit.Sequential([rnnkit.RNN(cell), rnnkit.Dense(C, seed=1)], loss=rnnkit.SequenceLoss())
    plain = lstm_model()
    np.testing.assert_array_equal(model.predict(x), plain.predict(x))  # inference: no dropout
    assert model.train_step(x, y, w, rnnkit.GradientDescentOptimizer(1e-9)) != \
        plain.train_step(x, y, w, rnnkit.GradientDescentOptimizer(1e-9))
