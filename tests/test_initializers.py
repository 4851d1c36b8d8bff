"""rnnkit.initializers and the kernel_initializer / bias_initializer /
initializer arguments of cells, Dense and Embedding."""

import numpy as np
import pytest

import rnnkit
from rnnkit import initializers as init


def draw(initializer, shape=(200, 300), dtype=np.float64, seed=0):
    return initializer(shape, dtype, np.random.default_rng(seed))


def test_defaults_and_tf1_aliases():
    assert init.random_normal().mean == 0.0 and init.random_normal().stddev == 1.0
    assert init.truncated_normal().stddev == 1.0
    assert (init.random_uniform().minval, init.random_uniform().maxval) == (-0.05, 0.05)
    assert (init.random_uniform_initializer().minval, init.random_uniform_initializer().maxval) == (0.0, 1.0)
    assert init.orthogonal().gain == 1.0 and init.constant().value == 0.0
    assert init.glorot_uniform_initializer is init.glorot_uniform
    assert init.random_normal_initializer is init.random_normal
    assert init.truncated_normal_initializer is init.truncated_normal
    assert init.zeros_initializer is init.zeros
    assert init.constant_initializer is init.constant
    assert init.orthogonal_initializer is init.orthogonal


def test_distributions():
    x = draw(init.random_normal(1.0, 2.0))
    assert abs(x.mean() - 1.0) < 0.02 and abs(x.std() - 2.0) < 0.02
    x = draw(init.random_uniform(-0.2, 0.3))
    assert x.min() >= -0.2 and x.max() < 0.3 and abs(x.mean() - 0.05) < 0.005
    x = draw(init.truncated_normal(0.5, 0.1))
    assert np.all(np.abs(x - 0.5) <= 0.2) and x.max() > 0.69 and abs(x.std() - 0.088) < 0.002  # N truncated at 2σ
    limit = np.sqrt(6 / 500)
    x = draw(init.glorot_uniform())
    assert np.all(np.abs(x) <= limit) and x.max() > 0.99 * limit
    np.testing.assert_array_equal(draw(init.zeros(), (2, 3)), np.zeros((2, 3)))
    np.testing.assert_array_equal(draw(init.constant(1.5), (4,), np.float32), np.full(4, 1.5, np.float32))


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (2, 3, 5), (5, 5)])
def test_orthogonal(shape):
    q = draw(init.orthogonal(gain=2.0), shape).reshape(-1, shape[-1])
    small = q.T @ q if q.shape[0] >= q.shape[1] else q @ q.T
    np.testing.assert_allclose(small, 4.0 * np.eye(small.shape[0]), atol=1e-12)
    with pytest.raises(ValueError, match="orthogonal needs a shape of rank >= 2"):
        draw(init.orthogonal(), (3,))


def test_bad_arguments():
    with pytest.raises(ValueError, match="stddev must be > 0"):
        init.random_normal(stddev=0)
    with pytest.raises(ValueError, match="minval must be < maxval"):
        init.random_uniform(1.0, 0.0)
    with pytest.raises(TypeError, match="mean must be a number"):
        init.truncated_normal(mean="0")
    with pytest.raises(TypeError, match="kernel_initializer must be a callable"):
        rnnkit.BasicRNNCell(3, kernel_initializer=1.0)
    with pytest.raises(ValueError, match="bias_initializer must be one of"):
        rnnkit.Dense(3, bias_initializer="nope")


def test_default_initializers_give_the_same_numbers_as_before():
    """The defaults are explicit glorot_uniform kernels and zero biases, drawn from the seeded rng in order."""
    rng = np.random.default_rng(7)
    kernel = init.glorot_uniform()((5, 8), np.float32, rng)
    cell = rnnkit.BasicLSTMCell(2, input_depth=3, seed=7)
    np.testing.assert_array_equal(cell.variables["kernel"], kernel)
    np.testing.assert_array_equal(cell.variables["bias"], np.zeros(8, np.float32))
    same = rnnkit.BasicLSTMCell(2, input_depth=3, seed=7, kernel_initializer=init.glorot_uniform(),
                                bias_initializer=init.zeros())
    for name in cell.variables:
        np.testing.assert_array_equal(same.variables[name], cell.variables[name])


@pytest.mark.parametrize("make", [
    lambda **kw: rnnkit.BasicRNNCell(4, input_depth=3, seed=2, **kw),
    lambda **kw: rnnkit.BasicLSTMCell(4, input_depth=3, seed=2, **kw),
    lambda **kw: rnnkit.LSTMCell(4, num_proj=2, use_peepholes=True, input_depth=3, seed=2, **kw),
    lambda **kw: rnnkit.GRUCell(4, input_depth=3, seed=2, **kw),
    lambda **kw: rnnkit.GRUCell(4, reset_after=True, input_depth=3, seed=2, **kw),
    lambda **kw: rnnkit.Dense(4, input_depth=3, seed=2, **kw),
])
def test_every_kernel_and_bias_takes_the_initializers(make):
    layer = make(kernel_initializer=init.constant(0.25), bias_initializer=init.constant(-1.0))
    for name, value in layer.variables.items():
        expect = -1.0 if name.endswith("bias") else 0.25  # peepholes and projection: the kernel's
        np.testing.assert_array_equal(value, np.full(value.shape, expect, value.dtype), err_msg=name)
    a = make(kernel_initializer=init.truncated_normal(), bias_initializer=init.random_normal(stddev=0.1))
    b = make(kernel_initializer=init.truncated_normal(), bias_initializer=init.random_normal(stddev=0.1))
    for name in a.variables:  # seeded from the layer's seed
        np.testing.assert_array_equal(a.variables[name], b.variables[name])


def test_gru_gates_bias_defaults_to_one():
    cell = rnnkit.GRUCell(3, input_depth=2, kernel_initializer=init.zeros())
    np.testing.assert_array_equal(cell.variables["gates/bias"], np.ones(6, np.float32))
    np.testing.assert_array_equal(cell.variables["candidate/bias"], np.zeros(3, np.float32))
    np.testing.assert_array_equal(cell.variables["gates/kernel"], np.zeros((5, 6), np.float32))
    cell = rnnkit.GRUCell(3, input_depth=2, bias_initializer=init.constant(0.5))
    np.testing.assert_array_equal(cell.variables["gates/bias"], np.full(6, 0.5, np.float32))


def test_plain_callables_and_their_checks():
    calls = []

    def ones(shape, dtype, rng):
        calls.append((shape, np.dtype(dtype)))
        return np.ones(shape)

    dense = rnnkit.Dense(3, input_depth=2, dtype=np.float64, kernel_initializer=ones, bias_initializer="ones")
    assert calls == [((2, 3), np.dtype(np.float64))]
    np.testing.assert_array_equal(dense.variables["kernel"], np.ones((2, 3)))
    np.testing.assert_array_equal(dense.variables["bias"], np.ones(3))
    with pytest.raises(ValueError, match=r"kernel_initializer returned shape \[3\], expected \[2, 3\]"):
        rnnkit.Dense(3, input_depth=2, kernel_initializer=lambda shape, dtype, rng: np.ones(3))
    with pytest.raises(ValueError, match=r"initializer returned shape"):
        rnnkit.Embedding(4, 2, initializer=lambda shape, dtype, rng: np.ones(3))


def test_initializers_with_lazy_build_and_checkpoint_depth_inference(tmp_path):
    """A cell built on first use (or by load) applies its initializers then."""
    cell = rnnkit.GRUCell(3, kernel_initializer=init.zeros(), bias_initializer=init.zeros())
    rnnkit.dynamic_rnn(cell, np.zeros((1, 2, 4), np.float32))
    assert cell.variables["gates/kernel"].shape == (7, 6) and not cell.variables["gates/kernel"].any()
    path = rnnkit.save(tmp_path / "c", cell)
    fresh = rnnkit.GRUCell(3, kernel_initializer=init.orthogonal())
    rnnkit.load(path, fresh)
    assert fresh.input_depth == 4 and not fresh.variables["gates/kernel"].any()
