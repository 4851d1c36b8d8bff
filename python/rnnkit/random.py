"""Counter-based random numbers: the uniforms that `Sequential.generate` draws with.

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
"""

from __future__ import annotations

import numpy as np

from . import _core
from ._checks import is_int, non_negative_int
from ._typing import NDArray

__all__ = ["uniforms", "check_seed"]


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
