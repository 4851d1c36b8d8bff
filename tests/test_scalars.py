"""0-d arrays stay 0-d: scalar variables train, clip_by_global_norm keeps
every tensor's shape, one_hot of a scalar id is one row, a scalar d_loss
is taken as it is."""

import numpy as np
import pytest

import rnnkit
from rnnkit import _checks


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_checks_keep_0d_arrays_0d(dtype):
    assert _checks.as_float(np.float64(2.5), "x", dtype).shape == ()
    assert _checks.as_float(2.5, "x", dtype).dtype == dtype
    assert _checks.contiguous(np.array(3)).shape == ()
    strided = np.arange(12.0).reshape(3, 4)[:, ::2]
    assert _checks.contiguous(strided).flags.c_contiguous and _checks.contiguous(strided).shape == (3, 2)


@pytest.mark.parametrize("grad", [np.float32(0.5), np.array(0.5, np.float32)])
def test_sgd_on_a_scalar_variable(grad):
    var = np.array(2.0, np.float32)
    rnnkit.GradientDescentOptimizer(0.1).apply_gradients([(grad, var)])
    assert var.shape == () and var == np.float32(2.0) - np.float32(0.1) * np.float32(0.5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_on_a_scalar_variable(dtype):
    var = np.array(1.0, dtype)
    opt = rnnkit.AdamOptimizer(0.1)
    for _ in range(2):
        opt.apply_gradients([(np.array(2.0, dtype), var)])
    # g is constant, so m / sqrt(v) is 1 after bias correction: each step moves lr (1 - tiny)
    np.testing.assert_allclose(var, 1.0 - 2 * 0.1, rtol=1e-5 if dtype == np.float32 else 1e-7)
    assert var.shape == () and opt.get_slot(var, "m").shape == ()


def test_a_scalar_gradient_for_a_vector_variable_is_still_an_error():
    with pytest.raises(ValueError, match=r"\[3\].*\[\]|\[\].*\[3\]"):
        rnnkit.GradientDescentOptimizer(0.1).apply_gradients([(np.float32(1.0), np.zeros(3, np.float32))])


def test_clip_by_global_norm_keeps_each_shape():
    tensors = [np.array(3.0), np.array([4.0]), None, np.zeros((2, 0))]
    clipped, norm = rnnkit.clip_by_global_norm(tensors, 1.0)
    assert [None if c is None else c.shape for c in clipped] == [(), (1,), None, (2, 0)]
    assert norm == 5.0
    np.testing.assert_allclose(clipped[0], 0.6)
    np.testing.assert_allclose(clipped[1], [0.8])


def test_one_hot_of_a_scalar_id_is_one_row():
    np.testing.assert_array_equal(rnnkit.one_hot(2, 4), [0, 0, 1, 0])  # TF1: shape [4]
    assert rnnkit.one_hot(np.int64(0), 3, dtype=np.float64).shape == (3,)
    np.testing.assert_array_equal(rnnkit.one_hot([[1], [3]], 4), [[[0, 1, 0, 0]], [[0, 0, 0, 1]]])
    with pytest.raises(ValueError, match=r"ids token ids must lie in \[0, 4\), got 4 at index \[\]"):
        rnnkit.one_hot(4, 4)


def test_scalar_loss_gradient():
    loss = rnnkit.SequenceLoss()
    logits = np.random.default_rng(0).normal(size=(2, 3, 5))
    loss.forward(logits, np.zeros((2, 3), np.int64), np.ones((2, 3)))
    ones = loss.backward()
    np.testing.assert_array_equal(loss.backward(np.float64(1.0)), ones)
    np.testing.assert_array_equal(loss.backward(2.0), 2 * ones)


def test_a_tf_checkpoint_keeps_a_scalar_a_scalar(tmp_path):
    from rnnkit.tf_checkpoint import TFCheckpoint, write_tf_checkpoint
    prefix = write_tf_checkpoint(tmp_path / "model.ckpt", {"global_step": np.int64(7), "scale": np.float32(0.5)})
    reader = TFCheckpoint(prefix)
    assert reader.get_variable_to_shape_map() == {"global_step": [], "scale": []}
    assert reader.get_tensor("global_step").shape == () and reader.get_tensor("global_step") == 7
