"""AdamOptimizer and GradientDescentOptimizer against hand-written numpy
updates; clip_by_global_norm against numpy; input checks."""

import numpy as np
import pytest

import rnnkit
from helpers import assert_close, rng

DTYPES = [np.float32, np.float64]


def adam_reference(var, grads, lr, beta1, beta2, epsilon, steps):
    """TF1 Adam in float64. `grads` holds one gradient (or None) per call;
    `steps` the global step of each call. Returns (var, m, v)."""
    var = var.astype(np.float64)
    m = np.zeros_like(var)
    v = np.zeros_like(var)
    for g, t in zip(grads, steps):
        if g is None:
            continue
        g = g.astype(np.float64)
        lr_t = lr * np.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
        m = m + (g - m) * (1 - beta1)
        v = v + (g * g - v) * (1 - beta2)
        var = var - lr_t * m / (np.sqrt(v) + epsilon)
    return var, m, v


def _two_variables(dtype, seed=0):
    r = rng(seed)
    return [r.normal(size=(3, 4)).astype(dtype), r.normal(size=5).astype(dtype)]


def _gradient_sequence(variables, n, seed=1):
    r = rng(seed)
    return [[r.normal(size=v.shape).astype(v.dtype) for v in variables] for _ in range(n)]


# ---- Adam --------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hyper", [
    dict(),  # TF's defaults
    dict(learning_rate=0.1, beta1=0.8, beta2=0.99, epsilon=0.05),  # a large epsilon: not bias-corrected
])
def test_adam_matches_numpy(dtype, hyper):
    variables = _two_variables(dtype)
    initial = [v.copy() for v in variables]
    grads = _gradient_sequence(variables, 4)
    opt = rnnkit.AdamOptimizer(**hyper)
    for step in grads:
        opt.apply_gradients(list(zip(step, variables)))
    assert opt.iterations == 4
    h = dict(learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8)
    h.update(hyper)
    for i, var in enumerate(variables):
        ref_var, ref_m, ref_v = adam_reference(initial[i], [g[i] for g in grads], h["learning_rate"], h["beta1"],
                                               h["beta2"], h["epsilon"], [1, 2, 3, 4])
        assert var.dtype == dtype
        assert_close(var, ref_var)
        assert_close(opt.get_slot(var, "m"), ref_m)
        assert_close(opt.get_slot(var, "v"), ref_v)
        assert np.abs(var - initial[i]).max() > 0.5 * h["learning_rate"]  # it moved


def test_adam_epsilon_hat_differs_from_bias_corrected_epsilon():
    """With a large epsilon the two forms differ; the update must be TF's."""
    var = np.array([1.0])
    g = np.array([0.5])
    opt = rnnkit.AdamOptimizer(learning_rate=0.1, beta1=0.9, beta2=0.999, epsilon=0.1)
    opt.apply_gradients([(g, var)])
    m, v = 0.1 * 0.5, 0.001 * 0.25
    lr_t = 0.1 * np.sqrt(1 - 0.999) / (1 - 0.9)
    tf_form = 1.0 - lr_t * m / (np.sqrt(v) + 0.1)
    paper_form = 1.0 - 0.1 * (m / 0.1) / (np.sqrt(v / 0.001) + 0.1)
    assert abs(tf_form - paper_form) > 1e-3
    assert_close(var, [tf_form])


def test_adam_skips_none_gradients_but_counts_the_step():
    variables = _two_variables(np.float64)
    initial = [v.copy() for v in variables]
    grads = _gradient_sequence(variables, 3)
    grads[1][1] = None  # the second variable gets no gradient at step 2
    opt = rnnkit.AdamOptimizer(learning_rate=0.01)
    for step in grads:
        opt.apply_gradients(list(zip(step, variables)))
    for i, var in enumerate(variables):
        ref, _, _ = adam_reference(initial[i], [g[i] for g in grads], 0.01, 0.9, 0.999, 1e-8, [1, 2, 3])
        assert_close(var, ref)
    with pytest.raises(ValueError, match="No gradients"):
        opt.apply_gradients([(None, variables[0])])


def test_adam_mixed_dtypes_in_one_call():
    variables = [_two_variables(np.float32)[0], _two_variables(np.float64)[1]]
    initial = [v.copy() for v in variables]
    grads = _gradient_sequence(variables, 3)
    opt = rnnkit.AdamOptimizer(learning_rate=0.05)
    for step in grads:
        opt.apply_gradients(list(zip(step, variables)))
    for i, var in enumerate(variables):
        ref, _, _ = adam_reference(initial[i], [g[i] for g in grads], 0.05, 0.9, 0.999, 1e-8, [1, 2, 3])
        assert_close(var, ref)


def test_adam_slots_are_per_variable_identity():
    a = np.zeros(3)
    b = np.zeros(3)
    opt = rnnkit.AdamOptimizer(learning_rate=0.1)
    assert opt.get_slot(a, "m") is None
    opt.apply_gradients([(np.ones(3), a)])
    opt.apply_gradients([(np.ones(3), b)])  # step 2, but b's slots start at zero
    np.testing.assert_allclose(opt.get_slot(a, "m"), 0.1 * np.ones(3), rtol=1e-12)
    np.testing.assert_allclose(opt.get_slot(b, "m"), 0.1 * np.ones(3), rtol=1e-12)
    assert opt.get_slot(a, "m") is not opt.get_slot(b, "m")
    ref_b, _, _ = adam_reference(np.zeros(3), [np.ones(3)], 0.1, 0.9, 0.999, 1e-8, [2])
    assert_close(b, ref_b)


def test_adam_trains_a_dense_layer_on_a_sequence_loss():
    """End to end: Dense -> sequence_loss -> Adam lowers the loss."""
    r = rng(3)
    x = r.normal(size=(2, 3, 4))
    targets = r.integers(0, 5, size=(2, 3))
    layer = rnnkit.Dense(5, dtype=np.float64, seed=0)
    loss_fn = rnnkit.SequenceLoss()
    opt = rnnkit.AdamOptimizer(0.1)
    losses = []
    for _ in range(20):
        losses.append(float(loss_fn.forward(layer.forward(x), targets, np.ones((2, 3)))))
        layer.backward(loss_fn.backward())
        opt.apply_gradients(layer.grads_and_vars())
    assert losses[-1] < 0.2 * losses[0]


# ---- SGD -----------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_sgd_matches_numpy(dtype):
    variables = _two_variables(dtype)
    initial = [v.copy() for v in variables]
    grads = _gradient_sequence(variables, 3)
    opt = rnnkit.GradientDescentOptimizer(0.3)
    for step in grads:
        opt.apply_gradients(list(zip(step, variables)))
    for i, var in enumerate(variables):
        ref = initial[i].astype(np.float64) - 0.3 * sum(g[i].astype(np.float64) for g in grads)
        assert var.dtype == dtype
        assert_close(var, ref)


def test_sgd_updates_in_place_and_skips_none():
    var = np.ones(4, np.float32)
    keep = np.ones(2, np.float32)
    view = var  # the same array object must change
    rnnkit.GradientDescentOptimizer(0.5).apply_gradients([(np.full(4, 2, np.float32), var), (None, keep)])
    np.testing.assert_array_equal(view, np.zeros(4, np.float32))
    np.testing.assert_array_equal(keep, np.ones(2, np.float32))


# ---- checks ----------------------------------------------------------------------------

@pytest.mark.parametrize("make", [rnnkit.AdamOptimizer, rnnkit.GradientDescentOptimizer])
def test_optimizer_checks(make):
    for lr in (0, -0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="learning_rate must be a finite number > 0"):
            make(learning_rate=lr)
    with pytest.raises(TypeError, match="learning_rate must be a number"):
        make(learning_rate="0.1")
    opt = make(learning_rate=0.1)
    a = np.zeros((2, 3), np.float32)
    b = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=r"grads_and_vars\[1\]: gradient must have shape \[3\] \(the variable's\), got \[4\]"):
        opt.apply_gradients([(np.ones((2, 3), np.float32), a), (np.ones(4, np.float32), b)])
    np.testing.assert_array_equal(a, 0)  # nothing was applied: every entry is checked first
    with pytest.raises(TypeError, match=r"grads_and_vars\[0\]: gradient must have dtype float32 \(the variable's\), got float64"):
        opt.apply_gradients([(np.ones((2, 3)), a)])
    with pytest.raises(TypeError, match=r"grads_and_vars\[0\]: variable must be a numpy array"):
        opt.apply_gradients([(np.ones(3), [0.0, 0.0, 0.0])])
    with pytest.raises(TypeError, match=r"grads_and_vars\[1\] must be a \(gradient, variable\) pair"):
        opt.apply_gradients([(np.ones(3, np.float32), b), b])
    with pytest.raises(TypeError, match=r"grads_and_vars\[0\]: variable must have dtype float32 or float64"):
        opt.apply_gradients([(np.ones(3, np.int32), np.zeros(3, np.int32))])
    frozen = np.zeros(3, np.float32)
    frozen.setflags(write=False)
    with pytest.raises(ValueError, match=r"grads_and_vars\[0\]: variable must be writeable"):
        opt.apply_gradients([(np.ones(3, np.float32), frozen)])
    with pytest.raises(ValueError, match="No gradients"):
        opt.apply_gradients([])


def test_adam_hyperparameter_checks():
    with pytest.raises(ValueError, match=r"beta1 must lie in \[0, 1\)"):
        rnnkit.AdamOptimizer(beta1=1.0)
    with pytest.raises(ValueError, match=r"beta2 must lie in \[0, 1\)"):
        rnnkit.AdamOptimizer(beta2=-0.1)
    with pytest.raises(ValueError, match="epsilon must be a finite number >= 0"):
        rnnkit.AdamOptimizer(epsilon=-1e-8)


# ---- clip_by_global_norm -----------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_by_global_norm_clips(dtype):
    tensors = [rng(4).normal(size=(3, 4)).astype(dtype), rng(5).normal(size=7).astype(dtype)]
    gn = np.sqrt(sum(np.sum(t.astype(np.float64) ** 2) for t in tensors))
    clipped, norm = rnnkit.clip_by_global_norm(tensors, 1.5)
    assert gn > 1.5
    assert isinstance(norm, np.generic) and norm.dtype == dtype
    assert_close(norm, gn)
    for c, t in zip(clipped, tensors):
        assert c.dtype == dtype and c.shape == t.shape
        assert_close(c, t.astype(np.float64) * 1.5 / gn)
    new_norm = np.sqrt(sum(np.sum(c.astype(np.float64) ** 2) for c in clipped))
    assert_close(new_norm, 1.5, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_by_global_norm_no_clip(dtype):
    tensors = [np.array([0.3, -0.4], dtype), np.array([[0.0, 1.2]], dtype)]
    clipped, norm = rnnkit.clip_by_global_norm(tensors, 5.0)
    assert_close(norm, 1.3)
    for c, t in zip(clipped, tensors):
        np.testing.assert_array_equal(c, t)  # scale is exactly 1
        assert c is not t  # new arrays, the inputs are untouched


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_clip_by_global_norm_non_finite(bad):
    tensors = [np.array([1.0, bad], np.float32), np.array([2.0, 3.0], np.float32)]
    clipped, norm = rnnkit.clip_by_global_norm(tensors, 1.0)
    assert not np.isfinite(norm)
    assert np.isnan(norm) if np.isnan(bad) else norm == np.inf
    for c in clipped:
        assert np.all(np.isnan(c))


def test_clip_by_global_norm_none_entries_and_lists():
    clipped, norm = rnnkit.clip_by_global_norm([None, np.array([3.0, 4.0]), None], 2.5)
    assert clipped[0] is None and clipped[2] is None
    assert_close(clipped[1], [1.5, 2.0])
    assert norm == 5.0


def test_clip_by_global_norm_is_deterministic_across_threads():
    t = [rng(6).normal(size=100_000).astype(np.float32), rng(7).normal(size=(300, 50)).astype(np.float32)]
    before = rnnkit.get_num_threads()
    try:
        rnnkit.set_num_threads(1)
        one = rnnkit.clip_by_global_norm(t, 10.0)
        rnnkit.set_num_threads(2)
        two = rnnkit.clip_by_global_norm(t, 10.0)
    finally:
        rnnkit.set_num_threads(before)
    assert one[1] == two[1]
    for a, b in zip(one[0], two[0]):
        np.testing.assert_array_equal(a, b)


def test_clip_by_global_norm_checks():
    for clip in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="clip_norm must be a finite number > 0"):
            rnnkit.clip_by_global_norm([np.ones(2)], clip)
    with pytest.raises(TypeError, match=r"tensors\[1\] must be a float array"):
        rnnkit.clip_by_global_norm([np.ones(2), np.ones(2, np.int64)], 1.0)
    with pytest.raises(TypeError, match=r"tensors\[1\]: every tensor must have the dtype of the first, float64, got float32"):
        rnnkit.clip_by_global_norm([np.ones(2), np.ones(2, np.float32)], 1.0)
    with pytest.raises(ValueError, match="at least one array"):
        rnnkit.clip_by_global_norm([None], 1.0)
