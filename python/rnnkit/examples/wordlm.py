"""A word-level language model (the PTB tutorial's shape) on a generated corpus.

A tiny grammar writes the corpus ("the small cat sees a dog near the house .");
Embedding -> two LSTM layers -> Dense -> sequence_loss learns it with state
carried from each batch to the next (stateful=True: row b of a batch
continues row b of the batch before, as PTB's reader arranges the words),
and the validation perplexity is printed beside the unigram model's.

    python -m rnnkit.examples.wordlm
"""

from __future__ import annotations

from typing import Literal, Union

import numpy as np
from numpy.typing import NDArray

import rnnkit

GRAMMAR = {
    "S": [["NP", "VP", "."]],
    "NP": [["the", "N"], ["a", "N"], ["the", "ADJ", "N"]],
    "VP": [["V", "NP"], ["V", "NP", "P", "NP"], ["sleeps"]],
    "N": [["cat"], ["dog"], ["bird"], ["house"], ["tree"], ["child"]],
    "ADJ": [["small"], ["big"], ["old"]],
    "V": [["sees"], ["chases"], ["likes"]],
    "P": [["near"], ["under"], ["behind"]],
}


def corpus(words: int, seed: int = 0) -> list[str]:
    """At least `words` words of sentences from GRAMMAR."""
    rng = np.random.default_rng(seed)
    out: list[str] = []

    def expand(symbol: str) -> None:
        if symbol not in GRAMMAR:
            out.append(symbol)
            return
        rules = GRAMMAR[symbol]
        for part in rules[rng.integers(len(rules))]:
            expand(part)

    while len(out) < words:
        expand("S")
    return out


def batches(ids: Union[NDArray[np.int64], list[int]], batch_size: int,
            steps: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """PTB's arrangement: the word stream as batch_size parallel streams, cut
    into windows of `steps`; rows [windows * batch_size, steps], window by
    window, so that a stateful model's row b continues row b of the batch before."""
    per_row = (len(ids) - 1) // batch_size
    data = np.asarray(ids[:batch_size * per_row + 1])
    x = data[:-1].reshape(batch_size, per_row)
    y = data[1:batch_size * per_row + 1].reshape(batch_size, per_row)
    windows = per_row // steps
    cut = lambda a: a[:, :windows * steps].reshape(batch_size, windows, steps).transpose(1, 0, 2).reshape(-1, steps)
    return cut(x), cut(y)


def train(epochs: int = 3, words: int = 20000, batch_size: int = 20, steps: int = 10, seed: int = 0,
          verbose: Union[int, Literal["auto"]] = "auto") -> tuple[float, float]:
    """Returns (validation perplexity, the unigram model's)."""
    text = corpus(words + words // 5, seed)
    vocab = sorted(set(text))
    ids = np.array([vocab.index(w) for w in text])
    train_ids, valid_ids = ids[:words], ids[words:]
    model = rnnkit.Sequential([rnnkit.Embedding(len(vocab), 32, seed=seed),
                               rnnkit.RNN(rnnkit.BasicLSTMCell(64, seed=seed + 1)),
                               rnnkit.RNN(rnnkit.BasicLSTMCell(64, seed=seed + 2)),
                               rnnkit.Dense(len(vocab), seed=seed + 3)],
                              loss=rnnkit.SequenceLoss(), stateful=True)
    x, y = batches(train_ids, batch_size, steps)
    history = model.fit(x, y, optimizer=rnnkit.AdamOptimizer(0.01), epochs=epochs, batch_size=batch_size,
                        validation_data=batches(valid_ids, batch_size, steps), clip_norm=5.0, verbose=verbose)
    unigram = np.bincount(train_ids, minlength=len(vocab)) / len(train_ids)
    return float(np.exp(history.history["val_loss"][-1])), float(np.exp(-np.mean(np.log(unigram[valid_ids]))))


def main() -> None:
    perplexity, unigram = train()
    print(f"validation perplexity {perplexity:.2f} (unigram model: {unigram:.2f})")


if __name__ == "__main__":
    main()
