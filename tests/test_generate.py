"""Sequential.generate and rnnkit.random: the C++ generation loop against a
plain Python loop over cell(x, state) + Dense + the documented draw."""

import numpy as np
import pytest

import rnnkit
from rnnkit.random import uniforms

V = 11  # vocabulary


# ---- the reference: the documented algorithm, step by step from Python ------------
def splitmix64(seed, n):
    """The first n SplitMix64 outputs of `seed`, from the formula in rnnkit.random."""
    mask = (1 << 64) - 1
    out = []
    for i in range(n):
        z = (seed + (i + 1) * 0x9E3779B97F4A7C15) & mask
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        out.append(z ^ (z >> 31))
    return out


def draw(z, u, temperature, top_k, greedy):
    """One id from float logits z [V] with the uniform u (rnnkit.generate's convention)."""
    if greedy:
        return int(np.argmax(z))
    z64 = z.astype(np.float64)
    p = np.exp((z64 - z64.max()) / temperature)
    if top_k is not None:
        keep = np.zeros(len(z), bool)
        keep[np.argsort(-z, kind="stable")[:top_k]] = True
        p = np.where(keep, p, 0.0)
    cdf = np.cumsum(p)
    i = int(np.searchsorted(cdf, u * cdf[-1], side="right"))
    return i if i < len(p) else int(np.flatnonzero(p)[-1])


def reference_generate(model, prime, length, temperature=1.0, top_k=None, greedy=False, seed=0, num_samples=1):
    """Sequential.generate as a Python loop over cell(x, state) and Dense."""
    layers = list(model.layers)
    embedding = layers.pop(0) if type(layers[0]).__name__ == "Embedding" else None
    rnns, head = layers[:-1], layers[-1]
    prime = np.asarray(prime)
    x = prime[None, :-1]
    states = []
    for layer in rnns:
        if x.shape[1] > 0:
            xin = embedding(x) if (embedding is not None and layer is rnns[0]) else x
            x, state = rnnkit.dynamic_rnn(layer.cell, xin)
        else:
            state = layer.cell.zero_state(1)
        states.append(state)
    tile = lambda a: np.repeat(a, num_samples, axis=0)
    states = [_map_state(s, tile) for s in states]
    current = np.full(num_samples, prime[-1], np.int32)
    us = uniforms(seed, length * num_samples).reshape(length, num_samples)
    ids = np.zeros((num_samples, length), np.int64)
    for t in range(length):
        x = current if embedding is None else embedding(current[:, None])[:, 0]
        for i, layer in enumerate(rnns):
            x, states[i] = layer.cell(x, states[i])
        logits = head(x)
        for s in range(num_samples):
            ids[s, t] = draw(logits[s], us[t, s], temperature, top_k, greedy)
        current = ids[:, t].astype(np.int32)
    return ids, states


def _map_state(state, f):
    if isinstance(state, rnnkit.LSTMStateTuple):
        return rnnkit.LSTMStateTuple(f(state.c), f(state.h))
    if isinstance(state, tuple):
        return tuple(_map_state(s, f) for s in state)
    return f(state)


def _flat(state):
    if isinstance(state, tuple):
        return [a for s in state for a in _flat(s)]
    return [state]


def _random_weights(model, rng, scale=0.6):
    """Larger-than-default weights and non-zero biases, so that every option matters."""
    for layer in model.layers:
        for name, var in layer.variables.items():
            layer.variables[name] = (scale * rng.standard_normal(var.shape)).astype(var.dtype)


# ---- every cell type ------------------------------------------------------------------
def _models(dtype=np.float32):
    H = 8
    return {
        "BasicRNNCell": rnnkit.BasicRNNCell(H, input_depth=V, dtype=dtype, seed=1),
        "BasicLSTMCell": rnnkit.BasicLSTMCell(H, input_depth=V, dtype=dtype, seed=1),
        "LSTMCell": rnnkit.LSTMCell(H, use_peepholes=True, cell_clip=0.7, num_proj=5, proj_clip=0.4,
                                    forget_bias=0.5, input_depth=V, dtype=dtype, seed=1),
        "LSTMCell relu": rnnkit.LSTMCell(H, activation="relu", input_depth=V, dtype=dtype, seed=1),
        "GRUCell": rnnkit.GRUCell(H, input_depth=V, dtype=dtype, seed=1),
        "GRUCell reset_after": rnnkit.GRUCell(H, reset_after=True, input_depth=V, dtype=dtype, seed=1),
        "MultiRNNCell": rnnkit.MultiRNNCell([
            rnnkit.BasicLSTMCell(H, input_depth=V, dtype=dtype, seed=1),
            rnnkit.ResidualWrapper(rnnkit.GRUCell(H, dtype=dtype, seed=2)),
            rnnkit.DropoutWrapper(rnnkit.BasicRNNCell(6, dtype=dtype, seed=3), input_keep_prob=0.5,
                                  output_keep_prob=0.5, state_keep_prob=0.5),
            rnnkit.ResidualWrapper(rnnkit.DropoutWrapper(rnnkit.LSTMCell(6, num_proj=6, dtype=dtype, seed=4),
                                                         output_keep_prob=0.3)),
        ]),
        "DropoutWrapper": rnnkit.DropoutWrapper(rnnkit.BasicLSTMCell(H, input_depth=V, dtype=dtype, seed=1),
                                                input_keep_prob=0.5, output_keep_prob=0.5),
        "LayerNormBasicLSTMCell": rnnkit.LayerNormBasicLSTMCell(H, forget_bias=0.5, dropout_keep_prob=0.5,
                                                                input_depth=V, dtype=dtype, seed=1),
        "LayerNormBasicLSTMCell without norms": rnnkit.LayerNormBasicLSTMCell(H, layer_norm=False, activation="relu",
                                                                              input_depth=V, dtype=dtype, seed=1),
    }


def _sequential(cell, dtype=np.float32, seed=5):
    model = rnnkit.Sequential([rnnkit.RNN(cell), rnnkit.Dense(V, dtype=dtype, seed=seed)])
    model.layers[-1].build(cell.output_size)
    _random_weights(model, np.random.default_rng(seed))
    return model


@pytest.mark.parametrize("name", list(_models()))
@pytest.mark.parametrize("options", [dict(), dict(temperature=0.7, top_k=3, num_samples=4), dict(greedy=True)])
def test_every_cell_matches_a_python_loop(name, options):
    model = _sequential(_models()[name])
    prime = [3, 1, 4, 1, 5]
    ids, final = model.generate(prime, 30, seed=1234, return_state=True, **options)
    ref_ids, ref_states = reference_generate(model, prime, 30, seed=1234, **options)
    assert ids.dtype == np.int64 and ids.shape == ref_ids.shape
    np.testing.assert_array_equal(ids, ref_ids)
    # the final state is the state after the last token fed (the reference's loop fed every token
    # but the last one: its state after step length-1 is the same)
    for a, b in zip(_flat(final), _flat(ref_states[0])):
        np.testing.assert_array_equal(a, b)
    if not options.get("greedy"):
        assert len(np.unique(ids)) > 1  # a real draw, not a constant


def test_float64_model():
    model = _sequential(_models(np.float64)["LSTMCell"], dtype=np.float64)
    ids = model.generate([2, 7], 40, seed=9, num_samples=3)
    np.testing.assert_array_equal(ids, reference_generate(model, [2, 7], 40, seed=9, num_samples=3)[0])


def test_two_rnn_layers():
    cell1 = rnnkit.GRUCell(7, input_depth=V, seed=1)
    cell2 = rnnkit.BasicLSTMCell(9, seed=2)
    model = rnnkit.Sequential([rnnkit.RNN(cell1), rnnkit.RNN(cell2), rnnkit.Dense(V, seed=3)])
    cell2.build(7)
    model.layers[-1].build(9)
    _random_weights(model, np.random.default_rng(0))
    ids, final = model.generate([1, 2, 3], 25, seed=4, num_samples=2, return_state=True)
    ref, states = reference_generate(model, [1, 2, 3], 25, seed=4, num_samples=2)
    np.testing.assert_array_equal(ids, ref)
    assert isinstance(final, tuple) and len(final) == 2
    np.testing.assert_array_equal(final[1].h, states[1].h)


@pytest.mark.skipif(not hasattr(rnnkit, "Embedding"), reason="rnnkit.Embedding is not in this build")
def test_embedding_first():
    cell = rnnkit.MultiRNNCell([rnnkit.BasicLSTMCell(6, seed=1), rnnkit.ResidualWrapper(rnnkit.GRUCell(6, seed=2))])
    model = rnnkit.Sequential([rnnkit.Embedding(V, 6, seed=0), rnnkit.RNN(cell), rnnkit.Dense(V, seed=3)])
    cell.build(6)
    model.layers[-1].build(6)
    _random_weights(model, np.random.default_rng(1))
    ids = model.generate([4, 4, 2], 30, seed=8, num_samples=2)
    np.testing.assert_array_equal(ids, reference_generate(model, [4, 4, 2], 30, seed=8, num_samples=2)[0])


# ---- reproducibility, continuation ---------------------------------------------------
def test_same_seed_same_ids_on_every_thread_count():
    model = _sequential(rnnkit.BasicLSTMCell(64, input_depth=V, seed=1))
    before = rnnkit.get_num_threads()
    try:
        runs = []
        for threads in (1, 2, 1, 2):
            rnnkit.set_num_threads(threads)
            runs.append(model.generate([1, 2], 50, seed=77, num_samples=20, top_k=5))
    finally:
        rnnkit.set_num_threads(before)
    for r in runs[1:]:
        np.testing.assert_array_equal(r, runs[0])
    assert not np.array_equal(runs[0], model.generate([1, 2], 50, seed=78, num_samples=20, top_k=5))


def test_samples_differ_and_one_prime_per_sample():
    model = _sequential(rnnkit.GRUCell(8, input_depth=V, seed=1))
    ids = model.generate([1], 40, seed=3, num_samples=3)
    assert not np.array_equal(ids[0], ids[1])
    primes = np.array([[1, 2], [3, 4]])
    both = model.generate(primes, 10, greedy=True)
    np.testing.assert_array_equal(both[1], model.generate(primes[1], 10, greedy=True)[0])


@pytest.mark.parametrize("cell", [rnnkit.BasicLSTMCell(8, input_depth=V, seed=1),
                                  rnnkit.MultiRNNCell([rnnkit.GRUCell(8, input_depth=V, seed=1),
                                                       rnnkit.BasicRNNCell(8, seed=2)])])
def test_final_state_continues_the_generation(cell):
    model = _sequential(cell)
    whole = model.generate([1, 2, 3], 20, greedy=True, num_samples=2)
    first = model.generate([1, 2, 3], 8, greedy=True, num_samples=2)
    rest = model.generate(first[:, -1:], 12, greedy=True, initial_state=model.final_state)
    np.testing.assert_array_equal(np.concatenate([first, rest], axis=1), whole)


def test_length_zero_and_the_initial_state_is_not_written():
    model = _sequential(rnnkit.BasicLSTMCell(8, input_depth=V, seed=1))
    state = rnnkit.LSTMStateTuple(np.ones((1, 8), np.float32), np.ones((1, 8), np.float32))
    ids = model.generate([1, 2], 0, initial_state=state)
    assert ids.shape == (1, 0)
    np.testing.assert_array_equal(state.c, np.ones((1, 8), np.float32))


# ---- rnnkit.random ----------------------------------------------------------------
def test_uniforms_are_splitmix64():
    seed = 1234567
    bits = splitmix64(seed, 5)
    # splitmix64.c's first outputs from the state 1234567
    assert bits == [6457827717110365317, 3203168211198807973, 9817491932198370423, 4593380528125082431,
                    16408922859458223821]
    u = uniforms(seed, 1000)
    assert u.dtype == np.float64 and u.shape == (1000,)
    np.testing.assert_array_equal(u[:5], np.array([b >> 11 for b in bits], np.float64) * 2.0**-53)
    np.testing.assert_array_equal(uniforms(seed, 10, first=995), np.concatenate([u[995:], uniforms(seed, 5, 1000)]))
    assert 0.0 <= u.min() and u.max() < 1.0 and abs(u.mean() - 0.5) < 0.03
    assert uniforms(2**64 - 1, 3).shape == (3,)


@pytest.mark.parametrize("seed, error", [(-1, ValueError), (2**64, ValueError), (1.5, TypeError), (True, TypeError)])
def test_bad_seed(seed, error):
    with pytest.raises(error, match="seed"):
        uniforms(seed, 3)
    with pytest.raises(error, match="seed"):
        _sequential(rnnkit.GRUCell(4, input_depth=V)).generate([1], 3, seed=seed)


# ---- bad input --------------------------------------------------------------------
def test_bad_options():
    model = _sequential(rnnkit.BasicLSTMCell(8, input_depth=V, seed=1))
    with pytest.raises(ValueError, match="greedy=True"):
        model.generate([1], 5, temperature=0)
    with pytest.raises(ValueError, match="greedy=True"):
        model.generate([1], 5, temperature=-1.0)
    with pytest.raises(ValueError, match=r"top_k must lie in \[1, 11\]"):
        model.generate([1], 5, top_k=12)
    with pytest.raises(ValueError, match="top_k must be > 0"):
        model.generate([1], 5, top_k=0)
    with pytest.raises(ValueError, match=r"prime token ids must lie in \[0, 11\), got 11"):
        model.generate([1, 11], 5)
    with pytest.raises(ValueError, match="at least one token"):
        model.generate([], 5)
    with pytest.raises(TypeError, match="prime must be an integer array"):
        model.generate([1.0], 5)
    with pytest.raises(ValueError, match="length must be >= 0"):
        model.generate([1], -1)
    with pytest.raises(ValueError, match="num_samples"):
        model.generate([[1], [2]], 5, num_samples=3)


def test_not_a_token_model():
    cell = rnnkit.BasicLSTMCell(8, input_depth=V)
    with pytest.raises(ValueError, match=r"Dense head has 5 units"):
        rnnkit.Sequential([rnnkit.RNN(cell), rnnkit.Dense(5)]).generate([1], 3)
    with pytest.raises(ValueError, match="token model"):
        rnnkit.Sequential([rnnkit.RNN(cell)]).generate([1], 3)
    with pytest.raises(ValueError, match="input_depth=<vocabulary size>"):
        rnnkit.Sequential([rnnkit.RNN(rnnkit.GRUCell(4)), rnnkit.Dense(V)]).generate([1], 3)
