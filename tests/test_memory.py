"""No per-call leaks: resident memory stays flat over many training steps
and inference calls (tapes and workspaces are reused, not regrown)."""

import gc

import numpy as np

import rnnkit
from helpers import rng


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_training_and_inference_do_not_grow_memory():
    cell = rnnkit.MultiRNNCell([rnnkit.BasicLSTMCell(64, input_depth=20, seed=0), rnnkit.GRUCell(32, seed=1)])
    model = rnnkit.Sequential([rnnkit.RNN(cell), rnnkit.Dense(20, seed=2)], loss=rnnkit.SequenceLoss())
    opt = rnnkit.AdamOptimizer(0.01)
    ids = rng(0).integers(0, 20, size=(16, 30))
    w = np.ones((16, 30), np.float32)

    def work(n):
        for _ in range(n):
            model.train_step(ids, ids, w, opt)
            model.predict(ids)
            cell(ids[:, 0], cell.zero_state(16))

    work(50)  # warm up: tapes, slots and thread scratch reach their size
    gc.collect()
    before = rss_bytes()
    work(400)
    gc.collect()
    grown = rss_bytes() - before
    # one step's arrays are ~1 MB; 400 leaked steps would be hundreds of MB
    assert grown < 8 * 2**20, f"resident memory grew by {grown / 2**20:.1f} MiB over 400 steps"
