"""Every function of the private rnnkit._core, called with one argument at a
time replaced by something wrong, raises TypeError or ValueError (or, where
the wrong thing happens to be valid, runs): never a crash, never a wild read.
A crash kills the pytest process, so the suite fails."""

import re

import numpy as np
import pytest

from rnnkit import _core

B, T, D, H = 2, 3, 4, 3
F32 = np.float32


def arr(*shape, dtype=F32, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(dtype)


def lengths():
    return np.array([3, 1], np.int32)


# ---- valid calls ------------------------------------------------------------------
# Each recipe returns (function, [positional arguments]) for a call that
# succeeds; backward recipes first run the forward that fills their tape.


def rnn_weights():
    return [arr(D + H, H, seed=1), arr(H, seed=2)]


def rnn_forward(tape=None):
    return _core.basic_rnn_forward, [arr(B, T, D), *rnn_weights(), arr(B, H, seed=3), lengths(), False, "tanh",
                                     None, tape]


def rnn_backward():
    tape = {}
    f, args = rnn_forward(tape)
    f(*args)
    return _core.basic_rnn_backward, [tape, arr(B, T, H), arr(B, H), *rnn_weights(), "tanh", True]


def lstm_weights(P=2):
    R = P or H
    return [arr(D + R, 4 * H, seed=1), arr(4 * H, seed=2), arr(H, seed=4), arr(H, seed=5), arr(H, seed=6),
            arr(H, P, seed=7) if P else None]


def lstm_options():
    return [1.0, "tanh", 0.9, 0.8]


def lstm_forward(tape=None):
    return _core.lstm_forward, [arr(B, T, D), *lstm_weights(), arr(B, H, seed=3), arr(B, 2, seed=4), lengths(),
                                False, *lstm_options(), None, tape]


def lstm_backward():
    tape = {}
    f, args = lstm_forward(tape)
    f(*args)
    return _core.lstm_backward, [tape, arr(B, T, 2), arr(B, H), arr(B, 2), *lstm_weights(), *lstm_options(), True]


def gru_weights():
    return [arr(D + H, 2 * H, seed=1), arr(2 * H, seed=2), arr(D + H, H, seed=3), arr(H, seed=4)]


def gru_forward(tape=None):
    return _core.gru_forward, [arr(B, T, D), *gru_weights(), arr(B, H, seed=5), lengths(), False, "tanh",
                               None, tape]


def gru_backward():
    tape = {}
    f, args = gru_forward(tape)
    f(*args)
    return _core.gru_backward, [tape, arr(B, T, H), arr(B, H), *gru_weights(), "tanh", True]


def reset_after_weights():
    return [arr(D + H, 2 * H, seed=1), arr(2 * H, seed=2), arr(D, H, seed=3), arr(H, seed=4), arr(H, H, seed=5),
            arr(H, seed=6)]


def reset_after_forward(tape=None):
    return _core.gru_reset_after_forward, [arr(B, T, D), *reset_after_weights(), arr(B, H, seed=7), lengths(),
                                           False, "tanh", arr(B, T, H, seed=8), tape]


def reset_after_backward():
    tape = {}
    f, args = reset_after_forward(tape)
    f(*args)
    return _core.gru_reset_after_backward, [tape, arr(B, T, H), arr(B, H), *reset_after_weights(), "tanh", True]


def loss_forward(tape=None):
    return _core.sequence_loss_forward, [arr(B, T, 5), np.array([[0, 1, 4], [2, 3, 0]], np.int32),
                                         np.ones((B, T), F32), True, True, False, False, tape]


def loss_backward():
    tape = {}
    f, args = loss_forward(tape)
    f(*args)
    return _core.sequence_loss_backward, [tape, np.ones((), F32)]


RECIPES = {
    "basic_rnn_forward": lambda: rnn_forward({}),
    "basic_rnn_backward": rnn_backward,
    "lstm_forward": lambda: lstm_forward({}),
    "lstm_backward": lstm_backward,
    "gru_forward": lambda: gru_forward({}),
    "gru_backward": gru_backward,
    "gru_reset_after_forward": lambda: reset_after_forward({}),
    "gru_reset_after_backward": reset_after_backward,
    "reverse_sequence": lambda: (_core.reverse_sequence, [arr(B, T, D), lengths(), False]),
    "apply_mask": lambda: (_core.apply_mask, [arr(B, T, D), arr(B, D, seed=1), False]),
    "add_on_live_steps": lambda: (_core.add_on_live_steps, [arr(B, T, D), arr(B, T, D, seed=1), lengths(), False]),
    "dense_forward": lambda: (_core.dense_forward, [arr(B, T, D), arr(D, H, seed=1), arr(H, seed=2)]),
    "dense_backward": lambda: (_core.dense_backward, [arr(B, T, D), arr(D, H, seed=1), arr(B, T, H, seed=2)]),
    "sequence_loss_forward": lambda: loss_forward({}),
    "sequence_loss_backward": loss_backward,
    "adam_apply": lambda: (_core.adam_apply, [[arr(3, 2)], [arr(3, 2, seed=1)], [np.zeros((3, 2), F32)],
                                              [np.zeros((3, 2), F32)], 0.1, 0.9, 0.999, 1e-8, 1]),
    "sgd_apply": lambda: (_core.sgd_apply, [[arr(3, 2)], [arr(3, 2, seed=1)], 0.1]),
    "clip_by_global_norm": lambda: (_core.clip_by_global_norm, [[arr(3, 2), arr(4, seed=1)], 1.0]),
}
# Functions of the process state, checked on their own below.
STATE = {"set_num_threads", "get_num_threads", "max_num_threads", "_result_cache"}


def core_functions():
    return sorted(n for n in dir(_core) if not n.startswith("__") and callable(getattr(_core, n)))


def wrong_values(value):
    """Wrong things to pass where `value` is expected."""
    out = [None, 7, "abc", [1.0, 2.0], 2.5, object()]
    if isinstance(value, np.ndarray):
        out += [value.astype(np.float64) if value.dtype == F32 else value.astype(F32),
                value.astype(np.int64), value[None], value.reshape(-1)[:1], np.float32(1), np.empty((0,), value.dtype),
                np.asfortranarray(value[..., None].repeat(2, -1))]
        if value.ndim >= 1 and value.shape[-1] > 1:
            out.append(value[..., ::2])  # not contiguous
    if isinstance(value, list):
        out += [value * 2, [None] * len(value), [7] * len(value), tuple(value), {}]
    if isinstance(value, dict):
        out += [{}, list(value.values())]
    return out


def call_is_safe(f, args):
    try:
        f(*args)
    except (TypeError, ValueError):
        pass


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_valid_recipe_runs(name):
    f, args = RECIPES[name]()
    f(*args)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_each_wrong_argument_is_an_error_not_a_crash(name):
    _, template = RECIPES[name]()
    for i, value in enumerate(template):
        for bad in wrong_values(value):
            f, args = RECIPES[name]()
            args[i] = bad
            call_is_safe(f, args)


TAPE_RECIPES = {
    "basic_rnn_backward": rnn_backward,
    "lstm_backward": lstm_backward,
    "gru_backward": gru_backward,
    "gru_reset_after_backward": reset_after_backward,
    "sequence_loss_backward": loss_backward,
}


@pytest.mark.parametrize("name", sorted(TAPE_RECIPES))
def test_each_missing_or_wrong_tape_entry_is_an_error_not_a_crash(name):
    _, template = TAPE_RECIPES[name]()
    for key in list(template[0]):
        f, args = TAPE_RECIPES[name]()
        del args[0][key]
        with pytest.raises((TypeError, ValueError)):
            f(*args)
        for bad in wrong_values(template[0][key]) + [True, (True, 7)]:
            f, args = TAPE_RECIPES[name]()
            args[0][key] = bad
            call_is_safe(f, args)


@pytest.mark.parametrize("name", sorted(TAPE_RECIPES))
def test_a_spent_or_failed_tape_is_refused(name):
    f, args = TAPE_RECIPES[name]()
    f(*args)
    if name != "sequence_loss_backward":  # the loss's tape is not spent by its backward
        with pytest.raises(ValueError, match="tape holds no training forward"):
            f(*args)
    with pytest.raises(ValueError, match="tape holds no training forward"):
        f(*([{}] + args[1:]))


def test_forward_tape_must_be_a_dict():
    for recipe in (rnn_forward, lstm_forward, gru_forward, reset_after_forward, loss_forward):
        f, args = recipe([])
        with pytest.raises(TypeError, match="tape must be a dict or None, got list"):
            f(*args)


def test_wrong_types_name_the_argument():
    f, args = lstm_forward()
    args[1] = 7  # kernel
    with pytest.raises(TypeError, match="kernel must be a numpy array, got int"):
        f(*args)
    args = lstm_forward()[1]
    args[13] = "abc"  # cell_clip
    with pytest.raises(TypeError, match="cell_clip must be a number or None, got str"):
        f(*args)
    tape = {}
    loss_forward(tape)[0](*loss_forward(tape)[1])
    tape["probs"] = [1.0]
    with pytest.raises(TypeError, match="tape probs must be a numpy array, got list"):
        _core.sequence_loss_backward(tape, np.ones((), F32))


def test_state_functions_check_their_arguments(restore_threads):
    for bad in (None, "abc", [1], 2.5):
        with pytest.raises(TypeError):
            _core.set_num_threads(bad)
    cached, limit = _core._result_cache(None)
    try:
        for bad in ("abc", [1], 2.5, True):
            with pytest.raises(TypeError, match="limit must be an int or None"):
                _core._result_cache(bad)
        for bad in (-1, 2**70):
            with pytest.raises(ValueError, match=r"limit must lie in \[0, 2\*\*64 - 1\]"):
                _core._result_cache(bad)
    finally:
        _core._result_cache(limit)


def arity(f):
    """The number of parameters in a pybind11 function's signature line."""
    first = (f.__doc__ or "").splitlines()[0] if f.__doc__ else ""
    inside = re.match(r"\w+\((.*)\) ->", first)
    if not inside or not inside.group(1).strip():
        return 0
    return len(re.findall(r"\w+: ", inside.group(1)))


@pytest.mark.parametrize("name", [n for n in core_functions() if n not in STATE])
def test_every_function_refuses_wrong_types_everywhere(name):
    # Also covers functions without a recipe above: every argument wrong at once.
    f = getattr(_core, name)
    n = arity(f)
    for bad in (None, 7, "abc", [1.0, 2.0], {}, object(), np.zeros(3, np.float64)):
        call_is_safe(f, [bad] * n)
