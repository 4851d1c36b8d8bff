"""End-to-end training: the hihello tutorial, Sequential's plumbing, and the
examples."""

import numpy as np
import pytest

import rnnkit
from helpers import assert_close, rng
from rnnkit.examples import hello, hihello


def test_hihello_learns_ihello_within_50_steps():
    losses, predictions = hihello.train(steps=50, seed=0, verbose=False)
    assert "ihello" in predictions
    first = predictions.index("ihello")
    assert first < 50
    assert all(p == "ihello" for p in predictions[first:])  # and keeps it
    assert losses[-1] < 0.1 * losses[0]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_hihello_is_not_a_lucky_seed(seed):
    _, predictions = hihello.train(steps=50, seed=seed, verbose=False)
    assert predictions[-1] == "ihello"


def test_hello_example_shapes(capsys):
    outputs = hello.main()
    assert outputs.shape == (3, 5, 2)
    printed = capsys.readouterr().out
    assert "(1, 5, 2)" in printed and "(3, 5, 2)" in printed


def test_train_step_equals_the_layers_composed_by_hand():
    x = rng(0).normal(size=(2, 4, 3)).astype(np.float32)
    y = rng(1).integers(0, 5, size=(2, 4))
    w = np.ones((2, 4), np.float32)

    def model():
        return rnnkit.Sequential([rnnkit.RNN(rnnkit.BasicLSTMCell(6, seed=3)), rnnkit.Dense(5, seed=4)],
                                 loss=rnnkit.SequenceLoss())

    a, opt_a = model(), rnnkit.AdamOptimizer(0.05)
    b, opt_b = model(), rnnkit.AdamOptimizer(0.05)
    for _ in range(3):
        loss_a = a.train_step(x, y, w, opt_a)
        rnn, dense = b.layers
        h, _ = rnn.forward(x)
        logits = dense.forward(h)
        loss_b = b.loss.forward(logits, y, w)
        rnn.backward(dense.backward(b.loss.backward()))
        opt_b.apply_gradients(rnn.grads_and_vars() + dense.grads_and_vars())
        assert loss_a == pytest.approx(float(loss_b), rel=0, abs=0)
    for (ga, va), (gb, vb) in zip(a.grads_and_vars(), b.grads_and_vars()):
        assert np.array_equal(va, vb) and np.array_equal(ga, gb)
    assert_close(a.predict(x), b.predict(x))


def test_sequential_predict_with_token_ids_and_lengths():
    cell = rnnkit.BasicLSTMCell(4, input_depth=6, seed=0)
    model = rnnkit.Sequential([rnnkit.RNN(cell), rnnkit.Dense(6, seed=1)], loss=rnnkit.SequenceLoss())
    ids = np.array([[1, 2, 3], [4, 5, 0]])
    lengths = np.array([3, 1])
    logits = model.predict(ids, sequence_length=lengths)
    assert logits.shape == (2, 3, 6)
    assert_close(logits, model.predict(rnnkit.one_hot(ids, 6), sequence_length=lengths))
    loss = model.train_step(ids, ids, (np.arange(3) < lengths[:, None]).astype(np.float32),
                            rnnkit.AdamOptimizer(0.1), sequence_length=lengths)
    assert np.isfinite(loss)

def test_two_layer_char_model_learns_the_sentence():
    from rnnkit.examples import sentence
    losses, accuracy, text = sentence.train(steps=150, seed=0, verbose=False)
    assert losses[-1] < 0.1 * losses[0]
    assert accuracy > 0.85
    assert "build a ship" in text
