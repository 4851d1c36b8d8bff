"""Variables: named, live numpy arrays in TF's layout and creation order."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Optional, Sequence

import numpy as np

from ._checks import shape_str
from ._typing import ArrayLike, DTypeLike, InitializerFn, NDArray


def glorot_uniform(rng: np.random.Generator, shape: tuple[int, ...], dtype: DTypeLike) -> NDArray[Any]:
    """TF's default kernel initializer over the whole fused matrix:
    U(-L, L), L = sqrt(6 / (rows + columns))."""
    fan_in, fan_out = shape[0], shape[-1]
    limit = np.sqrt(6.0 / (fan_in + fan_out)) if fan_in + fan_out > 0 else 0.0
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


def initial_value(initializer: InitializerFn, shape: Sequence[int], dtype: np.dtype[Any], rng: np.random.Generator,
                  name: str) -> NDArray[Any]:
    """`initializer(shape, dtype, rng)`, checked: an array of `shape`, as `dtype`."""
    value = np.asarray(initializer(tuple(shape), dtype, rng))
    if value.shape != tuple(shape):
        raise ValueError(f"{name} returned shape {shape_str(value.shape)}, expected {shape_str(shape)}")
    if value.dtype.kind not in "fiu":
        raise TypeError(f"{name} returned dtype {value.dtype}, expected a float array")
    return np.ascontiguousarray(value, dtype=dtype)


class Variables(Mapping[str, NDArray[Any]]):
    """A read-mostly dict of live arrays.

    `variables[name] = array` copies the values into the existing array (so
    optimizer slots and layers keep pointing at it); a wrong shape or dtype
    is an error. Keys are TF's names relative to the owner's scope."""

    def __init__(self, owner: str) -> None:
        self._owner = owner
        self._arrays: dict[str, NDArray[Any]] = {}

    def _create(self, name: str, array: ArrayLike) -> None:
        self._arrays[name] = np.ascontiguousarray(array)

    def __getitem__(self, name: str) -> NDArray[Any]:
        return self._arrays[name]

    def __setitem__(self, name: str, value: ArrayLike) -> None:
        if name not in self._arrays:
            known = ", ".join(self._arrays) or "none yet: the cell is not built"
            raise KeyError(f"{self._owner} has no variable {name!r} (it has: {known})")
        target = self._arrays[name]
        value = np.asarray(value)
        if value.dtype != target.dtype:
            raise TypeError(f"variable {name!r} must have dtype {target.dtype}, got {value.dtype}")
        if value.shape != target.shape:
            raise ValueError(
                f"variable {name!r} must have shape {shape_str(target.shape)}, got {shape_str(value.shape)}"
            )
        np.copyto(target, value)

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)

    def __repr__(self) -> str:
        items = ", ".join(f"{k!r}: {shape_str(v.shape)}" for k, v in self._arrays.items())
        return f"Variables({{{items}}})"


class BuiltOnFirstUse:
    """TF's lazy build: the variables are made from the input depth the first
    time an input is seen (or at construction, given input_depth). Subclasses
    set `seed`, `dtype`, `variables`, `input_depth` and `_variable_specs`,
    and may set `kernel_initializer` / `bias_initializer` (rnnkit.initializers;
    None: TF's defaults)."""

    seed: Any
    dtype: np.dtype[Any]
    variables: Variables
    input_depth: Optional[int]
    kernel_initializer: Optional[InitializerFn] = None
    bias_initializer: Optional[InitializerFn] = None

    # {want} and {got} are filled in when an input of another depth arrives
    _depth_error = "inputs must have depth {want} (the cell's input_depth), got {got}"

    @property
    def built(self) -> bool:
        return self.input_depth is not None

    def build(self, input_depth: int) -> None:
        """Creates the variables for inputs of depth `input_depth` (seeded Glorot)."""
        if self.built:
            if input_depth != self.input_depth:
                raise ValueError(self._depth_error.format(want=self.input_depth, got=input_depth))
            return
        self.input_depth = int(input_depth)
        rng = np.random.default_rng(self.seed)
        for name, array in self._variable_specs(rng, self.input_depth):
            self.variables._create(name, np.asarray(array, dtype=self.dtype))

    def _variable_specs(self, rng: np.random.Generator, input_depth: int) -> list[tuple[str, NDArray[Any]]]:
        """[(name, initial array)] in TF's creation order."""
        raise NotImplementedError

    def _kernel(self, rng: np.random.Generator, shape: tuple[int, ...]) -> NDArray[Any]:
        """A kernel's initial value: kernel_initializer's, else Glorot-uniform."""
        if self.kernel_initializer is None:
            return glorot_uniform(rng, shape, self.dtype)
        return initial_value(self.kernel_initializer, shape, self.dtype, rng, "kernel_initializer")

    def _bias(self, rng: np.random.Generator, shape: tuple[int, ...], default: float = 0.0) -> NDArray[Any]:
        """A bias's initial value: bias_initializer's, else `default` everywhere."""
        if self.bias_initializer is None:
            return np.full(shape, default, self.dtype)
        return initial_value(self.bias_initializer, shape, self.dtype, rng, "bias_initializer")
