"""Stock-price regression: tomorrow's close from the last 20 days.

A generated daily price series (a trend, a 25-day cycle and noise; seeded,
so every run sees the same prices) is cut into 20-day windows; the last
output of an LSTM feeds a Dense(1) trained with mean squared error. The test
RMSE is printed beside the "tomorrow = today" baseline it has to beat.

    python -m rnnkit.examples.stock
"""

from __future__ import annotations

from typing import Literal, Union

import numpy as np
from numpy.typing import NDArray

import rnnkit


def prices(days: int = 700, seed: int = 0) -> NDArray[np.float64]:
    """Daily closes: 100 + a slow trend + a 25-day cycle + noise."""
    t = np.arange(days)
    noise = np.random.default_rng(seed).normal(0, 0.5, days)
    return 100 + 0.02 * t + 5 * np.sin(2 * np.pi * t / 25) + noise


def windows(series: NDArray[np.float64], length: int = 20) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """x [N, length, 1] (each window) and y [N, 1] (the day after it)."""
    starts = np.arange(len(series) - length)
    x = series[starts[:, None] + np.arange(length)][..., None]
    return x.astype(np.float32), series[starts + length][:, None].astype(np.float32)


def train(epochs: int = 40, seed: int = 0, verbose: Union[int, Literal["auto"]] = "auto") -> tuple[float, float]:
    """Returns (test RMSE, baseline RMSE) in price units."""
    series = prices(seed=seed)
    split = int(len(series) * 0.7)
    low, high = series[:split].min(), series[:split].max()  # scaled by the training days only
    x, y = windows((series - low) / (high - low))
    train_rows = split - 20
    model = rnnkit.Sequential([rnnkit.RNN(rnnkit.BasicLSTMCell(16, seed=seed), return_sequences=False),
                               rnnkit.Dense(1, seed=seed + 1)], loss=rnnkit.MeanSquaredError())
    model.fit(x[:train_rows], y[:train_rows], optimizer=rnnkit.AdamOptimizer(0.01), epochs=epochs, batch_size=32,
              seed=seed, verbose=verbose)
    scale = high - low
    predicted, actual, today = model.predict(x[train_rows:]), y[train_rows:], x[train_rows:, -1]
    rmse = float(np.sqrt(np.mean((predicted - actual) ** 2))) * scale
    baseline = float(np.sqrt(np.mean((today - actual) ** 2))) * scale
    return rmse, baseline


def main() -> None:
    rmse, baseline = train()
    print(f"test RMSE {rmse:.3f} against {baseline:.3f} for 'tomorrow = today'")


if __name__ == "__main__":
    main()
