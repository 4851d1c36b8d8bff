"""set_num_threads is one process-wide count, bounded, with clear errors."""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import rnnkit
from helpers import rng


def training_pass(threads=None):
    # big enough for parallel row passes and split products (see test_threads)
    if threads is not None:
        rnnkit.set_num_threads(threads)
    cell = rnnkit.BasicLSTMCell(256, input_depth=64, seed=0)
    layer = rnnkit.RNN(cell)
    x = rng(0).normal(size=(64, 12, 64)).astype(np.float32)
    out, _ = layer.forward(x, sequence_length=rng(1).integers(0, 13, size=64))
    dx, _ = layer.backward(np.cos(out))
    return [out, dx] + [cell.grads[k].copy() for k in cell.variables]


def in_new_thread(f):
    result, errors = [], []

    def run():
        try:
            result.append(f())
        except BaseException as e:  # re-raised in the caller
            errors.append(e)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if errors:
        raise errors[0]
    return result[0]


def test_a_thread_started_later_sees_the_count(restore_threads):
    for n in (1, 3):
        rnnkit.set_num_threads(n)
        assert in_new_thread(rnnkit.get_num_threads) == n


def test_a_running_thread_sees_a_later_count(restore_threads):
    rnnkit.set_num_threads(1)
    seen, go = [], threading.Event()

    def worker():
        go.wait(10)
        seen.append(rnnkit.get_num_threads())

    t = threading.Thread(target=worker)
    t.start()
    rnnkit.set_num_threads(3)
    go.set()
    t.join()
    assert seen == [3]


def test_a_count_set_in_another_thread_applies_here(restore_threads):
    rnnkit.set_num_threads(1)
    in_new_thread(lambda: rnnkit.set_num_threads(3))
    assert rnnkit.get_num_threads() == 3


@pytest.mark.skipif(not rnnkit._core.openmp or not os.path.isdir("/proc/self/task"),
                    reason="needs OpenMP and Linux's /proc/self/task")
def test_kernels_in_a_user_thread_start_the_set_number_of_threads(restore_threads):
    # OpenMP keeps a pool per thread that opens regions: a user thread's
    # first kernel starts (count - 1) helpers, alive until that thread ends.
    # With a per-thread count this thread would start the default instead.
    rnnkit.set_num_threads(5)

    def helpers_started():
        before = len(os.listdir("/proc/self/task"))
        training_pass()
        return len(os.listdir("/proc/self/task")) - before

    assert in_new_thread(helpers_started) == 4


def test_results_in_a_user_thread_are_those_of_the_main_thread(restore_threads):
    reference = training_pass(1)
    for n in (1, 2, 3):
        rnnkit.set_num_threads(n)
        got = in_new_thread(training_pass)
        for a, b in zip(reference, got):
            assert np.array_equal(a, b)


def test_the_largest_count_runs(restore_threads):
    n = rnnkit.max_num_threads()
    assert n >= 1
    rnnkit.set_num_threads(n)
    assert rnnkit.get_num_threads() == n
    for a, b in zip(training_pass(), training_pass(1)):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("n", [0, -1, "max+1", 100000, 2**70])
def test_counts_out_of_range_are_value_errors(n, restore_threads):
    before = rnnkit.get_num_threads()
    if n == "max+1":
        n = rnnkit.max_num_threads() + 1
    expected = r"n must be > 0" if n < 1 else rf"n must be in \[1, {rnnkit.max_num_threads()}\].*"
    with pytest.raises(ValueError, match=rf"set_num_threads: {expected}, got {n}"):
        rnnkit.set_num_threads(n)
    assert rnnkit.get_num_threads() == before


@pytest.mark.parametrize("n", [True, False, 2.0, 1.5, "2", None, np.float64(2)])
def test_counts_that_are_not_ints_are_type_errors(n, restore_threads):
    before = rnnkit.get_num_threads()
    with pytest.raises(TypeError, match="set_num_threads: n must be an int"):
        rnnkit.set_num_threads(n)
    assert rnnkit.get_num_threads() == before


def test_numpy_ints_are_counts(restore_threads):
    rnnkit.set_num_threads(np.int64(1))
    assert rnnkit.get_num_threads() == 1


# A child process: OpenMP reads its wait settings once, when it loads.
SPIN_CHILD = r"""
import os, time
import numpy as np
import rnnkit
rnnkit.set_num_threads(2)
cell = rnnkit.BasicLSTMCell(256, input_depth=64, seed=0)
x = np.zeros((64, 12, 64), np.float32)
idle_cpu = []
for _ in range(7):
    rnnkit.dynamic_rnn(cell, x)
    t0 = time.process_time()
    time.sleep(0.05)
    idle_cpu.append(time.process_time() - t0)
print(os.environ.get("GOMP_SPINCOUNT"), os.environ.get("OMP_WAIT_POLICY"), min(idle_cpu))
"""


def run_spin_child(**env):
    child_env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    child_env.update(env)
    out = subprocess.run([sys.executable, "-c", SPIN_CHILD], env=child_env, capture_output=True, text=True,
                         timeout=120, check=True).stdout.split()
    return out[0], out[1], float(out[2])


@pytest.mark.skipif(not rnnkit._core.openmp, reason="needs OpenMP")
def test_idle_threads_sleep_soon_after_a_kernel():
    # libgomp's own default spins ~300000 times (milliseconds of a core) after
    # each region; rnnkit's spins ~0.1-0.3 ms and then sleeps. The least idle
    # time of several rounds: a round that another process delays spins longer.
    spin, policy, idle_cpu_s = run_spin_child()
    assert (spin, policy) == (rnnkit._wait_policy.SPIN_COUNT, "None")
    assert idle_cpu_s < 1e-3


@pytest.mark.parametrize("env", [{"GOMP_SPINCOUNT": "7"}, {"OMP_WAIT_POLICY": "active"}])
def test_the_users_wait_settings_are_kept(env):
    spin, policy, _ = run_spin_child(**env)
    assert (spin, policy) == (env.get("GOMP_SPINCOUNT", "None"), env.get("OMP_WAIT_POLICY", "None"))
