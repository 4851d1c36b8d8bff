"""The counters that make a cell's dropout masks a function of each row's
index in the global batch, so that any split of a batch (gradient groups,
MPI ranks) draws the masks of the whole batch."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import random
from .._checks import non_negative_int


class DropoutStream:
    """A cell whose training forwards draw dropout masks from a counter-based
    stream (rnnkit.random): the stream's seed (`_stream_seed`, which each
    cell shows under its own name), the training-call counter `calls` (each
    training forward advances it by one) and `first_row`, the index in the
    global batch of the call's row 0. `Sequential.fit` with `groups` or
    `distributed` gives every gradient group of a step the step's `calls`
    and its first row (see `dropout_streams`)."""

    _stream_seed: int
    _call_count: int = 0
    _first_row: int = 0

    @property
    def calls(self) -> int:
        """The training forwards so far: the next one draws the masks of call `calls`."""
        return self._call_count

    @calls.setter
    def calls(self, value: int) -> None:
        self._call_count = non_negative_int(value, "calls")

    @property
    def first_row(self) -> int:
        """The index in the global batch of the next call's first row."""
        return self._first_row

    @first_row.setter
    def first_row(self, value: int) -> None:
        self._first_row = non_negative_int(value, "first_row")

    @property
    def stream_seed(self) -> int:
        """The seed of the dropout stream."""
        return self._stream_seed

    @stream_seed.setter
    def stream_seed(self, value: int) -> None:
        self._stream_seed = random.check_seed(value)

    def _set_stream_seed(self, seed: Any, name: str) -> None:
        """`seed` (an int in [0, 2**64), or None for fresh entropy) as the stream's seed."""
        self._stream_seed = random.check_seed(
            int(np.random.SeedSequence().generate_state(1, np.uint64)[0]) if seed is None else seed, name)

    def _next_call(self) -> int:
        """The call number of a training forward that starts now."""
        call = self.calls
        self.calls = call + 1
        return call


def dropout_streams(obj: Any) -> list[DropoutStream]:
    """The cells with dropout streams in `obj` (a cell, an RNN or
    Bidirectional layer, a Sequential, or a list of them), each once,
    outermost first."""
    found: list[DropoutStream] = []
    pending = [obj]
    while pending:
        item = pending.pop(0)
        if isinstance(item, (list, tuple)):
            pending[:0] = list(item)
            continue
        if isinstance(item, DropoutStream) and not any(item is w for w in found):
            found.append(item)
        pending[:0] = [inner for name in ("layers", "cells", "cell")
                       if (inner := getattr(item, name, None)) is not None]
    return found
