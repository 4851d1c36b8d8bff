"""No per-call leaks: resident memory stays flat over many training steps
and inference calls (tapes and workspaces are reused, not regrown)."""

import gc

import numpy as np
import pytest

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


def test_large_results_reuse_freed_blocks_within_the_limit():
    # A training step's large results (>= 64 KiB) come back to a bounded
    # cache when freed, so the next step does not fault fresh pages in.
    from rnnkit import _core

    dense = rnnkit.Dense(64, input_depth=32, seed=3)
    x = rng(1).normal(size=(400, 32)).astype(np.float32)  # y: 400 x 64 floats = 100 KiB
    default_limit = _core._result_cache()[1]
    try:
        _core._result_cache(0)  # empties the cache
        _core._result_cache(default_limit)
        address = lambda a: a.__array_interface__["data"][0]  # (a.ctypes would keep a alive)
        y = dense(x)
        first, expected = address(y), y.copy()
        del y
        y = dense(x)
        assert address(y) == first and np.array_equal(y, expected)  # the same block, rewritten
        other = dense(x)  # y is alive: another block
        assert address(other) != address(y) and np.array_equal(other, expected)
        del y, other
        assert _core._result_cache()[0] == 2 * (100 << 10)
        cached, limit = _core._result_cache(150 << 10)  # room for one of the two blocks
        assert (cached, limit) == (100 << 10, 150 << 10)
        arrays = [dense(rng(2 + i).normal(size=(400 + 16 * i, 32)).astype(np.float32)) for i in range(8)]
        del arrays
        assert _core._result_cache()[0] <= 150 << 10
        rnnkit.set_result_cache_limit(0)  # keeps nothing
        assert _core._result_cache() == (0, 0)
        with pytest.raises(ValueError, match=r"nbytes must lie in \[0, 2\*\*63 - 1\], got -1"):
            rnnkit.set_result_cache_limit(-1)
        y = dense(x)
        del y
        assert _core._result_cache()[0] == 0
    finally:
        _core._result_cache(default_limit)
