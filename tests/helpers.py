"""Test helpers: tolerances, central finite differences, seeded data."""

import numpy as np

# |actual - ref| <= atol + rtol * |ref|
TOL = {np.dtype(np.float32): dict(rtol=2e-5, atol=2e-6), np.dtype(np.float64): dict(rtol=1e-10, atol=1e-12)}
# finite differences in float64: h = 1e-6, error O(h^2) plus rounding
FD_TOL = dict(rtol=1e-6, atol=1e-8)


def assert_close(actual, reference, dtype=None, **tol):
    reference = np.asarray(reference)
    kw = dict(TOL[np.dtype(dtype or np.asarray(actual).dtype)])
    kw.update(tol)
    np.testing.assert_allclose(actual, reference, **kw)


def numeric_grad(f, array, h=1e-6):
    """d f() / d array by central differences, perturbing `array` in place.
    f returns a scalar; array must be float64."""
    assert array.dtype == np.float64
    grad = np.zeros_like(array)
    flat, g = array.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        up = f()
        flat[i] = old - h
        down = f()
        flat[i] = old
        g[i] = (up - down) / (2 * h)
    return grad


def rng(seed=0):
    return np.random.default_rng(seed)
