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
