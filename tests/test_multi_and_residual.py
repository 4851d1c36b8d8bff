"""MultiRNNCell and ResidualWrapper against a step-by-step numpy reference
(TF's order: within each step layer k feeds layer k+1), and their gradients."""

import functools

import numpy as np
import pytest

import rnnkit
from helpers import FD_TOL, assert_close, numeric_grad, rng
import reference as ref


def ref_step_for(cell):
    """A reference step function (x, flat state tuple) -> (out, flat state)."""
    v = {k: a.astype(np.float64) for k, a in cell.variables.items()}
    if isinstance(cell, rnnkit.MultiRNNCell):
        steps = [ref_step_for(c) for c in cell.cells]
        sizes = [len(c._state_widths()) for c in cell.cells]

        def step(x, state):
            new, i = [], 0
            for f, n in zip(steps, sizes):
                x, s = f(x, tuple(state[i:i + n]))
                new += s
                i += n
            return x, tuple(new)
        return step
    if isinstance(cell, rnnkit.ResidualWrapper):
        inner = ref_step_for(cell.cell)

        def step(x, state):
            out, s = inner(x, state)
            return x + out, s
        return step
    if isinstance(cell, rnnkit.GRUCell):
        return functools.partial(ref.gru_step, v, reset_after=cell.reset_after, activation=cell.activation)
    if isinstance(cell, rnnkit.BasicRNNCell):
        return functools.partial(ref.basic_rnn_step, v, activation=cell.activation)
    return functools.partial(ref.lstm_step, v, forget_bias=cell.forget_bias, use_peepholes=cell.use_peepholes,
                             cell_clip=cell.cell_clip, num_proj=cell.num_proj, proj_clip=cell.proj_clip)


def make_stack(dtype=np.float64):
    return rnnkit.MultiRNNCell([
        rnnkit.BasicLSTMCell(4, dtype=dtype, seed=1),
        rnnkit.BasicRNNCell(3, dtype=dtype, seed=2),
        rnnkit.ResidualWrapper(rnnkit.LSTMCell(5, num_proj=3, use_peepholes=True, dtype=dtype, seed=3)),
    ])


def random_state(cell, B, r, dtype):
    flat = [r.normal(size=(B, w)).astype(dtype) for w in cell._state_widths()]
    return cell._pack_state(flat), tuple(a.astype(np.float64) for a in flat)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("time_major", [False, True])
def test_stack_forward_matches_reference(dtype, time_major):
    cell = make_stack(dtype)
    r = rng(0)
    B, T, D = 3, 5, 2
    x = r.normal(size=(T, B, D) if time_major else (B, T, D)).astype(dtype)
    lengths = np.array([5, 3, 0])
    state, ref_state = random_state(rnnkit.MultiRNNCell(cell.cells), B, r, dtype) if True else None
    out, final = rnnkit.dynamic_rnn(cell, x, sequence_length=lengths, initial_state=state, time_major=time_major)
    ref_out, ref_final = ref.dynamic_rnn(ref_step_for(cell), x.astype(np.float64), ref_state, lengths, time_major)
    assert isinstance(final, tuple) and len(final) == 3
    assert isinstance(final[0], rnnkit.LSTMStateTuple) and isinstance(final[1], np.ndarray)
    assert_close(out, ref_out, dtype)
    for a, b in zip(cell._flatten_state(final, B), ref_final):
        assert_close(a, b, dtype)


def test_variable_names_and_live_arrays():
    cell = rnnkit.MultiRNNCell([rnnkit.GRUCell(3), rnnkit.BasicLSTMCell(2)])
    rnnkit.dynamic_rnn(cell, np.zeros((1, 2, 4), np.float32))
    names = list(cell.variables)
    assert names[:4] == ["cell_0/gru_cell/gates/kernel", "cell_0/gru_cell/gates/bias",
                         "cell_0/gru_cell/candidate/kernel", "cell_0/gru_cell/candidate/bias"] and names[-1] == "cell_1/basic_lstm_cell/bias"
    assert cell.variables["cell_1/basic_lstm_cell/kernel"] is cell.cells[1].variables["kernel"]
    assert cell.variables["cell_1/basic_lstm_cell/kernel"].shape == (3 + 2, 8)
    assert cell.state_size[1] == (2, 2) and cell.output_size == 2


def test_single_steps_and_zero_state():
    cell = make_stack(np.float32)
    x = rng(1).normal(size=(2, 4, 2)).astype(np.float32)
    out, final = rnnkit.dynamic_rnn(cell, x)
    state = cell.zero_state(2)
    assert len(state) == 3
    for t in range(4):
        y, state = cell(x[:, t], state)
        assert_close(y, out[:, t])
    for a, b in zip(cell._flatten_state(state, 2), cell._flatten_state(final, 2)):
        assert_close(a, b)


@pytest.mark.parametrize("time_major", [False, True])
def test_stack_gradients_match_finite_differences(time_major):
    cell = make_stack()
    r = rng(5)
    B, T, D = 2, 3, 2
    x = r.normal(size=(T, B, D) if time_major else (B, T, D))
    lengths = np.array([3, 1])
    rnnkit.dynamic_rnn(cell, x, time_major=time_major)  # build
    state, _ = random_state(cell, B, r, np.float64)
    flat_state = cell._flatten_state(state, B)
    w_out = r.normal(size=x.shape[:2] + (cell.output_size,))
    w_fin = [r.normal(size=a.shape) for a in flat_state]

    def f():
        out, fin = rnnkit.dynamic_rnn(cell, x, lengths, cell._pack_state(flat_state), time_major=time_major)
        return np.sum(out * w_out) + sum(np.sum(a * w) for a, w in zip(cell._flatten_state(fin, B), w_fin))

    layer = rnnkit.RNN(cell)
    layer.forward(x, lengths, cell._pack_state(flat_state), time_major=time_major)
    dx, d_init = layer.backward(w_out, cell._pack_state(w_fin))
    assert list(cell.grads) == list(cell.variables)
    for name, var in cell.variables.items():
        assert_close(cell.grads[name], numeric_grad(f, var), **FD_TOL, err_msg=name)
    assert_close(dx, numeric_grad(f, x), **FD_TOL)
    for a, s in zip(cell._flatten_state(d_init, B), flat_state):
        assert_close(a, numeric_grad(f, s), **FD_TOL)
    # each layer also holds its own gradients
    assert cell.cells[1].grads["kernel"] is cell.grads["cell_1/basic_rnn_cell/kernel"]


def test_multi_errors():
    with pytest.raises(ValueError, match="cells must hold at least one cell"):
        rnnkit.MultiRNNCell([])
    with pytest.raises(TypeError, match=r"cells\[1\] has dtype float64"):
        rnnkit.MultiRNNCell([rnnkit.BasicRNNCell(2), rnnkit.BasicRNNCell(2, dtype=np.float64)])
    cell = rnnkit.MultiRNNCell([rnnkit.BasicRNNCell(2), rnnkit.BasicRNNCell(3)])
    with pytest.raises(TypeError, match=r"initial_state must be a tuple with one state per layer \(2\)"):
        rnnkit.dynamic_rnn(cell, np.zeros((1, 2, 2)), initial_state=np.zeros((1, 2)))
    with pytest.raises(ValueError, match=r"initial_state\[1\] must have shape \[1, 3\], got \[1, 2\]"):
        rnnkit.dynamic_rnn(cell, np.zeros((1, 2, 2)), initial_state=(np.zeros((1, 2)), np.zeros((1, 2))))
    with pytest.raises(ValueError, match=r"cells\[1\] has input_depth 5 but receives depth 2 from cells\[0\]"):
        rnnkit.MultiRNNCell([rnnkit.BasicRNNCell(2, input_depth=3), rnnkit.BasicRNNCell(2, input_depth=5)])


def test_residual_wrapper_needs_matching_depth():
    cell = rnnkit.ResidualWrapper(rnnkit.BasicRNNCell(3))
    with pytest.raises(ValueError, match=r"inputs must have depth 3 \(the cell's output size\), got 2"):
        rnnkit.dynamic_rnn(cell, np.zeros((1, 2, 2), np.float32))
    out, _ = rnnkit.dynamic_rnn(cell, np.ones((1, 2, 3), np.float32), sequence_length=[1])
    assert np.all(out[0, 1] == 0)  # padded step: zero, not the residual input
    assert list(cell.variables) == ["kernel", "bias"] and cell.scope_name == "basic_rnn_cell"
