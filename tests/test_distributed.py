"""rnnkit.distributed: the grouped training step in one process (no MPI
needed) against plain training; real MPI jobs (`mpiexec -n 1..4`, when
mpi4py and mpiexec are installed) against one process, bit for bit; a rank
that raises ends the whole job with its error."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import rnnkit
from rnnkit import distributed

SCRIPTS = Path(__file__).parent / "mpi_scripts"
JOB_SECONDS = 120  # a job that hangs fails the test instead


# ---- in one process ----------------------------------------------------------------------
def _lstm_model(seed, stateful=False):
    return rnnkit.Sequential([rnnkit.Embedding(9, 4, dtype=np.float64, seed=seed),
                              rnnkit.RNN(rnnkit.LSTMCell(6, dtype=np.float64, seed=seed + 1)),
                              rnnkit.Dense(9, dtype=np.float64, seed=seed + 2)],
                             loss=rnnkit.SequenceLoss(), stateful=stateful)


@pytest.mark.parametrize("stateful", [False, True])
def test_grouped_steps_follow_plain_training(stateful):
    """Groups with their share of the global normaliser add up to the whole
    batch's gradient: within float64 rounding of plain fit, and not equal to
    a run whose groups each normalise by themselves."""
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 9, (24, 5)), rng.integers(0, 9, (24, 5))
    w = rng.choice([0.0, 1.0, 3.0], (24, 5))
    w[:3] = 0.0  # a group with no weight at all
    runs = []
    for groups in (None, 5):
        model = _lstm_model(1, stateful)
        history = model.fit(x, y, w, optimizer=rnnkit.AdamOptimizer(0.05), epochs=2, batch_size=12, seed=2,
                            verbose=0, groups=groups)
        runs.append((model.get_weights(), history.history["loss"]))
    (plain, plain_loss), (grouped, grouped_loss) = runs
    for a, b in zip(plain, grouped):
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(grouped_loss, plain_loss, rtol=1e-12)
    assert any(not np.array_equal(a, b) for a, b in zip(plain, grouped))  # the grouped path really ran


def test_grouped_steps_are_bit_identical_across_thread_counts(restore_threads):
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 9, (40, 5)), rng.integers(0, 9, (40, 5))
    results = []
    for threads in (1, 2):
        rnnkit.set_num_threads(threads)
        model = _lstm_model(3)
        model.fit(x, y, optimizer=rnnkit.AdamOptimizer(0.05), batch_size=40, seed=0, verbose=0, groups=4)
        results.append(model.get_weights())
    for a, b in zip(*results):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("groups, batch_size, ranks, message", [
    (8, 6, 1, "batch_size 6 does not split into 8 gradient groups over 1 ranks"),
    (2, 32, 4, "batch_size 32 does not split into 2 gradient groups over 4 ranks"),
    (4, 3, 4, "batch_size 3 is smaller than the 4 ranks"),
])
def test_a_batch_that_does_not_split_is_an_error(groups, batch_size, ranks, message):
    with pytest.raises(ValueError, match=message):
        distributed.check_groups(groups, batch_size, ranks)


def test_fit_checks_groups_and_loss():
    rng = np.random.default_rng(2)
    x, y = rng.integers(0, 9, (6, 5)), rng.integers(0, 9, (6, 5))
    with pytest.raises(ValueError, match="batch_size 6 does not split into 8 gradient groups"):
        _lstm_model(0).fit(x, y, optimizer=rnnkit.AdamOptimizer(), batch_size=6, verbose=0, groups=8)
    with pytest.raises(ValueError, match="groups must be an int >= 1, got 0"):
        _lstm_model(0).fit(x, y, optimizer=rnnkit.AdamOptimizer(), verbose=0, groups=0)
    model = _lstm_model(0)
    model.loss = rnnkit.SequenceLoss(average_across_batch=False)
    with pytest.raises(ValueError, match="distributed training needs a scalar loss"):
        model.fit(x, y, optimizer=rnnkit.AdamOptimizer(), verbose=0, groups=2)


def test_without_mpi4py_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    monkeypatch.setattr(distributed, "_world", None)
    with pytest.raises(ImportError, match=r"pip install rnnkit\[mpi\]"):
        distributed.init()


# ---- real MPI jobs -----------------------------------------------------------------------
def _mpiexec():
    pytest.importorskip("mpi4py", reason="distributed training needs mpi4py: pip install rnnkit[mpi]")
    found = shutil.which("mpiexec", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if found is None:
        pytest.skip("no mpiexec on PATH or beside this Python: pip install rnnkit[mpi] (the mpich wheel has one)")
    return found


def _run(command, timeout=JOB_SECONDS):
    # One OpenMP thread per rank: up to 4 ranks share this machine's cores.
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)


def _job(ranks, script, *args):
    return _run([_mpiexec(), "-n", str(ranks), sys.executable, str(SCRIPTS / script), *args])


def _ok(done):
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """fit.py in one process, started without mpiexec: fit(groups=8), no MPI in the training."""
    _mpiexec()
    out = tmp_path_factory.mktemp("reference")
    _ok(_run([sys.executable, str(SCRIPTS / "fit.py"), str(out), "local"]))
    return dict(np.load(out / "rank0.npz"))


@pytest.mark.parametrize("ranks", [1, 2, 3, 4])
def test_fit_on_ranks_gives_the_bits_of_one_process(ranks, reference, tmp_path):
    """Every model of fit.py, DropoutWrapper ones (float32; float64
    variational) included, has the bits of the one-process grouped run."""
    _ok(_job(ranks, "fit.py", str(tmp_path)))
    for r in range(ranks):
        result = dict(np.load(tmp_path / f"rank{r}.npz"))
        assert sorted(result) == sorted(reference)
        for key, value in result.items():
            if key.startswith("optimizer/"):  # DistributedOptimizer: the same on every rank, close to one process
                assert np.array_equal(value, np.load(tmp_path / "rank0.npz")[key]), f"rank {r}: {key}"
                np.testing.assert_allclose(value, reference[key], rtol=1e-4, atol=1e-6, err_msg=key)
            elif key.startswith("broadcast/"):  # rank 0's values (seeded 0), as in one process
                assert np.array_equal(value, reference[key]), f"rank {r}: {key}"
            else:
                assert value.dtype == reference[key].dtype
                assert np.array_equal(value, reference[key]), f"rank {r} of {ranks}: {key} differs"


def test_a_rank_that_raises_ends_the_job_with_its_error():
    began = time.perf_counter()
    done = _job(2, "fails.py")
    assert done.returncode != 0
    assert "RuntimeError: rank 1 fails on purpose" in done.stderr + done.stdout
    assert time.perf_counter() - began < 60


def test_a_batch_that_does_not_split_over_the_ranks_fails_the_job():
    code = ("import numpy as np, rnnkit\n"
            "m = rnnkit.Sequential([rnnkit.RNN(rnnkit.GRUCell(3)), rnnkit.Dense(2)], loss=rnnkit.SequenceLoss())\n"
            "x, y = np.zeros((8, 2, 1), np.float32), np.zeros((8, 2), np.int64)\n"
            "m.fit(x, y, optimizer=rnnkit.AdamOptimizer(), batch_size=8, groups=2, verbose=0)\n")
    done = _run([_mpiexec(), "-n", "3", sys.executable, "-c", code])
    assert done.returncode != 0
    assert "batch_size 8 does not split into 2 gradient groups over 3 ranks" in done.stderr + done.stdout


def test_charrnn_under_mpiexec_trains_the_same_as_one_process(tmp_path):
    """`--groups` alone runs the grouped steps in one process; a row's dropout
    masks follow from its index in the batch, so they are exact too. Rank 0
    alone prints and writes."""
    text = tmp_path / "tiny.txt"
    text.write_text("hello world, héllo wörld!\n" * 40, encoding="utf-8")
    train = ["-m", "rnnkit.charrnn", "train", str(text), "--rnn-size", "12", "--num-layers", "2", "--seq-length", "8",
             "--batch-size", "8", "--groups", "4", "--dropout", "0.2", "--epochs", "1", "--val-frac", "0.1"]
    models = []
    for ranks in (1, 2):
        launch = [sys.executable] if ranks == 1 else [_mpiexec(), "-n", str(ranks), sys.executable]
        done = _run(launch + train + ["--save-dir", str(tmp_path / f"n{ranks}")])
        _ok(done)
        assert done.stdout.count("charrnn: saved in") == 1
        models.append(dict(np.load(tmp_path / f"n{ranks}" / "model.npz")))
    one, two = models
    assert sorted(one) == sorted(two)
    for key in one:
        assert np.array_equal(one[key], two[key]), key
