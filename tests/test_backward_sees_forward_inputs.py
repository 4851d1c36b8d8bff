"""backward uses the values that forward saw: refilling the caller's input
arrays (inputs, lengths, initial state, targets, weights) between forward and
backward changes no gradient."""

import numpy as np
import pytest

import rnnkit
from helpers import cell_makers, rng

KINDS = dict(cell_makers(6, 5))
KINDS["multi"] = lambda dt: rnnkit.MultiRNNCell([rnnkit.BasicLSTMCell(6, input_depth=5, dtype=dt, seed=1),
                                                 rnnkit.GRUCell(4, dtype=dt, seed=2)])
KINDS["dropout"] = lambda dt: rnnkit.DropoutWrapper(rnnkit.BasicLSTMCell(6, input_depth=5, dtype=dt, seed=1),
                                                    input_keep_prob=0.7, state_keep_prob=0.8, seed=3)
KINDS["residual"] = lambda dt: rnnkit.ResidualWrapper(rnnkit.GRUCell(5, input_depth=5, dtype=dt, seed=1))


def training_pass(cell, x, lengths, state, refill):
    """forward, then `refill` (which scribbles on the caller's arrays), then backward."""
    layer = rnnkit.RNN(cell)
    out, final = layer.forward(x, sequence_length=lengths, initial_state=state, training=True)
    d_out = np.cos(out)
    refill()
    dx, d_state = layer.backward(d_out)
    flat_state = [a for s in (d_state if isinstance(d_state, tuple) else (d_state,))
                  for a in (s if isinstance(s, tuple) else (s,))]
    grads = [cell.grads[k].copy() for k in cell.variables]
    return ([] if dx is None else [dx]) + flat_state + grads


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("ids", [False, True], ids=["floats", "token_ids"])
def test_refilled_inputs_change_no_gradient(kind, ids):
    if ids and kind == "residual":
        pytest.skip("ResidualWrapper takes float inputs only")
    g = rng(0)
    x = g.integers(0, 5, size=(3, 7)).astype(np.int32) if ids else g.normal(size=(3, 7, 5)).astype(np.float32)
    lengths = np.array([7, 2, 5], np.int32)
    cell = KINDS[kind](np.float32)
    state = cell.zero_state(3)
    flat = [a for s in (state if isinstance(state, tuple) else (state,)) for a in (s if isinstance(s, tuple) else (s,))]
    for a in flat:
        a[...] = g.normal(size=a.shape)

    def scribble():
        x[...] = 1 if ids else g.normal(size=x.shape)
        lengths[...] = [1, 7, 0]
        for a in flat:
            a[...] = 3.0

    saved = (x.copy(), lengths.copy(), [a.copy() for a in flat])
    clean = training_pass(KINDS[kind](np.float32), x, lengths, state, lambda: None)
    x[...], lengths[...] = saved[0], saved[1]
    for a, b in zip(flat, saved[2]):
        a[...] = b
    refilled = training_pass(KINDS[kind](np.float32), x, lengths, state, scribble)
    assert len(clean) == len(refilled)
    for a, b in zip(clean, refilled):
        assert np.array_equal(a, b)


def test_bidirectional_dense_and_loss_use_what_forward_saw():
    g = rng(1)

    def run(refill):
        x = g_x.copy()
        lengths = np.array([4, 2], np.int32)
        targets = np.array([[0, 1, 2, 0], [1, 1, 0, 2]], np.int64)
        weights = np.ones((2, 4), np.float32)
        bi = rnnkit.Bidirectional(rnnkit.BasicLSTMCell(4, input_depth=3, seed=0),
                                  rnnkit.GRUCell(4, input_depth=3, seed=1))
        dense = rnnkit.Dense(3, input_depth=8, seed=2)
        loss = rnnkit.SequenceLoss()
        (fw, bw), _ = bi.forward(x, sequence_length=lengths)
        h = np.concatenate([fw, bw], axis=-1)
        logits = dense.forward(h)
        loss.forward(logits, targets, weights)
        if refill:
            x[...] = 5.0
            lengths[...] = [1, 4]
            h[...] = -2.0
            logits_in = logits  # the loss's logits are its own (the softmax is kept)
            logits_in[...] = 0.0
            targets[...] = 2
            weights[...] = 0.5
        d_logits = loss.backward()
        d_h = dense.backward(d_logits)
        dx = bi.backward((d_h[..., :4], d_h[..., 4:]))
        return [d_logits, d_h, dx] + [dense.grads[k] for k in ("kernel", "bias")] + \
            [bi.grads[k] for k in sorted(bi.grads)]

    g_x = g.normal(size=(2, 4, 3)).astype(np.float32)
    for a, b in zip(run(False), run(True)):
        assert np.array_equal(a, b)
