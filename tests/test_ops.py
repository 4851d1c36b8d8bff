"""softmax, the softmax cross-entropies, mean_squared_error, embedding_lookup
and their layers (SoftmaxCrossEntropy, MeanSquaredError, Embedding): TF1's
formulas as float64 numpy references, float64 finite-difference gradients,
bad input, thread determinism."""

import numpy as np
import pytest

import rnnkit
from helpers import FD_TOL, assert_close, numeric_grad, rng

DTYPES = [np.float32, np.float64]


# ---- float64 references from TF1's formulas -------------------------------------------
def ref_log_softmax(x, axis=-1):
    x = np.asarray(x, np.float64)
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def ref_softmax(x, axis=-1):
    return np.exp(ref_log_softmax(x, axis))


def ref_softmax_ce(labels, logits):  # softmax_cross_entropy_with_logits_v2
    return -(np.asarray(labels, np.float64) * ref_log_softmax(logits)).sum(-1)


def ref_sparse_ce(labels, logits):
    return -np.take_along_axis(ref_log_softmax(logits), np.asarray(labels)[..., None], -1)[..., 0]


def ref_mse(labels, predictions, weights=1.0):  # SUM_BY_NONZERO_WEIGHTS
    p = np.asarray(predictions, np.float64)
    w = np.broadcast_to(np.asarray(weights, np.float64), p.shape)
    count = np.count_nonzero(w)
    return 0.0 if count == 0 else float((w * (p - np.asarray(labels, np.float64)) ** 2).sum() / count)


def distributions(r, shape):
    d = r.uniform(0.1, 1.0, shape)
    return d / d.sum(-1, keepdims=True)


# ---- softmax ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5,), (4, 7), (2, 3, 19), (3, 1)])
def test_softmax_matches_reference(dtype, shape):
    x = (rng(0).normal(size=shape) * 4).astype(dtype)
    y = rnnkit.nn.softmax(x)
    assert y.dtype == dtype and y.shape == shape
    assert_close(y, ref_softmax(x))
    assert rnnkit.softmax is rnnkit.nn.softmax


def test_softmax_large_logits_are_stable():
    y = rnnkit.nn.softmax(np.array([[1000.0, 1001.0, -1000.0]], np.float32))
    assert np.all(np.isfinite(y))
    assert_close(y, ref_softmax(np.array([[1000.0, 1001.0, -1000.0]])))


@pytest.mark.parametrize("axis", [0, 1, -2])
def test_softmax_other_axis(axis):
    x = rng(1).normal(size=(3, 4, 5))
    assert_close(rnnkit.nn.softmax(x, axis=axis), ref_softmax(x, axis=axis))


def test_softmax_gradient_matches_finite_differences():
    r = rng(2)
    x, w = r.normal(size=(3, 6)), r.normal(size=(3, 6))
    y = rnnkit.nn.softmax(x)
    analytic = rnnkit._core.softmax_backward(y, w)
    numeric = numeric_grad(lambda: float((rnnkit.nn.softmax(x) * w).sum()), x)
    np.testing.assert_allclose(analytic, numeric, **FD_TOL)


def test_softmax_bad_input():
    with pytest.raises(TypeError, match="logits must be a float array"):
        rnnkit.nn.softmax(np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="axis must lie in"):
        rnnkit.nn.softmax(np.zeros((2, 3)), axis=2)
    with pytest.raises(TypeError, match="axis must be an int"):
        rnnkit.nn.softmax(np.zeros((2, 3)), axis=1.0)


# ---- softmax cross-entropy (dense labels, TF1's _v2) -----------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(6,), (4, 5), (2, 3, 11)])
def test_softmax_cross_entropy_matches_reference(dtype, shape):
    r = rng(3)
    logits = (r.normal(size=shape) * 3).astype(dtype)
    labels = distributions(r, shape).astype(dtype)
    loss = rnnkit.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    assert loss.dtype == dtype and loss.shape == shape[:-1]
    assert_close(loss, ref_softmax_ce(labels, logits))
    assert rnnkit.nn.softmax_cross_entropy_with_logits_v2 is rnnkit.nn.softmax_cross_entropy_with_logits


def test_softmax_cross_entropy_other_axis():
    r = rng(4)
    logits, labels = r.normal(size=(5, 3)), distributions(r, (3, 5)).T
    loss = rnnkit.nn.softmax_cross_entropy_with_logits(labels, logits, axis=0)
    assert_close(loss, ref_softmax_ce(labels.T, logits.T))


def test_softmax_cross_entropy_gradient_matches_finite_differences():
    """d/dlogits = softmax · Σ labels − labels per row, also for labels that do not sum to 1."""
    r = rng(5)
    logits = r.normal(size=(2, 3, 4))
    labels = r.uniform(0, 1, (2, 3, 4))  # unnormalised: the Σ labels factor matters
    d_loss = r.normal(size=(2, 3))
    loss, probs = rnnkit._core.softmax_cross_entropy(logits, labels, True)
    analytic = rnnkit._core.softmax_cross_entropy_backward(labels, probs, d_loss)
    numeric = numeric_grad(lambda: float((rnnkit.nn.softmax_cross_entropy_with_logits(labels, logits) * d_loss).sum()),
                           logits)
    np.testing.assert_allclose(analytic, numeric, **FD_TOL)


def test_softmax_cross_entropy_bad_input():
    logits = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"labels must have logits' shape \[2, 3\].*got \[2, 4\]"):
        rnnkit.nn.softmax_cross_entropy_with_logits(np.zeros((2, 4)), logits)
    with pytest.raises(TypeError, match="labels must be a float array"):
        rnnkit.nn.softmax_cross_entropy_with_logits(np.zeros((2, 3), bool), logits)
    with pytest.raises(TypeError, match="logits must be a float array"):
        rnnkit.nn.softmax_cross_entropy_with_logits(np.zeros((2, 3)), np.zeros((2, 3), np.int32))


# ---- sparse softmax cross-entropy --------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("label_dtype", [np.int32, np.int64, np.uint8])
@pytest.mark.parametrize("shape", [(7,), (4, 5), (2, 3, 40)])
def test_sparse_softmax_cross_entropy_matches_reference(dtype, label_dtype, shape):
    r = rng(6)
    logits = (r.normal(size=shape) * 3).astype(dtype)
    labels = r.integers(0, shape[-1], shape[:-1]).astype(label_dtype)
    loss = rnnkit.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    assert loss.dtype == dtype and loss.shape == shape[:-1]
    assert_close(loss, ref_sparse_ce(labels, logits))


def test_sparse_softmax_cross_entropy_gradient_matches_finite_differences():
    r = rng(7)
    logits, labels, d_loss = r.normal(size=(2, 3, 5)), r.integers(0, 5, (2, 3)), r.normal(size=(2, 3))
    labels = labels.astype(np.int64)
    _, probs = rnnkit._core.sparse_softmax_cross_entropy(logits, labels, True)
    analytic = rnnkit._core.sparse_softmax_cross_entropy_backward(labels, probs, d_loss)
    f = lambda: float((rnnkit.nn.sparse_softmax_cross_entropy_with_logits(labels, logits) * d_loss).sum())
    np.testing.assert_allclose(analytic, numeric_grad(f, logits), **FD_TOL)


def test_sparse_softmax_cross_entropy_bad_labels():
    logits = np.zeros((2, 3, 4), np.float32)
    labels = np.array([[0, 1, 2], [3, 4, 0]])
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\), got 4 at index \[1, 1\]"):
        rnnkit.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\), got -1 at index \[0, 0\]"):
        rnnkit.nn.sparse_softmax_cross_entropy_with_logits(-np.ones((2, 3), np.int32), logits)
    with pytest.raises(ValueError, match=r"labels must have shape \[2, 3\].*got \[3, 2\]"):
        rnnkit.nn.sparse_softmax_cross_entropy_with_logits(np.zeros((3, 2), np.int32), logits)
    with pytest.raises(TypeError, match="labels must be integer class indices"):
        rnnkit.nn.sparse_softmax_cross_entropy_with_logits(np.zeros((2, 3)), logits)


def test_core_checks_its_arguments_itself():
    """The bindings check labels, ids and empty class axes too: a caller past the
    Python layer gets an error, not a wild read."""
    core = rnnkit._core
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\), got 9"):
        core.sparse_softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 9], np.int32))
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 4\), got 4"):
        core.embedding_lookup(np.zeros((4, 2)), np.array([4], np.int64))
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 4\), got -1"):
        core.embedding_lookup_backward(np.array([-1], np.int32), np.zeros((1, 2)), 4)
    with pytest.raises(ValueError, match=r"logits must have a non-empty last axis"):
        core.softmax(np.zeros((2, 0)))
    with pytest.raises(ValueError, match=r"logits must have a non-empty last axis"):
        core.softmax_cross_entropy(np.zeros((2, 0)), np.zeros((2, 0)))
    with pytest.raises(ValueError, match=r"labels must have shape \[2, 3\]"):
        core.softmax_cross_entropy(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(TypeError, match="labels must have dtype int32 or int64"):
        core.sparse_softmax_cross_entropy(np.zeros((2, 3)), np.zeros(2, np.int16))
    with pytest.raises(ValueError, match=r"d_loss must be a scalar"):
        core.mean_squared_error_backward(np.zeros(2), np.zeros(2), np.ones(2), np.ones(2))
    with pytest.raises(ValueError, match=r"sequence_length values must lie in \[0, 3\]"):
        core.last_output_backward(np.zeros((2, 1)), np.array([1, 4], np.int32), 3)


def test_empty_batches():
    assert rnnkit.nn.softmax(np.zeros((0, 3))).shape == (0, 3)
    assert rnnkit.nn.sparse_softmax_cross_entropy_with_logits(np.zeros(0, np.int32), np.zeros((0, 3))).shape == (0,)
    assert rnnkit.SoftmaxCrossEntropy()(np.zeros((0, 3)), np.zeros(0, np.int32)) == 0.0
    assert rnnkit.losses.mean_squared_error(np.zeros((0, 2)), np.zeros((0, 2))) == 0.0
    assert rnnkit.nn.embedding_lookup(np.zeros((4, 2)), np.zeros((0, 3), np.int32)).shape == (0, 3, 2)
    assert rnnkit.last_output(np.zeros((0, 3, 2))).shape == (0, 2)


# ---- mean squared error ----------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weights", [1.0, 0.5, "row", "full", "column"])
def test_mean_squared_error_matches_reference(dtype, weights):
    r = rng(8)
    p, y = r.normal(size=(4, 3)).astype(dtype), r.normal(size=(4, 3))
    w = {"row": r.uniform(0, 2, (4, 1)), "full": r.uniform(0, 2, (4, 3)) * (r.uniform(size=(4, 3)) > 0.3),
         "column": np.array([1.0, 0.0, 2.0])}.get(weights, weights)
    loss = rnnkit.losses.mean_squared_error(y, p, w)
    assert loss.dtype == dtype and np.ndim(loss) == 0
    assert_close(loss, ref_mse(y, p, w))


def test_mean_squared_error_default_is_the_mean_and_zero_weights_give_zero():
    p, y = np.array([1.0, 2.0, 4.0]), np.array([0.0, 2.0, 2.0])
    assert rnnkit.losses.mean_squared_error(y, p) == pytest.approx(5.0 / 3.0, rel=1e-15)
    assert rnnkit.losses.mean_squared_error(y, p, weights=np.zeros(3)) == 0.0
    assert rnnkit.losses.mean_squared_error(y, p, weights=[0.0, 0.0, 3.0]) == pytest.approx(12.0, rel=1e-15)


def test_mean_squared_error_bad_input():
    with pytest.raises(ValueError, match=r"labels must have predictions' shape \[2, 3\], got \[3, 2\]"):
        rnnkit.losses.mean_squared_error(np.zeros((3, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"weights must broadcast to shape \[2, 3\], got shape \[2\]"):
        rnnkit.losses.mean_squared_error(np.zeros((2, 3)), np.zeros((2, 3)), weights=np.ones(2))
    with pytest.raises(TypeError, match="predictions must be a float array"):
        rnnkit.losses.mean_squared_error(np.zeros(3), np.zeros(3, np.int64))


def test_mean_squared_error_layer_gradient_matches_finite_differences():
    r = rng(9)
    p, y, w = r.normal(size=(3, 4)), r.normal(size=(3, 4)), r.uniform(0, 1, (3, 1))
    layer = rnnkit.MeanSquaredError()
    value = layer.forward(p, y, w)
    assert_close(value, ref_mse(y, p, w))
    analytic = layer.backward(2.5)
    numeric = numeric_grad(lambda: 2.5 * rnnkit.losses.mean_squared_error(y, p, w), p)
    np.testing.assert_allclose(analytic, numeric, **FD_TOL)
    assert layer(p, y) == pytest.approx(ref_mse(y, p), rel=1e-14)


# ---- the SoftmaxCrossEntropy layer -------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_sparse_softmax_cross_entropy_layer_is_the_mean_over_rows(dtype):
    r = rng(10)
    logits, labels = r.normal(size=(6, 4)).astype(dtype), r.integers(0, 4, 6)
    layer = rnnkit.SoftmaxCrossEntropy()
    value = layer.forward(logits, labels)
    assert value.dtype == dtype
    assert_close(value, ref_sparse_ce(labels, logits).mean())
    assert_close(layer(logits, labels), value)


def test_softmax_cross_entropy_layer_weights():
    """Σ w·ce / count_nonzero(w); per-row weights [B] apply to every step of a [B, T] row."""
    r = rng(11)
    logits, labels = r.normal(size=(3, 4, 5)), r.integers(0, 5, (3, 4))
    w_rows = np.array([1.0, 0.0, 2.0])
    ce = ref_sparse_ce(labels, logits)
    full = np.broadcast_to(w_rows[:, None], (3, 4))
    expect = (full * ce).sum() / np.count_nonzero(full)
    assert rnnkit.SoftmaxCrossEntropy().forward(logits, labels, w_rows) == pytest.approx(expect, rel=1e-13)
    w = r.uniform(0, 1, (3, 4))
    assert rnnkit.SoftmaxCrossEntropy()(logits, labels, w) == pytest.approx((w * ce).sum() / 12, rel=1e-13)
    assert rnnkit.SoftmaxCrossEntropy()(logits, labels, np.zeros(3)) == 0.0
    with pytest.raises(ValueError, match=r"weights must have shape \[3, 4\] \(the labels' shape\) or a prefix"):
        rnnkit.SoftmaxCrossEntropy()(logits, labels, np.ones(4))


@pytest.mark.parametrize("sparse", [True, False])
def test_softmax_cross_entropy_layer_gradient_matches_finite_differences(sparse):
    r = rng(12)
    logits = r.normal(size=(2, 3, 4))
    targets = r.integers(0, 4, (2, 3)) if sparse else distributions(r, (2, 3, 4))
    w = np.array([0.5, 2.0])
    layer = rnnkit.SoftmaxCrossEntropy(sparse=sparse)
    layer.forward(logits, targets, w)
    analytic = layer.backward(1.5)
    numeric = numeric_grad(lambda: 1.5 * rnnkit.SoftmaxCrossEntropy(sparse=sparse)(logits, targets, w), logits)
    np.testing.assert_allclose(analytic, numeric, **FD_TOL)


def test_softmax_cross_entropy_layer_dense_targets():
    r = rng(13)
    logits, targets = r.normal(size=(5, 3)), distributions(r, (5, 3))
    value = rnnkit.SoftmaxCrossEntropy(sparse=False).forward(logits, targets)
    assert value == pytest.approx(ref_softmax_ce(targets, logits).mean(), rel=1e-13)


def test_loss_layers_bad_use():
    with pytest.raises(RuntimeError, match="before forward"):
        rnnkit.SoftmaxCrossEntropy().backward()
    with pytest.raises(RuntimeError, match="before forward"):
        rnnkit.MeanSquaredError().backward()
    with pytest.raises(TypeError, match="sparse must be a bool"):
        rnnkit.SoftmaxCrossEntropy(sparse="yes")
    layer = rnnkit.SoftmaxCrossEntropy()
    layer.forward(np.zeros((2, 3)), [0, 1])
    with pytest.raises(ValueError, match="d_loss must be a number"):
        layer.backward(np.ones(2))
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 3\), got 3 at index \[1\]"):
        layer.forward(np.zeros((2, 3)), [0, 3])


def test_sequence_loss_weights_default_to_ones():
    r = rng(14)
    logits, targets = r.normal(size=(2, 3, 4)), r.integers(0, 4, (2, 3))
    layer = rnnkit.SequenceLoss()
    assert layer.forward(logits, targets) == layer(logits, targets, np.ones((2, 3)))
    assert layer.backward().shape == (2, 3, 4)


# ---- thread determinism ----------------------------------------------------------------------
def test_ops_bit_identical_across_thread_counts(restore_threads):
    r = rng(15)
    logits = r.normal(size=(300, 70)).astype(np.float32)
    labels = r.integers(0, 70, 300)
    dist = distributions(r, (300, 70)).astype(np.float32)
    ids = r.integers(0, 50, (40, 30))
    dy = r.normal(size=(40, 30, 130)).astype(np.float32)

    def run():
        emb = rnnkit.Embedding(50, 130, seed=0)
        emb.forward(ids)
        emb.backward(dy)
        return [rnnkit.nn.softmax(logits), rnnkit.nn.sparse_softmax_cross_entropy_with_logits(labels, logits),
                rnnkit.nn.softmax_cross_entropy_with_logits(dist, logits), emb.grads["embedding"]]

    rnnkit.set_num_threads(1)
    one = run()
    rnnkit.set_num_threads(2)
    for a, b in zip(one, run()):
        np.testing.assert_array_equal(a, b)


# ---- embedding ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_embedding_lookup_is_a_row_gather(dtype):
    r = rng(16)
    params = r.normal(size=(7, 3)).astype(dtype)
    ids = r.integers(0, 7, (2, 5))
    out = rnnkit.nn.embedding_lookup(params, ids)
    assert out.dtype == dtype and out.shape == (2, 5, 3)
    np.testing.assert_array_equal(out, params[ids])
    assert rnnkit.embedding_lookup is rnnkit.nn.embedding_lookup


def test_embedding_lookup_bad_ids():
    params = np.zeros((4, 2), np.float32)
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 4\), got 4 at index \[1, 0\]"):
        rnnkit.nn.embedding_lookup(params, [[0, 1], [4, 2]])
    with pytest.raises(TypeError, match="ids must be an integer array"):
        rnnkit.nn.embedding_lookup(params, [0.0, 1.0])
    with pytest.raises(ValueError, match=r"params must have rank 2"):
        rnnkit.nn.embedding_lookup(np.zeros(4), [0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_embedding_layer_forward_and_gradient(dtype):
    emb = rnnkit.Embedding(6, 4, dtype=dtype, seed=3)
    table = emb.variables["embedding"]
    assert table.shape == (6, 4) and table.dtype == dtype
    ids = np.array([[1, 5, 1], [0, 1, 3]])
    out = emb.forward(ids)
    np.testing.assert_array_equal(out, table[ids])
    np.testing.assert_array_equal(emb(ids), out)
    dy = rng(17).normal(size=(2, 3, 4)).astype(dtype)
    assert emb.backward(dy) is None
    expect = np.zeros((6, 4))
    np.add.at(expect, ids, dy.astype(np.float64))
    assert_close(emb.grads["embedding"], expect)
    assert emb.grads_and_vars()[0][1] is table


def test_embedding_gradient_matches_finite_differences():
    emb = rnnkit.Embedding(5, 3, dtype=np.float64, seed=0)
    ids = np.array([[0, 2, 2], [4, 2, 0]])
    w = rng(18).normal(size=(2, 3, 3))
    emb.forward(ids)
    emb.backward(w)
    table = emb.variables["embedding"]
    numeric = numeric_grad(lambda: float((emb(ids) * w).sum()), table)
    np.testing.assert_allclose(emb.grads["embedding"], numeric, **FD_TOL)


def test_embedding_bad_input():
    emb = rnnkit.Embedding(4, 2)
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 4\), got 7 at index \[0, 1\]"):
        emb.forward([[0, 7]])
    with pytest.raises(RuntimeError, match="before forward"):
        emb.backward(np.zeros((1, 2, 2), np.float32))
    emb.forward([[0, 1]])
    with pytest.raises(ValueError, match=r"dy must have shape \[1, 2, 2\]"):
        emb.backward(np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match="vocab_size must be > 0"):
        rnnkit.Embedding(0, 2)
    with pytest.raises(TypeError, match="initializer must be a callable"):
        rnnkit.Embedding(4, 2, initializer=3)


def test_embedding_initializer_and_seed():
    a = rnnkit.Embedding(10, 4, seed=5).variables["embedding"]
    b = rnnkit.Embedding(10, 4, seed=5).variables["embedding"]
    np.testing.assert_array_equal(a, b)
    limit = np.sqrt(6 / 14)
    assert np.all(np.abs(a) <= limit)
    u = rnnkit.Embedding(10, 4, initializer=rnnkit.initializers.random_uniform(-0.1, 0.1), seed=5)
    assert np.all(np.abs(u.variables["embedding"]) <= 0.1)
    np.testing.assert_array_equal(
        u.variables["embedding"],
        np.random.default_rng(5).uniform(-0.1, 0.1, (10, 4)).astype(np.float32))


def ref_sparse_adam(var, m, v, ids, rows, step, lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8):
    """TF1's AdamOptimizer._apply_sparse on IndexedSlices(rows, ids), float64:
    duplicate ids summed, every row's m and v decayed, the new terms
    scatter-added, and every row of var updated."""
    unique, inverse = np.unique(ids, return_inverse=True)
    summed = np.zeros((unique.size, var.shape[1]))
    np.add.at(summed, inverse.reshape(-1), rows.reshape(-1, var.shape[1]))
    lr_t = lr * np.sqrt(1 - beta2 ** step) / (1 - beta1 ** step)
    m *= beta1
    m[unique] += (1 - beta1) * summed
    v *= beta2
    v[unique] += (1 - beta2) * summed ** 2
    var -= lr_t * m / (np.sqrt(v) + eps)


def test_adam_on_embedding_matches_tf1_sparse_adam():
    """Adam on the dense embedding gradient gives TF1's sparse Adam numbers:
    rows without ids in a step still move, by their decayed slots."""
    emb = rnnkit.Embedding(8, 3, dtype=np.float64, seed=1)
    table = emb.variables["embedding"]
    ref = table.copy()
    m, v = np.zeros_like(ref), np.zeros_like(ref)
    opt = rnnkit.AdamOptimizer(learning_rate=0.01)
    r = rng(19)
    for step, ids in enumerate([np.array([[1, 2, 1]]), np.array([[5, 1, 0]]), np.array([[3, 3, 3]])], start=1):
        dy = r.normal(size=ids.shape + (3,))
        emb.forward(ids)
        emb.backward(dy)
        opt.apply_gradients(emb.grads_and_vars())
        ref_sparse_adam(ref, m, v, ids, dy, step)
        assert_close(table, ref)
    assert not np.allclose(table[2], rnnkit.Embedding(8, 3, dtype=np.float64, seed=1).variables["embedding"][2])


def test_embedding_checkpoint_name(tmp_path):
    emb = rnnkit.Embedding(5, 2, seed=0)
    assert list(rnnkit.checkpoint_names(emb)) == ["embedding"]
    model = rnnkit.Sequential([emb, rnnkit.RNN(rnnkit.GRUCell(3, input_depth=2)), rnnkit.Dense(4, input_depth=3)])
    assert list(rnnkit.checkpoint_names(model))[:2] == ["embedding", "rnn/gru_cell/gates/kernel"]
    path = rnnkit.save(tmp_path / "m", model)
    other = rnnkit.Embedding(5, 2, seed=1)
    rnnkit.load(path, rnnkit.Sequential([other, rnnkit.RNN(rnnkit.GRUCell(3)), rnnkit.Dense(4)]))
    np.testing.assert_array_equal(other.variables["embedding"], emb.variables["embedding"])
