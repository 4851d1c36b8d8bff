"""Counter-based random numbers: the uniforms that `Sequential.generate` and
DropoutWrapper draw with.

`uniforms(seed, n)` returns SplitMix64's first n outputs from the state
`seed`, as float64 in [0, 1) (the top 53 bits times 2**-53). The i-th number
depends only on (seed, i):

    z = seed + (i + 1) * 0x9E3779B97F4A7C15          (mod 2**64)
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
    z = (z ^ (z >> 27)) * 0x94D049BB133111EB
    u = ((z ^ (z >> 31)) >> 11) * 2**-53

Generation draws sample s at step t with number t * num_samples + s, so its
results depend on neither the thread count nor the order of the draws. The
same C++ code (cpp/include/rnnkit/random.hpp) serves both.

`subseed(seed, w1, w2, ...)` names a stream under `seed`: z = seed, then for
each word z = bits(z, w), where bits(z, w) is the 64-bit value above before
its shift (SplitMix64's w-th output of the state z). DropoutWrapper keys
each mask by subseed(seed, call, place).
"""

from __future__ import annotations

import numpy as np

from . import _core
from ._checks import is_int, non_negative_int
from ._typing import NDArray

__all__ = ["uniforms", "subseed", "check_seed"]

_GOLDEN_GAMMA = 0x9E3779B97F4A7C15
_MASK = 2**64 - 1


def check_seed(seed: int, name: str = "seed") -> int:
    """`seed` as an int in [0, 2**64)."""
    if not is_int(seed):
        raise TypeError(f"{name} must be an int in [0, 2**64), got {type(seed).__name__}")
    seed = int(seed)
    if not 0 <= seed < 2**64:
        raise ValueError(f"{name} must lie in [0, 2**64), got {seed}")
    return seed


def uniforms(seed: int, n: int, first: int = 0) -> NDArray[np.float64]:
    """float64 [n]: numbers first, first + 1, ..., first + n - 1 of `seed`, in [0, 1)."""
    return _core.uniforms(check_seed(seed), non_negative_int(n, "n"), check_seed(first, "first"))


def _bits(seed: int, n: int) -> int:
    """SplitMix64's n-th 64-bit output of the state `seed` (random.hpp's splitmix64_bits)."""
    z = (seed + (n + 1) * _GOLDEN_GAMMA) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def subseed(seed: int, *words: int) -> int:
    """The seed of the stream that `words` (ints in [0, 2**64)) name under `seed`."""
    z = check_seed(seed)
    for i, word in enumerate(words):
        z = _bits(z, check_seed(word, f"words[{i}]"))
    return z
