"""Every cell with C++ kernels enters them the same way (src/bind_cell.hpp):
  <name>_forward(x, *variables, *state, sequence_length, time_major, *options, state_mask, tape)
  <name>_backward(tape, d_outputs, *d_final_state, *variables, *options, input_grad)
and its generation step cell comes from the same arguments."""

import re

import numpy as np
import pytest

import rnnkit
from rnnkit import _core

# name: (cell, variable arguments, state arguments, their gradients' arguments, options)
CELLS = {
    "basic_rnn": (lambda: rnnkit.BasicRNNCell(5, activation="relu", input_depth=3, seed=1),
                  ["kernel", "bias"], ["h0"], ["dh_final"], ["activation"]),
    "gru": (lambda: rnnkit.GRUCell(5, input_depth=3, seed=2),
            ["gates_kernel", "gates_bias", "candidate_kernel", "candidate_bias"], ["h0"], ["dh_final"],
            ["activation"]),
    "gru_reset_after": (lambda: rnnkit.GRUCell(5, reset_after=True, input_depth=3, seed=3),
                        ["gates_kernel", "gates_bias", "candidate_input_kernel", "candidate_input_bias",
                         "candidate_hidden_kernel", "candidate_hidden_bias"], ["h0"], ["dh_final"], ["activation"]),
    "lstm": (lambda: rnnkit.LSTMCell(5, use_peepholes=True, num_proj=4, cell_clip=2.0, input_depth=3, seed=4),
             ["kernel", "bias", "w_f_diag", "w_i_diag", "w_o_diag", "projection"], ["c0", "m0"],
             ["dc_final", "dm_final"], ["forget_bias", "activation", "cell_clip", "proj_clip"]),
}


def parameters(f):
    first = f.__doc__.splitlines()[0]
    return re.findall(r"(\w+): ", re.match(r"\w+\((.*)\) ->", first).group(1))


@pytest.mark.parametrize("name", sorted(CELLS))
def test_argument_names_follow_the_convention(name):
    make, variables, state, d_state, options = CELLS[name]
    assert make()._kernel_name == name
    assert parameters(getattr(_core, name + "_forward")) == (
        ["x"] + variables + state + ["sequence_length", "time_major"] + options + ["state_mask", "tape"])
    assert parameters(getattr(_core, name + "_backward")) == (
        ["tape", "d_outputs"] + d_state + variables + options + ["input_grad"])


@pytest.mark.parametrize("name", sorted(CELLS))
def test_one_call_in_the_convention_is_the_cell(name):
    cell = CELLS[name][0]()
    g = np.random.default_rng(0)
    x = g.normal(size=(4, 6, 3)).astype(np.float32)
    lengths = np.array([6, 2, 0, 5], np.int32)
    state = [g.normal(size=(4, w)).astype(np.float32) for w in cell._state_widths()]
    outputs, final = rnnkit.dynamic_rnn(cell, x, sequence_length=lengths, initial_state=cell._pack_state(state))
    variables, options = cell._kernel_variables(), cell._kernel_options()
    tape = {}
    got, *got_final = getattr(_core, name + "_forward")(x, *variables, *state, lengths, False, *options, None, tape)
    np.testing.assert_array_equal(got, outputs)
    for a, b in zip(got_final, cell._flatten_state(final, 4)):
        np.testing.assert_array_equal(a, b)
    d_final = [np.zeros_like(s) for s in state]
    dx, *d_state, grads = getattr(_core, name + "_backward")(tape, np.ones_like(got), *d_final, *variables,
                                                             *options, True)
    assert dx.shape == x.shape and [d.shape for d in d_state] == [s.shape for s in state]
    assert list(grads) == list(cell.variables)
    assert all(np.abs(v).max() > 0 for v in grads.values())


@pytest.mark.parametrize("name", sorted(CELLS))
def test_the_step_cell_steps_like_the_cell(name):
    cell = CELLS[name][0]()
    g = np.random.default_rng(1)
    head_kernel = g.normal(size=(cell.output_size, 3)).astype(np.float32)
    head_bias = g.normal(size=3).astype(np.float32)
    state = [g.normal(size=(2, w)).astype(np.float32) for w in cell._state_widths()]
    first = np.array([0, 2], np.int32)
    kind, args = cell._step_cell()
    assert kind == name
    after = [s.copy() for s in state]
    (ids,) = _core.generate([(kind, args, False)], None, head_kernel, head_bias, first, after, 4, 1.0, 0, True, 0)
    # the state after the last fed token (step 3 feeds ids[:, 2]; its own draw is not fed), step by step
    h = cell._pack_state(state)
    for token in (first, ids[:, 0], ids[:, 1], ids[:, 2]):
        _, h = cell(token.astype(np.int32), h)
    for a, b in zip(after, cell._flatten_state(h, 2)):
        np.testing.assert_array_equal(a, b)
