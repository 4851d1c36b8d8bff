"""Integer token-id inputs mean one_hot(ids, input_depth), computed as a row
gather: identical outputs, matching gradients, clear errors."""

import numpy as np
import pytest

import rnnkit
from helpers import assert_close, cell_makers, rng

MAKERS = cell_makers(units=4, depth=7)


@pytest.mark.parametrize("name", list(MAKERS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("time_major", [False, True])
def test_ids_match_one_hot_forward_and_backward(name, dtype, time_major):
    cell = MAKERS[name](dtype)
    ids = rng(0).integers(0, 7, size=(5, 3) if time_major else (3, 5))
    lengths = np.array([5, 2, 0])
    x = rnnkit.one_hot(ids, 7, dtype=dtype)
    out_ids, final_ids = rnnkit.dynamic_rnn(cell, ids, sequence_length=lengths, time_major=time_major)
    out_hot, final_hot = rnnkit.dynamic_rnn(cell, x, sequence_length=lengths, time_major=time_major)
    assert np.array_equal(out_ids, out_hot)

    grads = {}
    for key, inputs in (("ids", ids), ("hot", x)):
        layer = rnnkit.RNN(cell)
        out, _ = layer.forward(inputs, sequence_length=lengths, time_major=time_major)
        dx, d_init = layer.backward(np.sin(out))
        grads[key] = (dx, dict(cell.grads), d_init)
    assert grads["ids"][0] is None
    for k in cell.variables:
        assert_close(grads["ids"][1][k], grads["hot"][1][k], dtype)
    for a, b in zip(cell._flatten_state(grads["ids"][2], 3), cell._flatten_state(grads["hot"][2], 3)):
        assert_close(a, b, dtype)


def test_single_step_with_ids():
    cell = MAKERS["lstm"](np.float32)
    ids = np.array([[1, 6, 0]])  # [B=1, T=3]
    out, _ = rnnkit.dynamic_rnn(cell, ids)
    state = cell.zero_state(1)
    for t in range(3):
        y, state = cell(ids[:, t], state)
        assert np.array_equal(y, out[:, t])


def test_one_hot_helper():
    assert np.array_equal(rnnkit.one_hot([2, 0], 3), [[0, 0, 1], [1, 0, 0]])
    assert rnnkit.one_hot(np.zeros((2, 4), int), 5).shape == (2, 4, 5)
    assert rnnkit.one_hot([1], 2, dtype=np.float64).dtype == np.float64
    with pytest.raises(ValueError, match=r"ids token ids must lie in \[0, 3\), got 3 at index \[1\]"):
        rnnkit.one_hot([0, 3], 3)


def test_out_of_range_id_names_the_value():
    cell = MAKERS["rnn"](np.float32)
    with pytest.raises(ValueError, match=r"inputs token ids must lie in \[0, 7\), got 9 at index \[1, 2\]"):
        rnnkit.dynamic_rnn(cell, np.array([[0, 1, 2], [3, 4, 9]]))
    with pytest.raises(ValueError, match=r"got -1"):
        rnnkit.dynamic_rnn(cell, np.array([[0, -1]]))
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 7\), got 7"):
        rnnkit._core.basic_rnn_forward(np.array([[7]], np.int32), cell.variables["kernel"], cell.variables["bias"],
                                       np.zeros((1, 4), np.float32))


def test_ids_need_a_built_cell():
    with pytest.raises(ValueError, match="token ids and need the cell's input_depth"):
        rnnkit.dynamic_rnn(rnnkit.BasicLSTMCell(3), np.array([[0, 1]]))
