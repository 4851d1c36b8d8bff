"""Test helpers: tolerances, central finite differences, seeded data."""

import numpy as np

import rnnkit

# |actual - ref| <= atol + rtol * |ref|
TOL = {np.dtype(np.float32): dict(rtol=2e-5, atol=2e-6), np.dtype(np.float64): dict(rtol=1e-10, atol=1e-12)}
# finite differences in float64: h = 1e-6, error O(h^2) plus rounding
FD_TOL = dict(rtol=1e-6, atol=1e-8)


def assert_close(actual, reference, dtype=None, **tol):
    reference = np.asarray(reference)
    kw = dict(TOL[np.dtype(dtype or np.asarray(actual).dtype)])
    kw.update(tol)
    np.testing.assert_allclose(actual, reference, **kw)


def assert_close_product(actual, a, b, dtype, offset=0.0):
    """actual ≈ a @ b + offset (a, b float64), within the rounding that a
    sum of k terms in `dtype` may carry: k·u·(|a| @ |b|) on top of TOL. The
    error of a sum grows with its terms, not with its result, so an element
    that cancels to near zero cannot be held to TOL alone (Eigen's products
    without FMA, in a portable build, leave 3e-6 there)."""
    k = a.shape[-1]
    u = np.finfo(dtype).eps / 2
    tol = TOL[np.dtype(dtype)]
    reference = a @ b + offset
    err = np.abs(np.asarray(actual, np.float64) - reference)
    bound = tol["atol"] + tol["rtol"] * np.abs(reference) + k * u * (np.abs(a) @ np.abs(b))
    worst = np.unravel_index(np.argmax(err - bound), err.shape)
    assert np.all(err <= bound), f"error {err[worst]:.3g} over the bound {bound[worst]:.3g} at {worst}"


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


def cell_makers(units, depth):
    """{kind: dtype -> a seeded cell of that kind} for every recurrent cell."""
    return {
        "rnn": lambda dt: rnnkit.BasicRNNCell(units, input_depth=depth, dtype=dt, seed=1),
        "lstm": lambda dt: rnnkit.BasicLSTMCell(units, input_depth=depth, dtype=dt, seed=1),
        "lstm_proj": lambda dt: rnnkit.LSTMCell(units, num_proj=units - 1, use_peepholes=True, input_depth=depth,
                                                dtype=dt, seed=1),
        "gru": lambda dt: rnnkit.GRUCell(units, input_depth=depth, dtype=dt, seed=1),
        "gru_reset_after": lambda dt: rnnkit.GRUCell(units, reset_after=True, input_depth=depth, dtype=dt, seed=1),
    }
