"""A two-layer char model learns a sentence (the tutorial's long-char demo).

Every window of 10 characters predicts the window shifted by one. Inputs are
token ids (no one-hot matrix is built); the model is MultiRNNCell of two
BasicLSTMCells -> Dense -> sequence_loss, trained with Adam.

    python -m rnnkit.examples.sentence
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from numpy.typing import NDArray

import rnnkit

SENTENCE = ("if you want to build a ship, don't drum up people together to "
            "collect wood and don't assign them tasks and work, but rather "
            "teach them to long for the endless immensity of the sea.")


def windows(text: str, chars: list[str], length: int = 10) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    ids = np.array([chars.index(c) for c in text])
    starts = np.arange(len(ids) - length)
    x = ids[starts[:, None] + np.arange(length)]
    return x, ids[starts[:, None] + np.arange(1, length + 1)]


def build(vocab: int, hidden: Optional[int] = None, seed: int = 0) -> rnnkit.Sequential:
    hidden = hidden or vocab
    cell = rnnkit.MultiRNNCell([rnnkit.BasicLSTMCell(hidden, input_depth=vocab, seed=seed),
                                rnnkit.BasicLSTMCell(hidden, seed=seed + 1)])
    return rnnkit.Sequential([rnnkit.RNN(cell), rnnkit.Dense(vocab, seed=seed + 2)], loss=rnnkit.SequenceLoss())


def decode(model: rnnkit.Sequential, x: NDArray[np.int64], chars: list[str]) -> str:
    """The sentence as the model reads it back: first window, then each window's last prediction."""
    pred = np.argmax(model.predict(x), axis=2)
    return "".join(chars[c] for c in pred[0]) + "".join(chars[p[-1]] for p in pred[1:])


def train(steps: int = 500, seed: int = 0, verbose: bool = True, every: int = 50) -> tuple[list[float], float, str]:
    chars = sorted(set(SENTENCE))
    x, y = windows(SENTENCE, chars)
    weights = np.ones(y.shape, np.float32)
    model = build(len(chars), seed=seed)
    optimizer = rnnkit.AdamOptimizer(learning_rate=0.1)
    losses: list[float] = []
    for i in range(steps):
        losses.append(model.train_step(x, y, weights, optimizer))
        if verbose and (i % every == 0 or i == steps - 1):
            print(f"{i:4d} loss {losses[-1]:.4f} | {decode(model, x, chars)[:70]}")
    accuracy = float(np.mean(np.argmax(model.predict(x), axis=2) == y))
    return losses, accuracy, decode(model, x, chars)


def main() -> None:
    losses, accuracy, text = train()
    print(f"\nper-character accuracy {accuracy:.3f}; the sentence as read back (from its 2nd character):\n{text}")


if __name__ == "__main__":
    main()
