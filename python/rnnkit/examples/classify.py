"""Sequence classification with ragged lengths: which token is the majority?

Each row holds 4 to 12 tokens from {0, 1, 2, 3} (one of them strictly most
frequent: its class) followed by random padding that must be ignored. The
LSTM reads token ids up to each row's `sequence_length`, its last valid
output feeds Dense(4), and sparse softmax cross-entropy trains it.

    python -m rnnkit.examples.classify
"""

from __future__ import annotations

from typing import Literal, Union

import numpy as np
from numpy.typing import NDArray

import rnnkit

CLASSES, STEPS = 4, 12


def dataset(rows: int, seed: int = 0) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """(ids [rows, STEPS], lengths [rows], labels [rows])."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, CLASSES, size=(rows, STEPS))  # the padding too: only the lengths tell it apart
    lengths = rng.integers(4, STEPS + 1, size=rows)
    labels = np.empty(rows, np.int64)
    for i in range(rows):
        while True:
            counts = np.bincount(ids[i, :lengths[i]], minlength=CLASSES)
            if (counts == counts.max()).sum() == 1:
                break
            ids[i, rng.integers(0, lengths[i])] = rng.integers(0, CLASSES)  # break the tie
        labels[i] = counts.argmax()
    return ids, lengths, labels


def train(epochs: int = 10, rows: int = 1000, seed: int = 0,
          verbose: Union[int, Literal["auto"]] = "auto") -> tuple[float, float]:
    """Returns (test accuracy, the majority class's share of the test rows)."""
    ids, lengths, labels = dataset(rows + 500, seed)
    model = rnnkit.Sequential([rnnkit.RNN(rnnkit.BasicLSTMCell(32, input_depth=CLASSES, seed=seed),
                                          return_sequences=False),
                               rnnkit.Dense(CLASSES, seed=seed + 1)], loss=rnnkit.SoftmaxCrossEntropy(sparse=True))
    model.fit(ids[:rows], labels[:rows], optimizer=rnnkit.AdamOptimizer(0.01), epochs=epochs, batch_size=50,
              seed=seed, sequence_length=lengths[:rows], metrics=["accuracy"], verbose=verbose)
    result = model.evaluate(ids[rows:], labels[rows:], sequence_length=lengths[rows:], metrics=["accuracy"])
    chance = np.bincount(labels[rows:]).max() / len(labels[rows:])
    return result["accuracy"], chance


def main() -> None:
    accuracy, chance = train()
    print(f"test accuracy {accuracy:.3f} (always guessing the commonest class: {chance:.3f})")


if __name__ == "__main__":
    main()
