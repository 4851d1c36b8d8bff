"""The char-RNN model: a stack of cells over one-hot characters (token ids)
and a Dense head over the vocabulary."""

from __future__ import annotations

from typing import Any, Mapping, Optional

import rnnkit

CELLS = {"lstm": rnnkit.BasicLSTMCell, "gru": rnnkit.GRUCell, "rnn": rnnkit.BasicRNNCell}


def build_model(config: Mapping[str, Any], vocab_size: int, seed: Optional[int] = None) -> rnnkit.Sequential:
    """Sequential([RNN(MultiRNNCell(cells)), Dense(vocab_size)]) with a sequence
    loss. config: "model", "rnn_size", "num_layers", "dropout" (output dropout
    between layers and before the head, training only)."""
    make = CELLS[config["model"]]
    size, layers, dropout = config["rnn_size"], config["num_layers"], config["dropout"]
    cells: list[rnnkit.RNNCell] = []
    for i in range(layers):
        cell: rnnkit.RNNCell = make(size, input_depth=vocab_size if i == 0 else size, seed=None if seed is None else seed + i)
        if dropout > 0:
            cell = rnnkit.DropoutWrapper(cell, output_keep_prob=1.0 - dropout,
                                         seed=None if seed is None else seed + 1000 + i)
        cells.append(cell)
    cell = cells[0] if layers == 1 else rnnkit.MultiRNNCell(cells)
    head = rnnkit.Dense(vocab_size, input_depth=size, seed=None if seed is None else seed + 2000)
    return rnnkit.Sequential([rnnkit.RNN(cell), head], loss=rnnkit.SequenceLoss())

