"""Checkpoints for training: dicts of named objects, optimizer state under
TF1's slot names, and a resume that is bit-identical to not stopping."""

import numpy as np
import pytest

import rnnkit
from helpers import rng

B, T, D, H, C = 3, 5, 4, 6, 7


def data(seed=0):
    x = rng(seed).normal(size=(B, T, D)).astype(np.float32)
    return x, rng(seed + 1).integers(0, C, size=(B, T)), np.ones((B, T), np.float32)


def model(seed=0):
    return rnnkit.Sequential([rnnkit.RNN(rnnkit.BasicLSTMCell(H, seed=seed)), rnnkit.Dense(C, seed=seed + 1)],
                             loss=rnnkit.SequenceLoss())


def saved_after(steps, tmp_path):
    """(model, optimizer, checkpoint path) after `steps` Adam steps."""
    x, y, w = data()
    m, opt = model(), rnnkit.AdamOptimizer(0.05)
    for _ in range(steps):
        m.train_step(x, y, w, opt)
    return m, opt, rnnkit.save(tmp_path / "ckpt", m, optimizer=opt)


def test_a_dict_of_objects_is_saved_under_their_names(tmp_path):
    rnn = rnnkit.RNN(rnnkit.BasicLSTMCell(H, input_depth=D, seed=0))
    head = rnnkit.Dense(C, input_depth=H, seed=1)
    names = rnnkit.checkpoint_names({"encoder": rnn, "head": head})
    assert names == {"encoder/rnn/basic_lstm_cell/kernel": (D + H, 4 * H),
                     "encoder/rnn/basic_lstm_cell/bias": (4 * H,),
                     "head/dense/kernel": (H, C), "head/dense/bias": (C,)}
    path = rnnkit.save(tmp_path / "two", {"encoder": rnn, "head": head})
    fresh = {"encoder": rnnkit.RNN(rnnkit.BasicLSTMCell(H, seed=5)), "head": rnnkit.Dense(C, seed=6)}
    rnnkit.load(path, fresh)  # built from the file's shapes
    for a, b in ((rnn.cell, fresh["encoder"].cell), (head, fresh["head"])):
        for name in a.variables:
            np.testing.assert_array_equal(a.variables[name], b.variables[name])
    with pytest.raises(ValueError, match="is missing 'decoder/dense/kernel'"):
        rnnkit.load(path, {"encoder": rnn, "decoder": head})
    with pytest.raises(ValueError, match="objects' names must be non-empty scope names"):
        rnnkit.checkpoint_names({"/encoder": rnn})


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_training_resumes_bit_identically_from_a_checkpoint(tmp_path, dtype):
    """Train 2 steps, save, train 3 more; against: load into fresh objects
    (other seeds) and train the same 3."""
    x, y, w = data()
    x = x.astype(dtype)

    def make(seed):
        return rnnkit.Sequential([rnnkit.RNN(rnnkit.BasicLSTMCell(H, seed=seed, dtype=dtype)),
                                  rnnkit.Dense(C, seed=seed + 1, dtype=dtype)], loss=rnnkit.SequenceLoss())

    a, opt_a = make(0), rnnkit.AdamOptimizer(0.05)
    for _ in range(2):
        a.train_step(x, y, w, opt_a)
    path = rnnkit.save(tmp_path / "ckpt", a, optimizer=opt_a)
    losses_a = [a.train_step(x, y, w, opt_a) for _ in range(3)]

    b, opt_b = make(7), rnnkit.AdamOptimizer(0.05)
    b.predict(x)  # built, with other values
    rnnkit.load(path, b, optimizer=opt_b)
    assert opt_b.iterations == 2
    losses_b = [b.train_step(x, y, w, opt_b) for _ in range(3)]
    assert losses_a == losses_b
    for va, vb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(va, vb)
    for (_, va), (_, vb) in zip(a.grads_and_vars(), b.grads_and_vars()):
        np.testing.assert_array_equal(opt_a.get_slot(va, "m"), opt_b.get_slot(vb, "m"))
        np.testing.assert_array_equal(opt_a.get_slot(va, "v"), opt_b.get_slot(vb, "v"))


def dropout_model(seed):
    stack = rnnkit.MultiRNNCell([
        rnnkit.DropoutWrapper(rnnkit.BasicLSTMCell(H, seed=seed), 0.8, 0.7, 0.6, seed=seed + 10),
        rnnkit.LayerNormBasicLSTMCell(H, dropout_keep_prob=0.7, dropout_prob_seed=seed + 20, seed=seed + 1)])
    return rnnkit.Sequential([rnnkit.RNN(stack), rnnkit.Dense(C, seed=seed + 2)], loss=rnnkit.SequenceLoss())


def test_training_with_dropout_resumes_bit_identically(tmp_path):
    """The dropout seeds and call counters travel with the checkpoint, so the
    masks after a load are those the saved model would have drawn next."""
    x, y, w = data()
    a, opt_a = dropout_model(0), rnnkit.AdamOptimizer(0.05)
    for _ in range(2):
        a.train_step(x, y, w, opt_a)
    path = rnnkit.save(tmp_path / "ckpt", a, optimizer=opt_a)
    with np.load(path) as npz:
        np.testing.assert_array_equal(npz["rnnkit/dropout_streams"], np.array([[10, 2], [20, 2]], np.uint64))
    losses_a = [a.train_step(x, y, w, opt_a) for _ in range(3)]

    b, opt_b = dropout_model(7), rnnkit.AdamOptimizer(0.05)
    rnnkit.load(path, b, optimizer=opt_b)
    wrapper, layer_norm = b.layers[0].cell.cells
    assert (wrapper.seed, wrapper.calls, layer_norm.dropout_prob_seed, layer_norm.calls) == (10, 2, 20, 2)
    losses_b = [b.train_step(x, y, w, opt_b) for _ in range(3)]
    assert losses_a == losses_b
    for va, vb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(va, vb)


def test_dropout_counters_must_match_the_model(tmp_path):
    def stack(*wrapped):
        cells = [rnnkit.BasicLSTMCell(H, seed=k) for k in range(2)]
        cells = [rnnkit.DropoutWrapper(c, 0.5, seed=k) if k in wrapped else c for k, c in enumerate(cells)]
        return rnnkit.Sequential([rnnkit.RNN(rnnkit.MultiRNNCell(cells)), rnnkit.Dense(C, seed=3)],
                                 loss=rnnkit.SequenceLoss())

    x, y, w = data()
    a, opt = stack(0, 1), rnnkit.AdamOptimizer(0.05)
    a.train_step(x, y, w, opt)
    with np.load(rnnkit.save(tmp_path / "weights", a)) as npz:
        assert "rnnkit/dropout_streams" not in npz.files  # without the optimizer: TF1's names only
    path = rnnkit.save(tmp_path / "ckpt", a, optimizer=opt)
    rnnkit.load(path, stack())  # a model without dropout (inference): nothing for the counters to go to
    with pytest.raises(ValueError, match="holds the dropout counters of 2 cells, the model has 1"):
        rnnkit.load(path, stack(1))


def test_adam_state_has_tf1s_names(tmp_path):
    m, opt, path = saved_after(2, tmp_path)
    kernel = m.layers[0].cell.variables["kernel"]
    with np.load(path) as npz:
        names = set(npz.files)
        np.testing.assert_array_equal(npz["rnn/basic_lstm_cell/kernel/Adam"], opt.get_slot(kernel, "m"))
        np.testing.assert_array_equal(npz["rnn/basic_lstm_cell/kernel/Adam_1"], opt.get_slot(kernel, "v"))
        assert npz["beta1_power"].dtype == np.float32 and npz["beta1_power"] == np.float32(0.9 ** 3)
        assert npz["beta2_power"] == np.float32(0.999 ** 3)
        assert npz["global_step"] == 2
    variables = set(rnnkit.checkpoint_names(m))
    assert names == variables | {k + "/Adam" for k in variables} | {k + "/Adam_1" for k in variables} | {
        "beta1_power", "beta2_power", "global_step"}
    rnnkit.load(path, model(seed=3))  # without optimizer=, the slots are not extra keys


def test_adam_steps_from_the_beta_powers_without_global_step(tmp_path):
    _, _, path = saved_after(4, tmp_path)
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files if k != "global_step"}  # as TF1 writes it without a global step
    np.savez(tmp_path / "tf1.npz", **arrays)
    fresh = rnnkit.AdamOptimizer(0.05)
    rnnkit.load(tmp_path / "tf1.npz", model(seed=3), optimizer=fresh)
    assert fresh.iterations == 4


def test_loading_optimizer_state_from_a_file_without_it_changes_nothing(tmp_path):
    x, y, w = data()
    m = model()
    m.train_step(x, y, w, rnnkit.AdamOptimizer())
    path = rnnkit.save(tmp_path / "plain", m)
    target, opt = model(seed=3), rnnkit.AdamOptimizer()
    target.predict(x)
    before = target.get_weights()
    with pytest.raises(ValueError, match=r"has no optimizer state 'rnn/basic_lstm_cell/kernel/Adam'"):
        rnnkit.load(path, target, optimizer=opt)
    for a, b in zip(before, target.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert opt.iterations == 0 and opt.get_slot(target.layers[0].cell.variables["kernel"], "m") is None
    sgd = rnnkit.GradientDescentOptimizer(0.1)  # keeps no state: nothing to save or load
    rnnkit.load(rnnkit.save(tmp_path / "sgd", m, optimizer=sgd), target, optimizer=sgd)
    with pytest.raises(TypeError, match="optimizer must be an AdamOptimizer or GradientDescentOptimizer, got str"):
        rnnkit.save(tmp_path / "bad", m, optimizer="adam")
