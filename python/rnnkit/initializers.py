"""Initializers: the `kernel_initializer=`, `bias_initializer=` (cells,
Dense) and `initializer=` (Embedding) arguments.

An initializer is any callable `(shape, dtype, rng) -> array`, where `rng`
is the layer's `np.random.Generator` (seeded from its `seed`), so the same
seed gives the same numbers. The classes below are TF1's initializers; their
TF1 names are aliases with TF1's default arguments:

    glorot_uniform()                         glorot_uniform_initializer()
    random_normal(mean=0.0, stddev=1.0)      random_normal_initializer(mean=0.0, stddev=1.0)
    random_uniform(minval=-0.05, maxval=0.05)  random_uniform_initializer(minval=0.0, maxval=1.0)
    truncated_normal(mean=0.0, stddev=1.0)   truncated_normal_initializer(mean=0.0, stddev=1.0)
    zeros()                                  zeros_initializer()
    constant(value=0.0)                      constant_initializer(value=0.0)
    orthogonal(gain=1.0)                     orthogonal_initializer(gain=1.0)

(`random_uniform`'s defaults are Keras's RandomUniform; TF1's
`tf.random_uniform_initializer` draws from [0, 1) unless told otherwise.)
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from ._checks import real, shape_str
from ._typing import DTypeLike, InitializerFn, NDArray
from .variables import glorot_uniform as _glorot_uniform

__all__ = [
    "Initializer", "glorot_uniform", "random_normal", "random_uniform", "truncated_normal", "zeros", "constant",
    "orthogonal", "glorot_uniform_initializer", "random_normal_initializer", "random_uniform_initializer",
    "truncated_normal_initializer", "zeros_initializer", "constant_initializer", "orthogonal_initializer", "get",
]


def _positive(value: float, name: str) -> float:
    value = real(value, name)
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return value


class Initializer:
    """Base class: `init(shape, dtype, rng)` -> an array of `shape` and `dtype`."""

    def __call__(self, shape: Sequence[int], dtype: DTypeLike, rng: np.random.Generator) -> NDArray[Any]:
        raise NotImplementedError

    def _args(self) -> dict[str, float]:
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._args().items())
        return f"{type(self).__name__}({args})"


class glorot_uniform(Initializer):
    """U(-L, L), L = sqrt(6 / (fan_in + fan_out)) over the whole matrix
    (fan_in = shape[0], fan_out = shape[-1]): TF's default kernel initializer."""

    def __call__(self, shape: Sequence[int], dtype: DTypeLike, rng: np.random.Generator) -> NDArray[Any]:
        return _glorot_uniform(rng, tuple(shape), dtype)


class random_normal(Initializer):
    """N(mean, stddev²)."""

    def __init__(self, mean: float = 0.0, stddev: float = 1.0) -> None:
        self.mean, self.stddev = real(mean, "mean"), _positive(stddev, "stddev")

    def _args(self) -> dict[str, float]:
        return {"mean": self.mean, "stddev": self.stddev}

    def __call__(self, shape: Sequence[int], dtype: DTypeLike, rng: np.random.Generator) -> NDArray[Any]:
        return rng.normal(self.mean, self.stddev, size=tuple(shape)).astype(dtype)


class random_uniform(Initializer):
    """U(minval, maxval)."""

    def __init__(self, minval: float = -0.05, maxval: float = 0.05) -> None:
        self.minval, self.maxval = real(minval, "minval"), real(maxval, "maxval")
        if not self.minval < self.maxval:
            raise ValueError(f"minval must be < maxval, got minval={self.minval}, maxval={self.maxval}")

    def _args(self) -> dict[str, float]:
        return {"minval": self.minval, "maxval": self.maxval}

    def __call__(self, shape: Sequence[int], dtype: DTypeLike, rng: np.random.Generator) -> NDArray[Any]:
        return rng.uniform(self.minval, self.maxval, size=tuple(shape)).astype(dtype)


class truncated_normal(Initializer):
    """N(mean, stddev²) with every value more than 2 stddev from the mean
    drawn again (TF's truncated normal)."""

    def __init__(self, mean: float = 0.0, stddev: float = 1.0) -> None:
        self.mean, self.stddev = real(mean, "mean"), _positive(stddev, "stddev")

    def _args(self) -> dict[str, float]:
        return {"mean": self.mean, "stddev": self.stddev}

    def __call__(self, shape: Sequence[int], dtype: DTypeLike, rng: np.random.Generator) -> NDArray[Any]:
        values = rng.normal(self.mean, self.stddev, size=tuple(shape))
        outside = np.abs(values - self.mean) > 2 * self.stddev
        while outside.any():  # each round redraws about 4.6% of what is left
            values[outside] = rng.normal(self.mean, self.stddev, size=int(outside.sum()))
            outside = np.abs(values - self.mean) > 2 * self.stddev
        return values.astype(dtype)


class constant(Initializer):
    """Every value `value`."""

    def __init__(self, value: float = 0.0) -> None:
        self.value = real(value, "value")

    def _args(self) -> dict[str, float]:
        return {"value": self.value}

    def __call__(self, shape: Sequence[int], dtype: DTypeLike, rng: np.random.Generator) -> NDArray[Any]:
        return np.full(tuple(shape), self.value, dtype=dtype)


class zeros(constant):
    """Every value 0."""

    def __init__(self) -> None:
        super().__init__(0.0)

    def _args(self) -> dict[str, float]:
        return {}


class orthogonal(Initializer):
    """TF's orthogonal initializer: the [prod(shape[:-1]), shape[-1]] matrix
    has orthonormal rows or columns (whichever are fewer), times `gain`. It
    is Q of the QR decomposition of a standard normal matrix, with the signs
    of R's diagonal folded in so that Q is uniformly distributed."""

    def __init__(self, gain: float = 1.0) -> None:
        self.gain = real(gain, "gain")

    def _args(self) -> dict[str, float]:
        return {"gain": self.gain}

    def __call__(self, shape: Sequence[int], dtype: DTypeLike, rng: np.random.Generator) -> NDArray[Any]:
        shape = tuple(shape)
        if len(shape) < 2:
            raise ValueError(f"orthogonal needs a shape of rank >= 2, got {shape_str(shape)}")
        rows, cols = int(np.prod(shape[:-1])), shape[-1]
        a = rng.normal(0.0, 1.0, size=(max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q = q * np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return (self.gain * q).reshape(shape).astype(dtype)


# TF1's names, with TF1's defaults
glorot_uniform_initializer = glorot_uniform
random_normal_initializer = random_normal
truncated_normal_initializer = truncated_normal
zeros_initializer = zeros
constant_initializer = constant
orthogonal_initializer = orthogonal


class random_uniform_initializer(random_uniform):
    """tf.random_uniform_initializer: U(minval, maxval), by default [0, 1)."""

    def __init__(self, minval: float = 0.0, maxval: float = 1.0) -> None:
        super().__init__(minval, maxval)


_BY_NAME: dict[str, Callable[[], Initializer]] = {
    "glorot_uniform": glorot_uniform, "random_normal": random_normal, "random_uniform": random_uniform,
    "truncated_normal": truncated_normal, "zeros": zeros, "constant": constant, "orthogonal": orthogonal,
    "ones": lambda: constant(1.0),
}


def get(initializer: Union[None, str, InitializerFn], name: str = "initializer") -> Optional[InitializerFn]:
    """None (the layer's default), a callable `(shape, dtype, rng) -> array`,
    or the name of one of the initializers above ("zeros", "orthogonal", ...)."""
    if initializer is None or callable(initializer):
        return initializer
    if isinstance(initializer, str):
        if initializer not in _BY_NAME:
            raise ValueError(f"{name} must be one of {sorted(_BY_NAME)} or a callable (shape, dtype, rng) -> array, "
                             f"got {initializer!r}")
        return _BY_NAME[initializer]()
    raise TypeError(f"{name} must be a callable (shape, dtype, rng) -> array, a name or None, "
                    f"got {type(initializer).__name__}")

