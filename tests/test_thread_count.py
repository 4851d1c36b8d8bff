"""set_num_threads is one process-wide count, bounded, with clear errors."""

import os
import subprocess
import sys
import threading
import time

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
def test_kernels_in_a_user_thread_start_the_set_number_of_threads(restore_threads, restore_adaptive):
    # OpenMP keeps a pool per thread that opens regions: a user thread's
    # first kernel starts (count - 1) helpers, alive until that thread ends.
    # With a per-thread count this thread would start the default instead.
    rnnkit.set_adaptive_threads(False)  # other processes' load must not change the count
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


SPINNER = "import os, sys\nos.sched_setaffinity(0, {int(sys.argv[1])})\nwhile True:\n    pass\n"


@pytest.fixture
def restore_adaptive():
    before = rnnkit.adaptive_threads()
    yield
    rnnkit.set_adaptive_threads(before)


@pytest.fixture
def saturated_cpus():
    """One busy process pinned to each CPU this process may use."""
    procs = [subprocess.Popen([sys.executable, "-c", SPINNER, str(cpu)]) for cpu in sorted(os.sched_getaffinity(0))]
    try:
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


def wait_for_threads_in_use(want, seconds=5.0):
    deadline = time.monotonic() + seconds
    seen = []
    while time.monotonic() < deadline:
        seen.append(rnnkit.threads_in_use())
        if seen[-1] == want:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"threads_in_use() never became {want} in {seconds} s: {seen[-20:]}")


def test_adaptive_threads_setting(restore_adaptive, restore_threads):
    assert rnnkit.adaptive_threads() is True  # the default
    rnnkit.set_num_threads(1)
    assert rnnkit.threads_in_use() == 1
    rnnkit.set_adaptive_threads(False)
    assert rnnkit.adaptive_threads() is False
    rnnkit.set_num_threads(rnnkit.max_num_threads())
    assert rnnkit.threads_in_use() == rnnkit.max_num_threads()
    for bad in (1, "yes", None):
        with pytest.raises(TypeError, match="set_adaptive_threads: on must be a bool"):
            rnnkit.set_adaptive_threads(bad)
    with pytest.raises(TypeError, match="on must be a bool"):
        rnnkit._core.set_adaptive_threads(1)


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or not os.path.exists("/proc/stat"), reason="Linux only")
@pytest.mark.skipif(not rnnkit._core.openmp, reason="needs OpenMP")
def test_busy_cpus_are_left_to_other_processes(restore_adaptive, restore_threads, saturated_cpus):
    rnnkit.set_num_threads(2)
    # every CPU busy with another process: one thread, and the same bits
    wait_for_threads_in_use(1)
    cell = rnnkit.BasicLSTMCell(64, input_depth=16, seed=0)
    x = np.random.default_rng(0).standard_normal((40, 9, 16)).astype(np.float32)
    loaded, _ = rnnkit.dynamic_rnn(cell, x)
    rnnkit.set_adaptive_threads(False)
    assert rnnkit.threads_in_use() == 2
    forced, _ = rnnkit.dynamic_rnn(cell, x)
    np.testing.assert_array_equal(loaded, forced)


ADAPTIVE_CHILD = "import rnnkit; print(rnnkit.adaptive_threads())"


@pytest.mark.parametrize("value, want", [("0", "False"), ("1", "True"), (None, "True")])
def test_adaptive_threads_environment(value, want):
    env = {k: v for k, v in os.environ.items() if k != "RNNKIT_ADAPTIVE_THREADS"}
    if value is not None:
        env["RNNKIT_ADAPTIVE_THREADS"] = value
    out = subprocess.run([sys.executable, "-c", ADAPTIVE_CHILD], env=env, capture_output=True, text=True,
                         timeout=120, check=True).stdout.strip()
    assert out == want
