"""Run by tests/test_distributed.py, under `mpiexec -n R`, or alone with
`local` (the reference): trains small models with
Sequential.fit(distributed=True, groups=8), or fit(groups=8) in one process
without MPI, and writes what each rank ends with to OUT/rank<r>.npz, for the
test to compare bit for bit.

Every rank seeds its models and dropout differently (seed + rank): fit's
start copies rank 0's weights and dropout seeds, so the results still
agree. `python fit.py OUT [local]`."""

import sys

import numpy as np

import rnnkit
from rnnkit import distributed

GROUPS = 8


def data(rng, rows, steps, depth=None, classes=None):
    if depth is None:
        return rng.integers(0, classes, (rows, steps))
    return rng.standard_normal((rows, steps, depth))


def main(out, local=False):
    rank = distributed.rank()
    fit_mode = {"distributed": not local, "groups": GROUPS}
    rng = np.random.default_rng(7)  # the data: the same on every rank
    results = {}

    # float32: token ids -> Embedding -> LSTM -> Dense, SequenceLoss with
    # weights; 37 rows in batches of 12: the last batch (1 row) leaves most ranks idle.
    x = data(rng, 37, 6, classes=11)
    y = data(rng, 37, 6, classes=11)
    w = rng.choice([0.0, 0.5, 1.0, 2.0], (37, 6)).astype(np.float32)
    model = rnnkit.Sequential([rnnkit.Embedding(11, 5, seed=10 + rank),
                               rnnkit.RNN(rnnkit.LSTMCell(8, seed=20 + rank)),
                               rnnkit.Dense(11, seed=30 + rank)], loss=rnnkit.SequenceLoss())
    history = model.fit(x, y, w, optimizer=rnnkit.AdamOptimizer(0.01), epochs=2, batch_size=12, seed=3,
                        verbose=0, metrics=("accuracy",), **fit_mode)
    results["lstm32"] = (model, history)

    # float64: floats with lengths -> GRU (last output) -> Dense, sparse
    # softmax cross-entropy with per-row weights, clipped gradients.
    x = data(rng, 30, 5, depth=3)
    y = data(rng, 30, 1, classes=4)[:, 0]
    w = rng.uniform(0.0, 2.0, 30)
    lengths = rng.integers(0, 6, 30)
    model = rnnkit.Sequential([rnnkit.RNN(rnnkit.GRUCell(7, dtype=np.float64, seed=40 + rank), return_sequences=False),
                               rnnkit.Dense(4, dtype=np.float64, seed=50 + rank)], loss=rnnkit.SoftmaxCrossEntropy())
    history = model.fit(x, y, w, optimizer=rnnkit.AdamOptimizer(0.05), epochs=2, batch_size=10, seed=4,
                        clip_norm=0.5, sequence_length=lengths, verbose=0, **fit_mode)
    results["gru64"] = (model, history)

    # float64 stateful: each rank carries its own groups' state from batch to batch.
    x = data(rng, 24, 4, depth=2)
    y = data(rng, 24, 4, depth=3)
    model = rnnkit.Sequential([rnnkit.RNN(rnnkit.BasicLSTMCell(5, dtype=np.float64, seed=60 + rank)),
                               rnnkit.Dense(3, dtype=np.float64, seed=70 + rank)],
                              loss=rnnkit.MeanSquaredError(), stateful=True)
    history = model.fit(x, y, optimizer=rnnkit.AdamOptimizer(0.02), epochs=2, batch_size=12, verbose=0,
                        **fit_mode)
    results["stateful64"] = (model, history)

    # DropoutWrapper on inputs, outputs and state, float32 then float64
    # (variational, two wrappers in a stack): 20 rows in batches of 12.
    x = data(rng, 20, 5, classes=7)
    y = data(rng, 20, 5, classes=7)
    cell = rnnkit.DropoutWrapper(rnnkit.LSTMCell(6, seed=100 + rank), 0.8, 0.7, 0.6, seed=110 + rank)
    model = rnnkit.Sequential([rnnkit.Embedding(7, 4, seed=120 + rank), rnnkit.RNN(cell),
                               rnnkit.Dense(7, seed=130 + rank)], loss=rnnkit.SequenceLoss())
    history = model.fit(x, y, optimizer=rnnkit.AdamOptimizer(0.02), epochs=2, batch_size=12, seed=5, verbose=0,
                        **fit_mode)
    results["dropout32"] = (model, history)

    x = data(rng, 20, 4, depth=3)
    y = data(rng, 20, 4, depth=2)
    stack = rnnkit.MultiRNNCell([
        rnnkit.DropoutWrapper(rnnkit.GRUCell(5, dtype=np.float64, seed=140 + rank), 0.7, 0.8, 0.6,
                              variational_recurrent=True, seed=150 + rank),
        rnnkit.DropoutWrapper(rnnkit.BasicLSTMCell(4, dtype=np.float64, seed=160 + rank), 0.9, 0.6, 0.5,
                              variational_recurrent=True, seed=170 + rank)])
    model = rnnkit.Sequential([rnnkit.RNN(stack), rnnkit.Dense(2, dtype=np.float64, seed=180 + rank)],
                              loss=rnnkit.MeanSquaredError())
    history = model.fit(x, y, optimizer=rnnkit.AdamOptimizer(0.02), epochs=2, batch_size=12, seed=6, verbose=0,
                        **fit_mode)
    results["dropout64"] = (model, history)

    # LayerNormBasicLSTMCell's own candidate dropout, both ways of a
    # Bidirectional layer, float64.
    x = data(rng, 20, 4, depth=3)
    y = data(rng, 20, 4, depth=2)
    fw, bw = (rnnkit.LayerNormBasicLSTMCell(4, dropout_keep_prob=0.6, dropout_prob_seed=190 + 10 * k + rank,
                                            dtype=np.float64, seed=200 + 10 * k + rank) for k in range(2))
    model = rnnkit.Sequential([rnnkit.Bidirectional(fw, bw), rnnkit.Dense(2, dtype=np.float64, seed=220 + rank)],
                              loss=rnnkit.MeanSquaredError())
    history = model.fit(x, y, optimizer=rnnkit.AdamOptimizer(0.02), epochs=2, batch_size=12, seed=7, verbose=0,
                        **fit_mode)
    results["layer_norm_dropout64"] = (model, history)

    arrays = {}
    for name, (model, history) in results.items():
        for i, weight in enumerate(model.get_weights()):
            arrays[f"{name}/weight{i}"] = weight
        for key, values in history.history.items():
            arrays[f"{name}/history/{key}"] = np.asarray(values)

    # broadcast_variables alone: a differently seeded cell and Adam's state
    cell = rnnkit.GRUCell(4, input_depth=3, seed=rank)
    optimizer = rnnkit.AdamOptimizer()
    optimizer.iterations = 5 + rank
    distributed.broadcast_variables([cell, optimizer])
    for name, value in cell.variables.items():
        arrays[f"broadcast/{name}"] = value
    arrays["broadcast/iterations"] = np.asarray(optimizer.iterations)

    # DistributedOptimizer: each rank's train_step on its quarter of a batch
    # of 12 (ranks 1, 2, 3, 4 divide it); close to, not the bits of, one process.
    ranks = distributed.size()
    x = data(rng, 12, 5, depth=3).astype(np.float32)
    y = data(rng, 12, 5, classes=4)
    model = rnnkit.Sequential([rnnkit.RNN(rnnkit.GRUCell(6, seed=80 + rank)), rnnkit.Dense(4, seed=90 + rank)],
                              loss=rnnkit.SequenceLoss())
    model.predict(x[:1])  # builds the layers
    optimizer = distributed.DistributedOptimizer(rnnkit.AdamOptimizer(0.01))
    distributed.broadcast_variables([model, optimizer])
    part = slice(rank * 12 // ranks, (rank + 1) * 12 // ranks)
    for _ in range(3):
        model.train_step(x[part], y[part], optimizer=optimizer)
    for i, weight in enumerate(model.get_weights()):
        arrays[f"optimizer/weight{i}"] = weight

    np.savez(f"{out}/rank{rank}.npz", **arrays)


if __name__ == "__main__":
    main(sys.argv[1], local=sys.argv[2:] == ["local"])
