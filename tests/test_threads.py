"""Results do not depend on the thread count; the GIL is released in kernels."""

import threading

import numpy as np
import pytest

import rnnkit
from helpers import rng


def run_training_pass(cell, x, lengths):
    layer = rnnkit.RNN(cell)
    out, final = layer.forward(x, sequence_length=lengths)
    dx, _ = layer.backward(np.cos(out))
    return [out, dx] + [cell.grads[k].copy() for k in cell.variables]


@pytest.mark.parametrize("make_cell", [
    # recurrent weights over 1 MiB: each step's product split by columns,
    # its row passes by rows
    lambda: rnnkit.LSTMCell(384, num_proj=256, input_depth=64, seed=0),
    lambda: rnnkit.BasicRNNCell(1024, input_depth=64, seed=0),
    # 512 KiB to 1 MiB of weights: batch blocks when every thread gets one
    lambda: rnnkit.BasicLSTMCell(256, input_depth=64, seed=0),
    lambda: rnnkit.LSTMCell(256, use_peepholes=True, num_proj=128, cell_clip=1.0, input_depth=64, seed=0),
    # small W_h: each thread runs its own block of batch rows through all
    # steps, and the weight gradients are summed in groups of batch rows
    lambda: rnnkit.BasicLSTMCell(128, input_depth=64, seed=0),
    lambda: rnnkit.LSTMCell(96, use_peepholes=True, num_proj=40, proj_clip=0.5, input_depth=64, seed=0),
    lambda: rnnkit.BasicRNNCell(128, input_depth=64, seed=0),
    lambda: rnnkit.GRUCell(128, input_depth=64, seed=0),
    lambda: rnnkit.GRUCell(96, reset_after=True, input_depth=64, seed=0),
])
def test_identical_results_with_one_and_two_threads(make_cell, restore_threads):
    # big enough for the parallel row passes (B * gate width >= 65536) and
    # for gemm.hpp to split every product into blocks
    x = rng(0).normal(size=(64, 12, 64)).astype(np.float32)
    lengths = rng(1).integers(0, 13, size=64)
    results = {}
    for n in (1, 2):
        rnnkit.set_num_threads(n)
        assert rnnkit.get_num_threads() == n
        results[n] = run_training_pass(make_cell(), x, lengths)
    for a, b in zip(results[1], results[2]):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("make_cell", [
    lambda: rnnkit.BasicLSTMCell(128, input_depth=40, seed=0),
    # units not a multiple of the 32-unit slices; peepholes and cell_clip
    lambda: rnnkit.LSTMCell(100, use_peepholes=True, cell_clip=0.8, input_depth=40, seed=0),
    # one thread: the whole batch at each step; two: per-thread row blocks
    lambda: rnnkit.GRUCell(96, input_depth=40, seed=0),
    lambda: rnnkit.GRUCell(96, reset_after=True, input_depth=40, seed=0),
    lambda: rnnkit.BasicRNNCell(96, input_depth=40, seed=0),
])
@pytest.mark.parametrize("ids", [False, True])
@pytest.mark.parametrize("time_major", [False, True])
def test_one_thread_and_per_thread_row_blocks_agree(make_cell, ids, time_major, restore_threads):
    # With two threads and a small W_h, each thread runs a block of batch rows
    # through every step (batch_blocks). With one, an LSTM without projection
    # whose step has a large gate tile (B * 4H floats >= 256 KiB) runs its
    # steps split by hidden units (lstm_forward_by_units), and the other cells
    # the whole batch at each step. Lengths, state dropout and token ids go
    # through both, to the same bits.
    B = 176
    tokens = rng(0).integers(0, 40, size=(B, 9)).astype(np.int32)
    x = tokens if ids else rng(0).normal(size=(B, 9, 40)).astype(np.float32)
    if time_major:
        x = np.ascontiguousarray(np.swapaxes(x, 0, 1))
    lengths = rng(1).integers(0, 10, size=B)
    results = {}
    for n in (1, 2):
        rnnkit.set_num_threads(n)
        cell = make_cell()
        layer = rnnkit.RNN(rnnkit.DropoutWrapper(cell, state_keep_prob=0.7, seed=3))
        out, final = layer.forward(x, sequence_length=lengths, time_major=time_major, training=True)
        dx, _ = layer.backward(np.cos(out))
        finals = list(final) if isinstance(final, tuple) else [final]  # LSTM: (c, h)
        results[n] = [out, *finals] + ([] if ids else [dx]) + [cell.grads[k].copy() for k in cell.variables]
    for a, b in zip(results[1], results[2]):
        assert np.array_equal(a, b)


def test_set_num_threads_rejects_zero():
    with pytest.raises(ValueError, match="num_threads"):
        rnnkit.set_num_threads(0)


def test_gil_is_released_during_kernels():
    # Two Python threads running kernels at once must both finish and agree
    # with a serial run; with the GIL held this still works, so also check
    # that another Python thread makes progress while a long kernel runs.
    cell = rnnkit.BasicLSTMCell(256, input_depth=256, seed=0)
    x = rng(0).normal(size=(32, 200, 256)).astype(np.float32)
    ticks = []
    done = threading.Event()

    def ticker():
        while not done.is_set():
            ticks.append(1)
            done.wait(0.001)

    t = threading.Thread(target=ticker)
    t.start()
    try:
        before = len(ticks)
        rnnkit.dynamic_rnn(cell, x)
        during = len(ticks) - before
    finally:
        done.set()
        t.join()
    assert during > 3


# ---- sharing layers, losses and optimizers between threads -------------------------------
# A layer keeps what its forward recorded for its backward: one thread at a
# time may train it, and a second concurrent caller gets a RuntimeError
# naming the layer. Inference stays concurrent; an optimizer's updates run
# one after another, each whole.

CELL_KINDS = {
    "rnn": lambda: rnnkit.BasicRNNCell(24, input_depth=8, seed=0),
    "basic_lstm": lambda: rnnkit.BasicLSTMCell(24, input_depth=8, seed=0),
    "lstm_options": lambda: rnnkit.LSTMCell(24, use_peepholes=True, num_proj=16, cell_clip=1.0, input_depth=8, seed=0),
    "gru": lambda: rnnkit.GRUCell(24, input_depth=8, seed=0),
    "gru_reset_after": lambda: rnnkit.GRUCell(24, reset_after=True, input_depth=8, seed=0),
    "multi": lambda: rnnkit.MultiRNNCell([rnnkit.BasicLSTMCell(24, input_depth=8, seed=0),
                                          rnnkit.GRUCell(16, seed=1)]),
    "dropout": lambda: rnnkit.DropoutWrapper(rnnkit.BasicLSTMCell(24, input_depth=8, seed=0), state_keep_prob=0.8,
                                             seed=2),
    "residual": lambda: rnnkit.ResidualWrapper(rnnkit.GRUCell(8, input_depth=8, seed=0)),
}


class Held:
    """Runs `call` in a thread that stops inside `obj.<name>` (patched) until
    released, so that the main thread can try the object meanwhile."""

    def __init__(self, monkeypatch, obj, name, call, when=lambda *args: True):
        self.entered, self.release, self.result = threading.Event(), threading.Event(), None
        original = getattr(obj, name)

        def waiting(*args, **kwargs):
            if when(*args):
                self.entered.set()
                assert self.release.wait(10)
            return original(*args, **kwargs)

        monkeypatch.setattr(obj, name, waiting)
        self.thread = threading.Thread(target=self._run, args=(call,))
        self.thread.start()
        assert self.entered.wait(10)

    def _run(self, call):
        self.result = call()

    def finish(self):
        self.release.set()
        self.thread.join(10)
        assert not self.thread.is_alive()
        return self.result


@pytest.mark.parametrize("kind", sorted(CELL_KINDS))
def test_rnn_refuses_a_second_thread_while_one_trains(kind, monkeypatch):
    x = rng(0).normal(size=(4, 6, 8)).astype(np.float32)
    layer = rnnkit.RNN(CELL_KINDS[kind]())
    reference, _ = rnnkit.dynamic_rnn(layer.cell, x)
    # inside forward (the training run: the one with a tape)
    held = Held(monkeypatch, rnnkit.rnn, "_run_forward", lambda: layer.forward(x),
                when=lambda cell, inputs, lengths, state, time_major, tape, *rest: tape is not None)
    with pytest.raises(RuntimeError, match="RNN is in use by another thread"):
        layer.forward(x)
    with pytest.raises(RuntimeError, match="RNN is in use by another thread"):
        layer.backward(np.ones_like(reference))
    out, _ = layer(x[:2])  # inference on the same layer and cell still runs
    assert np.array_equal(out, reference[:2])
    out, _ = held.finish()
    monkeypatch.undo()
    assert np.array_equal(out, reference)  # not training: no dropout
    # inside backward
    held = Held(monkeypatch, layer.cell, "_backward", lambda: layer.backward(np.ones_like(out)))
    with pytest.raises(RuntimeError, match="RNN is in use by another thread"):
        layer.forward(x)
    dx, _ = held.finish()
    assert dx.shape == x.shape


def test_bidirectional_dense_and_loss_refuse_a_second_thread(monkeypatch):
    import rnnkit.bidirectional as bidirectional
    import rnnkit.losses as losses
    x = rng(0).normal(size=(3, 5, 8)).astype(np.float32)
    bi = rnnkit.Bidirectional(rnnkit.GRUCell(6, input_depth=8, seed=0), rnnkit.GRUCell(6, input_depth=8, seed=1))
    held = Held(monkeypatch, bidirectional, "_prepare", lambda: bi.forward(x))
    with pytest.raises(RuntimeError, match="Bidirectional is in use by another thread"):
        bi.forward(x)
    with pytest.raises(RuntimeError, match="Bidirectional is in use by another thread"):
        bi.backward((np.ones((3, 5, 6), np.float32),) * 2)
    held.finish()

    dense = rnnkit.Dense(5, input_depth=8, seed=0)
    held = Held(monkeypatch, dense, "_prepare", lambda: dense.forward(x))
    with pytest.raises(RuntimeError, match="Dense is in use by another thread"):
        dense.forward(x)
    with pytest.raises(RuntimeError, match="Dense is in use by another thread"):
        dense.backward(np.ones((3, 5, 5), np.float32))
    assert np.array_equal(dense(x), held.finish())  # inference ran meanwhile too

    loss = rnnkit.SequenceLoss()
    logits, targets, weights = x[..., :4], np.zeros((3, 5), np.int32), np.ones((3, 5), np.float32)
    held = Held(monkeypatch, losses, "_prepare", lambda: loss.forward(logits, targets, weights))
    with pytest.raises(RuntimeError, match="SequenceLoss is in use by another thread"):
        loss.forward(logits, targets, weights)
    with pytest.raises(RuntimeError, match="SequenceLoss is in use by another thread"):
        loss.backward()
    assert held.finish() == rnnkit.sequence_loss(logits, targets, weights)


def run_together(n, work):
    """Runs work(i) in n threads started together; returns their results
    (an exception counts as a result)."""
    barrier = threading.Barrier(n)
    results = [None] * n

    def run(i):
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as e:  # noqa: BLE001 - the test inspects it
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


@pytest.mark.parametrize("kind", ["basic_lstm", "lstm_options", "gru", "gru_reset_after", "rnn", "multi"])
def test_one_layer_trained_from_several_threads_never_corrupts(kind):
    # Different shapes per thread: a tape replaced under a running kernel
    # would be freed memory. Each forward either is right or is refused.
    cell = CELL_KINDS[kind]()
    layer = rnnkit.RNN(cell)
    inputs = [rng(i).normal(size=(8 + 4 * i, 30 + 7 * i, 8)).astype(np.float32) for i in range(3)]
    references = [rnnkit.dynamic_rnn(cell, x)[0] for x in inputs]
    refused = 0
    for _ in range(6):
        results = run_together(3, lambda i: layer.forward(inputs[i])[0])
        for i, r in enumerate(results):
            if isinstance(r, RuntimeError):
                assert "RNN is in use by another thread" in str(r)
                refused += 1
            else:
                assert not isinstance(r, Exception), r
                assert np.array_equal(r, references[i])
    assert refused < 18  # some forwards ran


def test_core_forwards_sharing_one_tape_stay_memory_safe():
    # The private kernels, given one tape dict from several threads: every
    # buffer a kernel uses is held for its whole run, so replacing the dict's
    # entries meanwhile frees nothing in use (and outputs are right).
    cell = rnnkit.BasicLSTMCell(32, input_depth=8, seed=0)
    inputs = [rng(i).normal(size=(4 + 2 * i, 40 + 9 * i, 8)).astype(np.float32) for i in range(3)]
    references = [rnnkit.dynamic_rnn(cell, x)[0] for x in inputs]
    tape = {}
    for _ in range(5):
        def work(i):
            x = inputs[i]
            zeros = np.zeros((x.shape[0], 32), np.float32)
            return rnnkit._core.lstm_forward(x, *cell._kernel_variables(), zeros, zeros, None, False,
                                             *cell._kernel_options(), None, tape)[0]
        for i, out in enumerate(run_together(3, work)):
            assert np.array_equal(out, references[i])


def test_shared_cell_inference_from_several_threads_is_right():
    cell = rnnkit.BasicLSTMCell(32, input_depth=8, seed=0)
    layer = rnnkit.RNN(cell)
    model = rnnkit.Sequential([layer, rnnkit.Dense(5, input_depth=32, seed=1)])
    xs = [rng(i).normal(size=(6, 20, 8)).astype(np.float32) for i in range(4)]
    state = cell.zero_state(6)
    calls = [
        lambda x: rnnkit.dynamic_rnn(cell, x)[0],
        lambda x: cell(x[:, 0], state)[0],
        lambda x: layer(x)[0],
        lambda x: model.predict(x),
    ]
    references = [[call(x) for x in xs] for call in calls]
    for _ in range(3):
        results = run_together(16, lambda i: calls[i % 4](xs[i // 4]))
        for i, r in enumerate(results):
            assert not isinstance(r, Exception), r
            assert np.array_equal(r, references[i % 4][i // 4])


@pytest.mark.parametrize("make", [lambda: rnnkit.AdamOptimizer(0.01),
                                  lambda: rnnkit.GradientDescentOptimizer(0.01)], ids=["adam", "sgd"])
def test_optimizer_updates_from_several_threads_are_each_whole(make):
    grads = [rng(0).normal(size=(256, 128)).astype(np.float32), rng(1).normal(size=(128,)).astype(np.float32)]
    serial_opt, shared_opt = make(), make()
    serial = [np.ones((256, 128), np.float32), np.zeros(128, np.float32)]
    shared = [a.copy() for a in serial]
    threads, calls = 8, 25
    for _ in range(threads * calls):
        serial_opt.apply_gradients(list(zip(grads, serial)))

    def work(i):
        for _ in range(calls):
            shared_opt.apply_gradients(list(zip(grads, shared)))

    assert all(r is None for r in run_together(threads, work))
    if hasattr(shared_opt, "iterations"):
        assert shared_opt.iterations == threads * calls
    for a, b in zip(shared, serial):
        assert np.array_equal(a, b)


def test_a_model_trained_from_two_threads_at_once_refuses_the_second():
    # Sequential.train_step holds the model for its whole step: a second
    # thread's step would interleave with the first's layer by layer.
    x = np.random.default_rng(0).standard_normal((4, 30, 3)).astype(np.float32)
    y = np.zeros((4, 30), np.int64)
    model = rnnkit.Sequential([rnnkit.RNN(rnnkit.BasicLSTMCell(64, seed=0)), rnnkit.Dense(5, seed=1)],
                              loss=rnnkit.SequenceLoss())
    optimizer = rnnkit.GradientDescentOptimizer(0.1)
    model.train_step(x, y, None, optimizer)
    errors, entered = [], threading.Event()
    original = model._update

    def slow_update(*args):
        entered.set()
        threading.Event().wait(0.3)
        return original(*args)

    model._update = slow_update
    first = threading.Thread(target=model.train_step, args=(x, y, None, optimizer))
    first.start()
    entered.wait(5)
    try:
        model.train_step(x, y, None, optimizer)
    except RuntimeError as e:
        errors.append(str(e))
    first.join()
    assert errors and "Sequential is in use by another thread" in errors[0]


@pytest.mark.parametrize("make", ["embedding", "mse", "sparse_ce", "dense_ce"])
def test_new_layers_backward_reads_what_forward_saw(make):
    # The caller refills its arrays between forward and backward: the
    # gradients are those of the values forward saw.
    g = np.random.default_rng(3)
    if make == "embedding":
        layer = rnnkit.Embedding(7, 3, seed=0)
        ids = np.array([[1, 2], [3, 1]], np.int32)
        dy = g.standard_normal((2, 2, 3)).astype(np.float32)
        layer.forward(ids)
        ids[:] = 6
        layer.backward(dy)
        expected = np.zeros((7, 3), np.float32)
        np.add.at(expected, np.array([[1, 2], [3, 1]]), dy)
        np.testing.assert_allclose(layer.grads["embedding"], expected, rtol=1e-6)
        return
    outputs = g.standard_normal((4, 5)).astype(np.float32)
    if make == "mse":
        loss, targets = rnnkit.MeanSquaredError(), g.standard_normal((4, 5)).astype(np.float32)
    elif make == "sparse_ce":
        loss, targets = rnnkit.SoftmaxCrossEntropy(sparse=True), np.array([0, 4, 2, 1], np.int32)
    else:
        loss, targets = rnnkit.SoftmaxCrossEntropy(sparse=False), np.full((4, 5), 0.2, np.float32)
    weights = np.array([1.0, 0.5, 2.0, 1.0], np.float32) if make != "mse" else np.ones((4, 5), np.float32)
    loss.forward(outputs, targets, weights)
    expected = loss.backward()
    loss.forward(outputs, targets, weights)
    outputs[:], targets[:], weights[:] = 0, 1, 0
    np.testing.assert_array_equal(loss.backward(), expected)
