"""Bad input to the recurrent API gets a ValueError/TypeError naming the
argument with expected and actual shape or dtype; edge sizes work."""

import re
from pathlib import Path

import numpy as np
import pytest

import rnnkit
from helpers import rng

CELLS = [
    lambda: rnnkit.BasicRNNCell(3, input_depth=4, seed=0),
    lambda: rnnkit.BasicLSTMCell(3, input_depth=4, seed=0),
    lambda: rnnkit.LSTMCell(3, num_proj=2, input_depth=4, seed=0),
]


@pytest.fixture(params=CELLS, ids=["rnn", "basic_lstm", "lstm_proj"])
def cell(request):
    return request.param()


X = np.zeros((2, 5, 4), np.float32)


def test_wrong_rank(cell):
    with pytest.raises(ValueError, match=r"inputs must have rank 3 \[B, T, D\], got shape \[5, 4\]"):
        rnnkit.dynamic_rnn(cell, X[0])
    with pytest.raises(ValueError, match=r"inputs must have rank 3 \[T, B, D\]"):
        rnnkit.dynamic_rnn(cell, X[None], time_major=True)


def test_wrong_depth(cell):
    with pytest.raises(ValueError, match=r"inputs must have depth 4.*got 3"):
        rnnkit.dynamic_rnn(cell, np.zeros((2, 5, 3), np.float32))


def test_wrong_depth_in_single_step(cell):
    with pytest.raises(ValueError, match=r"inputs must have depth 4"):
        cell(np.zeros((2, 6), np.float32), cell.zero_state(2))


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_, object, "U1"])
def test_non_float_inputs(cell, dtype):
    with pytest.raises(TypeError, match=r"inputs must be a float array.*got dtype"):
        rnnkit.dynamic_rnn(cell, np.zeros((2, 5, 4), dtype=dtype))


def test_sequence_length_wrong_shape(cell):
    with pytest.raises(ValueError, match=r"sequence_length must have shape \[2\], got \[3\]"):
        rnnkit.dynamic_rnn(cell, X, sequence_length=[5, 5, 5])
    with pytest.raises(ValueError, match=r"sequence_length must have shape \[2\], got \[2, 1\]"):
        rnnkit.dynamic_rnn(cell, X, sequence_length=[[5], [5]])


@pytest.mark.parametrize("bad", [[6, 1], [-1, 2], [2**40, 0]])
def test_sequence_length_out_of_range(cell, bad):
    with pytest.raises(ValueError, match=r"sequence_length values must lie in \[0, 5\], got"):
        rnnkit.dynamic_rnn(cell, X, sequence_length=bad)


def test_sequence_length_not_integer(cell):
    with pytest.raises(TypeError, match="sequence_length must be an integer array, got dtype float64"):
        rnnkit.dynamic_rnn(cell, X, sequence_length=[2.0, 3.0])


def test_initial_state_that_does_not_fit(cell):
    bad = cell.zero_state(3)  # batch 3, inputs have batch 2
    with pytest.raises(ValueError, match=r"initial_state.* must have shape \[2, \d\], got \[3, \d\]"):
        rnnkit.dynamic_rnn(cell, X, initial_state=bad)


def test_initial_state_of_the_wrong_structure():
    lstm = rnnkit.BasicLSTMCell(3, input_depth=4)
    with pytest.raises(TypeError, match=r"initial_state must be an LSTMStateTuple"):
        rnnkit.dynamic_rnn(lstm, X, initial_state=np.zeros((2, 3), np.float32))
    rnn = rnnkit.BasicRNNCell(3, input_depth=4)
    with pytest.raises(TypeError, match=r"initial_state must be one array \[B, 3\]"):
        rnnkit.dynamic_rnn(rnn, X, initial_state=(np.zeros((2, 3)), np.zeros((2, 3))))
    with pytest.raises(ValueError, match=r"initial_state.h must have shape \[2, 3\], got \[2, 4\]"):
        rnnkit.dynamic_rnn(lstm, X, initial_state=rnnkit.LSTMStateTuple(np.zeros((2, 3)), np.zeros((2, 4))))


def test_backward_before_forward(cell):
    layer = rnnkit.RNN(cell)
    with pytest.raises(RuntimeError, match="backward called before forward"):
        layer.backward(np.zeros((2, 5, cell.output_size), np.float32))


def test_backward_twice_needs_a_new_forward(cell):
    layer = rnnkit.RNN(cell)
    out, _ = layer.forward(X)
    layer.backward(np.ones_like(out))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        layer.backward(np.ones_like(out))


def test_backward_with_wrong_gradient_shape(cell):
    layer = rnnkit.RNN(cell)
    out, _ = layer.forward(X)
    with pytest.raises(ValueError, match=r"d_outputs must have shape \[2, 5, \d\].*got \[2, 4, \d\]"):
        layer.backward(np.ones_like(out[:, 1:]))


def test_core_checks_its_arguments_too():
    # the bindings check on their own, for callers of rnnkit._core
    kernel, bias, h0 = np.zeros((7, 3), np.float32), np.zeros(3, np.float32), np.zeros((2, 3), np.float32)
    core = rnnkit._core.basic_rnn_forward
    with pytest.raises(ValueError, match=r"sequence_length values must lie in \[0, 5\], got 7 at index 1"):
        core(X, kernel, bias, h0, np.array([1, 7], np.int32))
    with pytest.raises(TypeError, match="inputs must have dtype float32, got float64"):
        core(X.astype(np.float64), kernel, bias, h0)
    with pytest.raises(ValueError, match=r"initial_state must have shape \[2, 3\], got \[2, 4\]"):
        core(X, kernel, bias, np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"kernel must have shape \[D \+ 3, 3\], got \[2, 3\]"):
        core(X, kernel[:2], bias, h0)


@pytest.mark.parametrize("make", [rnnkit.BasicRNNCell, rnnkit.BasicLSTMCell, rnnkit.LSTMCell])
@pytest.mark.parametrize("bad", [0, -3])
def test_num_units_must_be_positive(make, bad):
    with pytest.raises(ValueError, match=f"num_units must be > 0, got {bad}"):
        make(bad)


def test_num_units_must_be_an_int():
    with pytest.raises(TypeError, match="num_units must be an int, got float"):
        rnnkit.BasicLSTMCell(2.5)


def test_bad_dtype_and_activation():
    with pytest.raises(TypeError, match="dtype must be float32 or float64, got int32"):
        rnnkit.BasicRNNCell(2, dtype=np.int32)
    with pytest.raises(ValueError, match="activation must be one of"):
        rnnkit.BasicRNNCell(2, activation="gelu")


def test_lstm_option_errors():
    with pytest.raises(ValueError, match="cell_clip must be > 0"):
        rnnkit.LSTMCell(2, cell_clip=-1.0)
    with pytest.raises(ValueError, match="proj_clip needs num_proj"):
        rnnkit.LSTMCell(2, proj_clip=1.0)
    with pytest.raises(ValueError, match="num_proj must be > 0"):
        rnnkit.LSTMCell(2, num_proj=0)


def test_dtype_argument_must_match_the_cell(cell):
    with pytest.raises(TypeError, match="dtype must match the cell's dtype float32, got float64"):
        rnnkit.dynamic_rnn(cell, X, dtype=np.float64)


# ---- edge sizes and non-finite values -------------------------------------------

@pytest.mark.parametrize("shape", [(0, 5, 4), (2, 0, 4), (0, 0, 4)])
def test_empty_batch_and_empty_time(cell, shape):
    x = np.zeros(shape, np.float32)
    out, final = rnnkit.dynamic_rnn(cell, x)
    assert out.shape == shape[:2] + (cell.output_size,)
    layer = rnnkit.RNN(cell)
    out, final = layer.forward(x)
    dx, d_init = layer.backward(np.ones_like(out))
    assert dx.shape == shape
    assert all(np.all(g == 0) for g in cell.grads.values())
    if shape[1] == 0:  # T = 0: the final state is the initial state, here zeros
        flat = cell._flatten_state(final, shape[0])
        assert all(a.shape[0] == shape[0] and np.all(a == 0) for a in flat)


def test_float64_inputs_to_a_float32_cell_are_converted(cell):
    out32, _ = rnnkit.dynamic_rnn(cell, X)
    out64, _ = rnnkit.dynamic_rnn(cell, X.astype(np.float64))
    assert out64.dtype == np.float32 and np.array_equal(out32, out64)


def test_nan_and_inf_propagate_as_numbers(cell):
    x = rng(0).normal(size=(3, 4, 4)).astype(np.float32)
    x[0, 1, 2] = np.nan
    x[1, 2, 0] = np.inf
    out, _ = rnnkit.dynamic_rnn(cell, x)
    assert np.isnan(out[0, 1:]).any()          # NaN reaches every later step of row 0
    assert np.all(np.isfinite(out[2]))          # row 2 is untouched
    assert np.all(np.isfinite(out[0, 0]))       # and so is row 0 before the NaN
    layer = rnnkit.RNN(cell)
    out, _ = layer.forward(x)
    dx, _ = layer.backward(np.ones_like(out))
    assert np.all(np.isfinite(dx[2]))


def test_binding_sources_build_messages_without_iostreams():
    """The extension's error messages use plain strings: built by a toolchain
    that links libstdc++ statically (a 16-core test machine's g++ wrapper),
    the first std::ostringstream segfaulted once numpy's libstdc++ was loaded,
    so every bad argument that reached the bindings crashed the process. That
    cannot be reproduced with this machine's compiler, so this checks the
    sources: no stream headers in the bindings or the kernels."""
    root = Path(__file__).resolve().parents[1]
    sources = [p for d in ("src", "cpp/include") for p in (root / d).rglob("*.[ch]pp")]
    assert sources, "sources not found next to the tests"
    streams = re.compile(r"#\s*include\s*<(sstream|iostream|ostream|istream|fstream)>")
    offenders = [str(p.relative_to(root)) for p in sources if streams.search(p.read_text())]
    assert offenders == []


# ---- one step takes one step's input -------------------------------------------

STEP_CELLS = {
    "rnn": lambda: rnnkit.BasicRNNCell(4, input_depth=4, seed=0),
    "basic_lstm": lambda: rnnkit.BasicLSTMCell(4, input_depth=4, seed=0),
    "lstm_proj": lambda: rnnkit.LSTMCell(4, num_proj=3, input_depth=4, seed=0),
    "gru": lambda: rnnkit.GRUCell(4, input_depth=4, seed=0),
    "gru_reset_after": lambda: rnnkit.GRUCell(4, reset_after=True, input_depth=4, seed=0),
    "multi": lambda: rnnkit.MultiRNNCell([rnnkit.GRUCell(4, input_depth=4, seed=0), rnnkit.BasicLSTMCell(4, seed=1)]),
    "residual": lambda: rnnkit.ResidualWrapper(rnnkit.GRUCell(4, input_depth=4, seed=0)),
    "dropout": lambda: rnnkit.DropoutWrapper(rnnkit.BasicLSTMCell(4, input_depth=4, seed=0), 0.5, 0.5, 0.5),
}


def ready_and_converted(array):
    """The array as the kernel takes it (the direct path), and as a list (converted first)."""
    return [array, array.tolist()]


@pytest.mark.parametrize("name", sorted(STEP_CELLS))
def test_a_step_refuses_a_sequence(name):
    cell = STEP_CELLS[name]()
    state = cell.zero_state(2)
    for x in ready_and_converted(np.ones((2, 5, 4), np.float32)):
        with pytest.raises(ValueError, match=r"inputs must have rank 2 \[B, D\] \(one step.*got shape \[2, 5, 4\]"):
            cell(x, state)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
@pytest.mark.parametrize("name", sorted(STEP_CELLS))
def test_a_step_refuses_a_matrix_of_token_ids(name, dtype):
    """int32 [B, D] once ran as token ids [T, B] on the kernels' own path."""
    cell = STEP_CELLS[name]()
    state = cell.zero_state(2)
    for x in ready_and_converted(np.ones((2, 4), dtype)):
        with pytest.raises(ValueError, match=r"inputs \(token ids\) of one step must have rank 1 \[B\], got shape \[2, 4\]"):
            cell(x, state)


@pytest.mark.parametrize("name", sorted(STEP_CELLS))
def test_a_step_refuses_other_ranks(name):
    cell = STEP_CELLS[name]()
    state = cell.zero_state(1)
    with pytest.raises(ValueError, match=r"inputs must have rank 2 \[B, D\].*got shape \[4\]"):
        cell(np.ones(4, np.float32), state)
    with pytest.raises(ValueError, match=r"inputs \(token ids\) of one step must have rank 1 \[B\], got shape \[\]"):
        cell(np.array(1, np.int32), state)


@pytest.mark.parametrize("name", sorted(STEP_CELLS))
def test_a_step_of_the_right_rank_still_runs(name):
    cell = STEP_CELLS[name]()
    out, _ = cell(np.ones((2, 4), np.float32), cell.zero_state(2))
    assert out.shape == (2, cell.output_size)
    if name != "residual":  # token ids have no values to add
        out, _ = cell(np.array([1, 3], np.int32), cell.zero_state(2))
        assert out.shape == (2, cell.output_size)


# ---- set_result_cache_limit ------------------------------------------------------

@pytest.mark.parametrize("bad", [1.0, 2.5, True, "64", None])
def test_cache_limit_must_be_an_int(bad):
    with pytest.raises(TypeError, match=f"nbytes must be an int, got {type(bad).__name__}"):
        rnnkit.set_result_cache_limit(bad)


@pytest.mark.parametrize("bad", [-1, 2**63, 2**70, -(2**70)])
def test_cache_limit_out_of_range_says_the_range(bad):
    with pytest.raises(ValueError, match=rf"nbytes must lie in \[0, 2\*\*63 - 1\], got {bad}"):
        rnnkit.set_result_cache_limit(bad)


def test_cache_limit_takes_the_whole_range():
    default = rnnkit._core._result_cache()[1]
    try:
        for limit in (0, np.int64(1 << 20), 2**63 - 1):
            rnnkit.set_result_cache_limit(limit)
            assert rnnkit._core._result_cache()[1] == limit
    finally:
        rnnkit.set_result_cache_limit(default)


def test_a_deep_copied_model_runs_and_trains():
    """A copy's dtype objects are copies too; the kernels take them by
    meaning (the error read "must have dtype float64, got float64")."""
    import copy
    r = np.random.default_rng(0)
    x, y = r.integers(0, 9, (4, 5)), r.integers(0, 9, (4, 5))
    make = lambda: rnnkit.Sequential([rnnkit.Embedding(9, 4, dtype=np.float64, seed=1),
                                      rnnkit.RNN(rnnkit.LSTMCell(5, dtype=np.float64, seed=2)),
                                      rnnkit.Dense(9, dtype=np.float64, seed=3)], loss=rnnkit.SequenceLoss())
    model, twin = make(), make()
    model.predict(x)
    twin.predict(x)
    copied = copy.deepcopy(model)
    assert copied.layers[1].cell.dtype is not np.dtype(np.float64)  # what made the kernels refuse it
    np.testing.assert_array_equal(copied.predict(x), model.predict(x))
    assert copied.train_step(x, y, optimizer=rnnkit.AdamOptimizer(0.1)) == \
        twin.train_step(x, y, optimizer=rnnkit.AdamOptimizer(0.1))
    for a, b in zip(copied.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_non_native_byte_order_is_refused():
    from rnnkit import _core
    kernel = np.zeros((5, 3), np.dtype(">f4"))
    bias, x, h0 = np.zeros(3, np.float32), np.zeros((2, 4, 2), np.float32), np.zeros((2, 3), np.float32)
    with pytest.raises(TypeError, match=r"kernel must have dtype float32( or float64)?, got >f4"):
        _core.basic_rnn_forward(x, kernel, bias, h0, None, False, "tanh", None, None)
