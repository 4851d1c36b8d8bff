"""The tutorial's first demos: one-hot 'hello' through BasicRNNCell(2), and
three sequences through BasicLSTMCell(2).

    python -m rnnkit.examples.hello
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

import rnnkit

# One-hot encodings of the four letters, as in the tutorial.
h = [1, 0, 0, 0]
e = [0, 1, 0, 0]
l = [0, 0, 1, 0]
o = [0, 0, 0, 1]


def main() -> NDArray[np.floating[Any]]:
    np.set_printoptions(precision=4, suppress=True)

    # One cell, one sequence: 'hello' -> outputs [1, 5, 2]
    cell = rnnkit.BasicRNNCell(num_units=2, seed=0)
    x_data = np.array([[h, e, l, l, o]], dtype=np.float32)
    outputs, state = rnnkit.dynamic_rnn(cell, x_data, dtype=np.float32)
    print("BasicRNNCell(2) on 'hello'")
    print("  inputs", x_data.shape, " outputs", outputs.shape)
    print(outputs)

    # A batch of three sequences through an LSTM: outputs [3, 5, 2]
    lstm = rnnkit.BasicLSTMCell(num_units=2, seed=0)
    x_data = np.array([[h, e, l, l, o], [e, o, l, l, l], [l, l, e, e, l]], dtype=np.float32)
    outputs, state = rnnkit.dynamic_rnn(lstm, x_data, dtype=np.float32)
    print("BasicLSTMCell(2) on 'hello', 'eolll', 'lleel'")
    print("  inputs", x_data.shape, " outputs", outputs.shape, " state.c", state.c.shape, " state.h", state.h.shape)
    print(outputs)
    return outputs


if __name__ == "__main__":
    main()
