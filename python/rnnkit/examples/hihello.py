"""The classic char-RNN tutorial: learn 'hihello' -> 'ihello'.

Inputs 'h i h e l l' (one-hot, 5 classes), targets 'i h e l l o';
BasicLSTMCell(5) -> Dense(5) -> sequence_loss -> AdamOptimizer(0.1).

    python -m rnnkit.examples.hihello
"""

from __future__ import annotations

import numpy as np

import rnnkit

idx2char = ["h", "i", "e", "l", "o"]
x_ids = [[0, 1, 0, 2, 3, 3]]  # h i h e l l
y_ids = [[1, 0, 2, 3, 3, 4]]  # i h e l l o


def build(seed: int = 0) -> rnnkit.Sequential:
    num_classes = hidden_size = len(idx2char)
    cell = rnnkit.BasicLSTMCell(hidden_size, seed=seed)
    return rnnkit.Sequential(
        [rnnkit.RNN(cell), rnnkit.Dense(num_classes, seed=seed + 1)],
        loss=rnnkit.SequenceLoss(),
    )


def train(steps: int = 50, seed: int = 0, verbose: bool = True) -> tuple[list[float], list[str]]:
    """Returns (losses, predicted strings) per step."""
    x = np.eye(len(idx2char), dtype=np.float32)[x_ids]  # [1, 6, 5]
    y = np.array(y_ids)
    weights = np.ones(y.shape, np.float32)
    model = build(seed)
    optimizer = rnnkit.AdamOptimizer(learning_rate=0.1)
    losses: list[float] = []
    predictions: list[str] = []
    for i in range(steps):
        loss = model.train_step(x, y, weights, optimizer)
        result = np.argmax(model.predict(x), axis=2)
        text = "".join(idx2char[c] for c in result[0])
        losses.append(loss)
        predictions.append(text)
        if verbose:
            print(f"{i:2d} loss: {loss:.6f} prediction: {result.tolist()} true Y: {y_ids} -> {text}")
    return losses, predictions


def main() -> None:
    losses, predictions = train()
    print("reached 'ihello'" if predictions[-1] == "ihello" else f"ended at {predictions[-1]!r}")


if __name__ == "__main__":
    main()
