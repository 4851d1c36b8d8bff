"""Dense: forward against numpy on inputs of rank 2-4, gradients against
central finite differences in float64, variables, and input checks."""

import numpy as np
import pytest

import rnnkit
from helpers import FD_TOL, assert_close, assert_close_product, numeric_grad, rng

DTYPES = [np.float32, np.float64]
SHAPES = [(5, 4), (2, 3, 4), (2, 3, 2, 4)]


def _layer(units, depth, dtype, seed=0):
    layer = rnnkit.Dense(units, dtype=dtype, input_depth=depth, seed=seed)
    # a non-zero bias, so that forgetting it would show
    layer.variables["bias"] = rng(seed + 1).normal(size=units).astype(dtype)
    return layer


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_matches_numpy(shape, dtype):
    layer = _layer(3, shape[-1], dtype)
    x = rng(2).normal(size=shape).astype(dtype)
    k, b = layer.variables["kernel"], layer.variables["bias"]
    ref = (x.astype(np.float64) @ k.astype(np.float64)) + b.astype(np.float64)
    y = layer.forward(x)
    assert y.dtype == dtype and y.shape == shape[:-1] + (3,)
    assert_close(y, ref)
    assert_close(layer(x), ref)  # inference gives the same numbers


@pytest.mark.parametrize("shape", SHAPES)
def test_gradients_match_finite_differences(shape):
    layer = _layer(3, shape[-1], np.float64)
    x = rng(3).normal(size=shape)
    w = rng(4).normal(size=shape[:-1] + (3,))  # loss = Σ w ⊙ y

    def loss():
        return float(np.sum(layer(x) * w))

    layer.forward(x)
    dx = layer.backward(w)
    assert_close(dx, numeric_grad(loss, x), **FD_TOL)
    for name in ("kernel", "bias"):
        assert_close(layer.grads[name], numeric_grad(loss, layer.variables[name]), **FD_TOL)
    # and the closed forms, to full precision
    rows = x.reshape(-1, shape[-1])
    assert_close(layer.grads["kernel"], rows.T @ w.reshape(-1, 3))
    assert_close(layer.grads["bias"], w.reshape(-1, 3).sum(axis=0))
    assert_close(dx, w @ layer.variables["kernel"].T)


def test_float32_gradients_match_numpy():
    layer = _layer(4, 5, np.float32)
    x = rng(5).normal(size=(3, 2, 5)).astype(np.float32)
    dy = rng(6).normal(size=(3, 2, 4)).astype(np.float32)
    layer.forward(x)
    dx = layer.backward(dy)
    assert dx.dtype == np.float32
    x64, dy64 = x.astype(np.float64).reshape(-1, 5), dy.astype(np.float64).reshape(-1, 4)
    assert_close(layer.grads["kernel"], x64.T @ dy64, dtype=np.float32)
    assert_close(layer.grads["bias"], dy64.sum(axis=0), dtype=np.float32)
    assert_close(dx, (dy64 @ layer.variables["kernel"].astype(np.float64).T).reshape(3, 2, 5), dtype=np.float32)


@pytest.mark.parametrize("units", [5, 16, 17, 65, 96])
def test_float32_packed_products_every_panel_width(units):
    # 80 rows of depth 128 take the packed AVX-512 products (at least 32
    # rows), whose last panel of 32 columns is full (96), half or less (5,
    # 16, 65: one vector) or just over half (17): every output column against
    # numpy, forward and backward (the kernel's gradient reduces over the
    # rows with the same narrow panels). Each within a float32 sum's rounding.
    layer = _layer(units, 128, np.float32)
    x = rng(7).normal(size=(4, 20, 128)).astype(np.float32)
    dy = rng(8).normal(size=(4, 20, units)).astype(np.float32)
    k = layer.variables["kernel"].astype(np.float64)
    x64, dy64 = x.astype(np.float64).reshape(-1, 128), dy.astype(np.float64).reshape(-1, units)
    y = layer.forward(x)
    assert_close_product(y.reshape(-1, units), x64, k, np.float32, offset=layer.variables["bias"].astype(np.float64))
    dx = layer.backward(dy)
    assert_close_product(layer.grads["kernel"], x64.T, dy64, np.float32)
    assert_close_product(dx.reshape(-1, 128), dy64, k.T, np.float32)


def test_variables_built_on_first_forward_glorot_and_seeded():
    layer = rnnkit.Dense(6, seed=7)
    assert len(layer.variables) == 0
    layer.forward(np.ones((2, 10), np.float32))
    k, b = layer.variables["kernel"], layer.variables["bias"]
    assert list(layer.variables) == ["kernel", "bias"]
    assert k.shape == (10, 6) and k.dtype == np.float32 and b.shape == (6,)
    assert np.all(b == 0)
    limit = np.sqrt(6.0 / 16)
    assert np.all(np.abs(k) <= limit) and np.std(k) > 0.2 * limit
    again = rnnkit.Dense(6, seed=7, input_depth=10)
    np.testing.assert_array_equal(again.variables["kernel"], k)
    other = rnnkit.Dense(6, seed=8, input_depth=10)
    assert not np.array_equal(other.variables["kernel"], k)


def test_grads_and_vars_pairs_live_arrays():
    layer = _layer(2, 3, np.float64)
    with pytest.raises(RuntimeError, match="backward"):
        layer.grads_and_vars()
    layer.forward(np.ones((4, 3)))
    layer.backward(np.ones((4, 2)))
    pairs = layer.grads_and_vars()
    assert [v is layer.variables[n] for (_, v), n in zip(pairs, ["kernel", "bias"])] == [True, True]
    np.testing.assert_array_equal(pairs[1][0], [4.0, 4.0])


def test_float64_input_converted_to_layer_dtype():
    layer = _layer(2, 3, np.float32)
    y = layer(np.ones((1, 3), np.float64))
    assert y.dtype == np.float32


def test_empty_batch():
    layer = _layer(2, 3, np.float64)
    y = layer.forward(np.zeros((0, 3)))
    assert y.shape == (0, 2)
    dx = layer.backward(np.zeros((0, 2)))
    assert dx.shape == (0, 3)
    np.testing.assert_array_equal(layer.grads["kernel"], np.zeros((3, 2)))
    np.testing.assert_array_equal(layer.grads["bias"], np.zeros(2))


def test_bad_inputs():
    with pytest.raises(ValueError, match="units must be > 0"):
        rnnkit.Dense(0)
    with pytest.raises(ValueError, match="units must be > 0"):
        rnnkit.Dense(-3)
    with pytest.raises(TypeError, match="dtype"):
        rnnkit.Dense(2, dtype=np.int32)
    layer = _layer(2, 3, np.float32)
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.ones((4, 2), np.float32))
    with pytest.raises(TypeError, match="x must be a float array"):
        layer.forward(np.ones((4, 3), np.int64))
    with pytest.raises(ValueError, match=r"x must have depth 3 .* got 5"):
        layer.forward(np.ones((4, 5), np.float32))
    with pytest.raises(ValueError, match=r"x must have rank >= 2"):
        layer.forward(np.ones(3, np.float32))
    layer.forward(np.ones((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"dy must have shape \[4, 2\] .*got \[4, 3\]"):
        layer.backward(np.ones((4, 3), np.float32))
    with pytest.raises(TypeError, match="dy must be a float array"):
        layer.backward(np.ones((4, 2), np.int32))


def test_core_checks_shapes_by_name():
    k = np.ones((3, 2))
    with pytest.raises(ValueError, match=r"x must have shape \[\.\.\., 3\].*got \[4, 5\]"):
        rnnkit._core.dense_forward(np.ones((4, 5)), k, np.zeros(2))
    with pytest.raises(ValueError, match=r"bias must have shape \[2\], got \[3\]"):
        rnnkit._core.dense_forward(np.ones((4, 3)), k, np.zeros(3))
    with pytest.raises(TypeError, match="x must have dtype float64"):
        rnnkit._core.dense_forward(np.ones((4, 3), np.float32), k, np.zeros(2))
    with pytest.raises(ValueError, match=r"dy must have shape \[4, 2\], got \[4, 3\]"):
        rnnkit._core.dense_backward(np.ones((4, 3)), k, np.ones((4, 3)))
