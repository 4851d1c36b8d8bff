"""Text for char-RNN training: the corpus, its vocabulary and its batches."""

from __future__ import annotations

import os
import sysconfig
from typing import Sequence, Union

import numpy as np

# The default corpus: this many characters of the standard library's sources.
DEFAULT_CORPUS_CHARS = 2_000_000


def default_corpus(limit: int = DEFAULT_CORPUS_CHARS) -> str:
    """The running interpreter's own `Lib/*.py` files (sysconfig's stdlib
    directory), in sorted order of their names, concatenated up to `limit`
    characters: a corpus that is on every machine, without a download."""
    root = sysconfig.get_paths()["stdlib"]
    parts: list[str] = []
    total = 0
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name)
        if not name.endswith(".py") or not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        parts.append(text[:limit - total])
        total += len(parts[-1])
        if total >= limit:
            break
    if not parts:
        raise FileNotFoundError(f"no .py files in the standard library directory {root}: give text files to train on")
    return "".join(parts)


def load_text(paths: Sequence[Union[str, "os.PathLike[str]"]]) -> str:
    """The files' text as UTF-8, concatenated; the default corpus for no paths."""
    if not paths:
        return default_corpus()
    parts: list[str] = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                parts.append(f.read())
        except UnicodeDecodeError as e:
            raise ValueError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    return "".join(parts)


def vocabulary(text):
    """The sorted distinct characters of `text`."""
    return sorted(set(text))


def encode(text, vocab, what="text"):
    """Token ids (int32) of `text`; characters outside `vocab` are a ValueError naming them."""
    index = {c: i for i, c in enumerate(vocab)}
    missing = sorted(set(text) - index.keys())
    if missing:
        shown = ", ".join(repr(c) for c in missing[:20]) + (", ..." if len(missing) > 20 else "")
        raise ValueError(f"{what} has {len(missing)} character(s) that are not in the model's vocabulary: {shown}")
    return np.fromiter((index[c] for c in text), dtype=np.int32, count=len(text))


def batches(ids, batch_size, seq_length):
    """(inputs, targets): int32 [N, batch_size, seq_length] each, targets one
    character ahead. The ids are cut into batch_size contiguous streams and
    each stream into windows of seq_length (char-rnn's layout); what does not
    fill a whole batch is left out."""
    per_batch = batch_size * seq_length
    n = (len(ids) - 1) // per_batch
    if n == 0:
        raise ValueError(f"the text ({len(ids)} characters) is too short for one batch of batch_size {batch_size} "
                         f"x seq_length {seq_length} (+1): lower them or give more text")
    x = ids[:n * per_batch].reshape(batch_size, n, seq_length).transpose(1, 0, 2)
    y = ids[1:n * per_batch + 1].reshape(batch_size, n, seq_length).transpose(1, 0, 2)
    return np.ascontiguousarray(x), np.ascontiguousarray(y)
