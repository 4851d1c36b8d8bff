"""sequence_loss / SequenceLoss against a numpy transcription of TF 1.15's
branch structure, for every flag combination; d_logits against finite
differences; div_no_nan; the spec's test vectors; input checks."""

import itertools

import numpy as np
import pytest

import rnnkit
from helpers import FD_TOL, assert_close, numeric_grad, rng

DTYPES = [np.float32, np.float64]
ALL_FLAGS = list(itertools.product([False, True], repeat=4))  # (avg_t, avg_b, sum_t, sum_b)
VALID = [f for f in ALL_FLAGS if not (f[0] and f[2]) and not (f[1] and f[3])]
INVALID = [f for f in ALL_FLAGS if f not in VALID]


def _div_no_nan(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.where(b == 0, 0.0, a / np.where(b == 0, 1.0, b))


def reference_loss(logits, targets, weights, avg_t, avg_b, sum_t, sum_b):
    """TF 1.15 contrib/seq2seq loss.py, branch for branch, in float64."""
    x = logits.astype(np.float64)
    w = weights.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    lse = m[..., 0] + np.log(np.exp(x - m).sum(axis=-1))
    c = (lse - np.take_along_axis(x, targets[..., None].astype(np.int64), axis=-1)[..., 0]) * w
    if avg_t and avg_b:
        return _div_no_nan(c.sum(), w.sum())
    if sum_t and sum_b:
        return _div_no_nan(c.sum(), np.count_nonzero(w))
    if avg_t or avg_b:
        axis = 0 if avg_b else 1
        return _div_no_nan(c.sum(axis=axis), w.sum(axis=axis))
    if sum_t or sum_b:
        axis = 0 if sum_b else 1
        return _div_no_nan(c.sum(axis=axis), np.count_nonzero(w, axis=axis))
    return c


def expected_shape(flags, B, T):
    avg_t, avg_b, sum_t, sum_b = flags
    if (avg_t and avg_b) or (sum_t and sum_b):
        return ()
    if avg_t or avg_b:
        return (T,) if avg_b else (B,)
    if sum_t or sum_b:
        return (T,) if sum_b else (B,)
    return (B, T)


def _data(dtype, B=3, T=4, C=5, seed=0):
    r = rng(seed)
    logits = r.normal(scale=2.0, size=(B, T, C)).astype(dtype)
    targets = r.integers(0, C, size=(B, T))
    weights = r.uniform(0.2, 1.5, size=(B, T)).astype(dtype)
    weights[0, 1] = 0.0  # zero weights change count_nonzero but not Σw
    weights[B - 1, T - 1] = 0.0
    return logits, targets, weights


def _kwargs(flags):
    return dict(zip(("average_across_timesteps", "average_across_batch", "sum_over_timesteps", "sum_over_batch"), flags))


# ---- the spec's test vectors ---------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
# printed to 6 significant digits: within half a unit of the last digit
@pytest.mark.parametrize("rows, expected, half_unit", [
    ([[.2, .7], [.6, .2], [.2, .9]], 0.596759, 5e-7),
    ([[.3, .7]] * 3, 0.513015, 5e-7),
    ([[.1, .9]] * 3, 0.371101, 5e-7),
    ([[1, 0]] * 3, 1.31326, 5e-6),
])
def test_spec_vectors(rows, expected, half_unit, dtype):
    loss = rnnkit.sequence_loss(np.array([rows], dtype), np.array([[1, 1, 1]]), np.ones((1, 3), dtype))
    assert isinstance(loss, np.generic) and loss.dtype == dtype and np.ndim(loss) == 0
    assert abs(float(loss) - expected) <= half_unit


def test_default_flags_are_both_averages():
    logits, targets, weights = _data(np.float64)
    assert_close(rnnkit.sequence_loss(logits, targets, weights),
                 reference_loss(logits, targets, weights, True, True, False, False))


# ---- every flag combination --------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("flags", VALID)
def test_loss_matches_reference(flags, dtype):
    logits, targets, weights = _data(dtype)
    ref = reference_loss(logits, targets, weights, *flags)
    loss = rnnkit.sequence_loss(logits, targets, weights, **_kwargs(flags))
    assert np.shape(loss) == expected_shape(flags, 3, 4)
    assert np.asarray(loss).dtype == dtype
    assert_close(loss, ref, dtype=dtype)
    # the trainable form gives the same numbers
    assert_close(rnnkit.SequenceLoss(*flags).forward(logits, targets, weights), ref, dtype=dtype)


def test_mixed_flags_follow_tf_1_15():
    """average_across_X wins over sum_over_Y: the sum flag is dropped."""
    logits, targets, weights = _data(np.float64)
    w = weights.astype(np.float64)
    c = reference_loss(logits, targets, weights, False, False, False, False)
    by_batch_row = rnnkit.sequence_loss(logits, targets, weights, average_across_timesteps=True,
                                        average_across_batch=False, sum_over_batch=True)
    assert_close(by_batch_row, c.sum(axis=1) / w.sum(axis=1))
    by_step = rnnkit.sequence_loss(logits, targets, weights, average_across_timesteps=False,
                                   average_across_batch=True, sum_over_timesteps=True)
    assert_close(by_step, c.sum(axis=0) / w.sum(axis=0))
    # sum_over_* divides by the count of non-zero weights, not by Σw
    counted = rnnkit.sequence_loss(logits, targets, weights, average_across_timesteps=False,
                                   average_across_batch=False, sum_over_timesteps=True)
    assert_close(counted, c.sum(axis=1) / np.count_nonzero(w, axis=1))
    assert not np.allclose(counted, by_batch_row)
    both = rnnkit.sequence_loss(logits, targets, weights, average_across_timesteps=False,
                                average_across_batch=False, sum_over_timesteps=True, sum_over_batch=True)
    assert_close(both, c.sum() / 10.0)  # 12 positions, 2 zero weights


@pytest.mark.parametrize("flags", INVALID)
def test_conflicting_flags_are_errors(flags):
    logits, targets, weights = _data(np.float32)
    with pytest.raises(ValueError, match="cannot be set to True at same time"):
        rnnkit.sequence_loss(logits, targets, weights, **_kwargs(flags))
    with pytest.raises(ValueError, match="cannot be set to True at same time"):
        rnnkit.SequenceLoss(*flags)
    with pytest.raises(ValueError, match="cannot be set to True at same time"):
        rnnkit._core.sequence_loss_forward(logits, targets.astype(np.int64), weights, *flags)


# ---- gradients ----------------------------------------------------------------

@pytest.mark.parametrize("flags", VALID)
def test_d_logits_match_finite_differences(flags):
    logits, targets, weights = _data(np.float64, B=3, T=3, C=4, seed=1)
    weights[1, :] = 0.0  # a batch row with no weight: zero denominators where it is reduced alone
    loss_fn = rnnkit.SequenceLoss(*flags)
    loss = loss_fn.forward(logits, targets, weights)
    d_loss = rng(2).normal(size=np.shape(loss))

    def f():
        return float(np.sum(np.asarray(rnnkit.sequence_loss(logits, targets, weights, **_kwargs(flags))) * d_loss))

    d_logits = loss_fn.backward(d_loss)
    assert d_logits.shape == logits.shape and d_logits.dtype == np.float64
    assert_close(d_logits, numeric_grad(f, logits), **FD_TOL)
    assert np.abs(d_logits).max() > 1e-3  # not trivially zero


@pytest.mark.parametrize("dtype", DTYPES)
def test_d_logits_closed_form(dtype):
    logits, targets, weights = _data(dtype)
    loss_fn = rnnkit.SequenceLoss()
    loss_fn.forward(logits, targets, weights)
    x = logits.astype(np.float64)
    p = np.exp(x - x.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    onehot = np.eye(5)[targets]
    ref = (p - onehot) * weights.astype(np.float64)[..., None] / weights.astype(np.float64).sum()
    d_logits = loss_fn.backward()
    assert d_logits.dtype == dtype
    assert_close(d_logits, ref, dtype=dtype)
    # None means ones; backward can be asked again
    np.testing.assert_array_equal(loss_fn.backward(np.ones((), dtype)), d_logits)
    np.testing.assert_array_equal(loss_fn.backward(2.0), 2 * d_logits)


# ---- div_no_nan -----------------------------------------------------------------

@pytest.mark.parametrize("flags", VALID)
def test_zero_weights_give_zero_not_nan(flags):
    logits, targets, _ = _data(np.float64)
    weights = np.zeros((3, 4))
    loss_fn = rnnkit.SequenceLoss(*flags)
    loss = loss_fn.forward(logits, targets, weights)
    np.testing.assert_array_equal(loss, np.zeros(expected_shape(flags, 3, 4)))
    np.testing.assert_array_equal(loss_fn.backward(), np.zeros_like(logits))


def test_zero_weight_row_is_zero_and_others_unaffected():
    logits, targets, weights = _data(np.float32)
    weights[1, :] = 0.0
    loss_fn = rnnkit.SequenceLoss(average_across_timesteps=True, average_across_batch=False)
    loss = loss_fn.forward(logits, targets, weights)
    assert loss[1] == 0.0 and np.all(np.isfinite(loss))
    assert_close(loss, reference_loss(logits, targets, weights, True, False, False, False), dtype=np.float32)
    d = loss_fn.backward()
    assert np.all(d[1] == 0.0) and np.all(np.isfinite(d)) and np.abs(d[0]).max() > 0


# ---- numerics and dtypes -----------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_logsumexp_is_stable(dtype):
    logits, targets, weights = _data(dtype)
    big = logits + dtype(1000.0)  # exp would overflow without the max shift
    loss = rnnkit.sequence_loss(big, targets, weights, average_across_timesteps=False, average_across_batch=False)
    assert np.all(np.isfinite(loss))
    assert_close(loss, reference_loss(logits, targets, weights, False, False, False, False), dtype=dtype, atol=1e-4 if dtype == np.float32 else 1e-12, rtol=1e-4 if dtype == np.float32 else 1e-10)


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_shift_finds_the_largest_logit_anywhere_in_the_row(dtype):
    # The kernel takes each row's max in packets and then the leftover
    # classes one by one. One huge logit per row, at every position of a
    # 65-class row (first, inside and at the edges of packets, the leftover
    # tail): exp(huge - a smaller max) overflows, so a max that missed it
    # would give inf or NaN instead of the loss.
    C = 65
    r = rng(7)
    logits = r.normal(size=(1, C, C)).astype(dtype)
    for p in range(C):
        logits[0, p, p] = dtype(5000.0)  # exp overflows float32 and float64 beyond ~89 and ~710
    targets = r.integers(0, C, size=(1, C))
    weights = np.ones((1, C), dtype)
    loss = rnnkit.sequence_loss(logits, targets, weights, average_across_timesteps=False, average_across_batch=False)
    assert np.all(np.isfinite(loss))
    assert_close(loss, reference_loss(logits, targets, weights, False, False, False, False), dtype=dtype)


def test_target_dtypes_give_the_same_loss():
    logits, targets, weights = _data(np.float64)
    ref = rnnkit.sequence_loss(logits, targets.astype(np.int64), weights)
    for dt in (np.int32, np.int16, np.uint8, np.uint64):
        assert rnnkit.sequence_loss(logits, targets.astype(dt), weights) == ref


def test_weights_converted_to_logits_dtype():
    logits, targets, weights = _data(np.float32)
    loss = rnnkit.sequence_loss(logits, targets, weights.astype(np.float64))
    assert loss.dtype == np.float32


# ---- bad inputs ---------------------------------------------------------------------

def test_bad_inputs():
    logits, targets, weights = _data(np.float32)
    with pytest.raises(ValueError, match=r"logits must have rank 3 \[B, T, C\], got shape \[3, 4\]"):
        rnnkit.sequence_loss(logits[:, :, 0], targets, weights)
    with pytest.raises(TypeError, match="logits must be a float array"):
        rnnkit.sequence_loss(logits.astype(np.int32), targets, weights)
    with pytest.raises(TypeError, match="logits must be float32 or float64"):
        rnnkit.sequence_loss(logits.astype(np.float16), targets, weights)
    with pytest.raises(TypeError, match="targets must be an integer array"):
        rnnkit.sequence_loss(logits, targets.astype(np.float32), weights)
    with pytest.raises(ValueError, match=r"targets must have shape \[3, 4\], got \[4, 3\]"):
        rnnkit.sequence_loss(logits, targets.T, weights)
    bad = targets.copy()
    bad[2, 1] = 5
    with pytest.raises(ValueError, match=r"targets values must lie in \[0, 5\), got 5 at index \(2, 1\)"):
        rnnkit.sequence_loss(logits, bad, weights)
    bad[2, 1] = 0
    bad[0, 3] = -1
    with pytest.raises(ValueError, match=r"got -1 at index \(0, 3\)"):
        rnnkit.sequence_loss(logits, bad, weights)
    with pytest.raises(ValueError, match=r"weights must have shape \[3, 4\], got \[3\]"):
        rnnkit.sequence_loss(logits, targets, weights[:, 0])
    with pytest.raises(TypeError, match="weights must be a float array"):
        rnnkit.sequence_loss(logits, targets, np.ones((3, 4), np.int32))


def test_backward_checks():
    loss_fn = rnnkit.SequenceLoss(average_across_batch=False)
    with pytest.raises(RuntimeError, match="before forward"):
        loss_fn.backward()
    logits, targets, weights = _data(np.float64)
    loss_fn.forward(logits, targets, weights)
    with pytest.raises(ValueError, match=r"d_loss must have shape \[3\] \(the loss's\), got \[4\]"):
        loss_fn.backward(np.ones(4))
    with pytest.raises(TypeError, match="d_loss must be a float array"):
        loss_fn.backward(np.ones(3, np.int64))


def test_core_checks_targets_too():
    logits, targets, weights = _data(np.float64)
    for dt in (np.int32, np.int64):
        bad = targets.astype(dt)
        bad[1, 2] = 7
        with pytest.raises(ValueError, match=r"targets values must lie in \[0, 5\), got 7 at index \(1, 2\)"):
            rnnkit._core.sequence_loss_forward(logits, bad, weights)
    with pytest.raises(TypeError, match="targets must have dtype int32 or int64"):
        rnnkit._core.sequence_loss_forward(logits, targets.astype(np.int16), weights)
    with pytest.raises(ValueError, match=r"weights must have shape \[3, 4\], got \[4, 3\]"):
        rnnkit._core.sequence_loss_forward(logits, targets, np.ascontiguousarray(weights.T))
    with pytest.raises(ValueError, match="backward called before forward"):
        rnnkit._core.sequence_loss_backward({}, np.ones(()))
