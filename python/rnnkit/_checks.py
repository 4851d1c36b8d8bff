"""Input checks of the Python layer: every message names the argument and
gives the expected and the actual shape or dtype. Shapes that the bindings
check (depths, state shapes) are left to them."""

from __future__ import annotations

import numbers
from typing import Any, Optional, Sequence, TypeVar

import numpy as np

from ._typing import ArrayLike, DTypeLike, IntArray, NDArray

_A = TypeVar("_A", bound=NDArray[Any])
_S = TypeVar("_S", bound=np.generic)

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def float_dtype(dtype: DTypeLike, name: str = "dtype") -> np.dtype[Any]:
    """np.float32 / np.float64 (or their names) as a numpy dtype."""
    try:
        dt = np.dtype(dtype)
    except TypeError as e:
        raise TypeError(f"{name} must be float32 or float64, got {dtype!r}") from e
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got {dt}")
    return dt


def shape_str(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(int(s)) for s in shape) + "]"


def as_float(value: ArrayLike, name: str, dtype: Optional[DTypeLike], ndim: Optional[int] = None,
             layout: Optional[str] = None) -> NDArray[Any]:
    """`value` as a C-contiguous array of the float `dtype`.

    Float arrays of another precision are converted; integers, booleans and
    anything else are a TypeError. `layout` (e.g. "[B, T, D]") is shown when
    the rank is wrong."""
    arr = np.asarray(value)
    if arr.dtype.kind != "f":
        raise TypeError(f"{name} must be a float array (float32 or float64), got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        expected = layout or f"rank {ndim}"
        raise ValueError(f"{name} must have rank {ndim} {expected}, got shape {shape_str(arr.shape)}")
    return contiguous(arr, dtype)


def contiguous(value: ArrayLike, dtype: Optional[DTypeLike] = None) -> NDArray[Any]:
    """`value` as a C-contiguous array (of `dtype` when given), copied only
    where needed. Unlike np.ascontiguousarray it keeps a 0-d array 0-d."""
    return np.asarray(value, dtype=dtype, order="C")


def scalar(array: np.ndarray[Any, np.dtype[_S]]) -> _S:
    """The value of a 0-d array, as a numpy scalar of its dtype."""
    value: Any = array[()]
    return value


def is_ready(value: object, dtype: DTypeLike, shape: tuple[int, ...]) -> bool:
    """Is `value` already what a kernel takes: a C-contiguous ndarray of
    `dtype` and `shape`? Then it needs no conversion."""
    return type(value) is np.ndarray and value.dtype == dtype and value.flags.c_contiguous and value.shape == shape


def check_shape(arr: _A, name: str, expected: Sequence[Optional[int]]) -> _A:
    """`expected` may hold None for any size."""
    ok = arr.ndim == len(expected) and all(e is None or e == s for e, s in zip(expected, arr.shape))
    if not ok:
        exp = "[" + ", ".join("*" if e is None else str(e) for e in expected) + "]"
        raise ValueError(f"{name} must have shape {exp}, got {shape_str(arr.shape)}")
    return arr


def as_ints(value: ArrayLike, name: str) -> NDArray[Any]:
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array, got dtype {arr.dtype}")
    return arr


def sequence_lengths(sequence_length: Optional[ArrayLike], batch: int,
                     steps: int) -> Optional[NDArray[np.int32]]:
    """Optional `sequence_length` [B] as int32 with every value in [0, T]."""
    if sequence_length is None:
        return None
    lengths = check_shape(as_ints(sequence_length, "sequence_length"), "sequence_length", (batch,))
    bad = (lengths < 0) | (lengths > steps)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"sequence_length values must lie in [0, {steps}], got {int(lengths[i])} at index {i}"
        )
    return contiguous(lengths, np.int32)


def is_int(value: object) -> bool:
    """Is `value` an int (numpy's integers too)? A bool is not."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: object) -> bool:
    """Is `value` a real number (numpy's too)? A bool is not."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def integer(value: object, name: str) -> int:
    """An int (numpy integers too; bool, float and the rest are a TypeError)."""
    if not is_int(value):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    number: Any = value  # a numbers.Integral
    return int(number)


def real(value: object, name: str) -> float:
    """A real number (numpy's too; bool, complex and the rest are a TypeError), as a float."""
    if not is_real(value):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    number: Any = value  # a numbers.Real
    return float(number)


def positive_int(value: object, name: str) -> int:
    value = integer(value, name)
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return value


def non_negative_int(value: object, name: str) -> int:
    value = integer(value, name)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def _check_range(ids: NDArray[Any], limit: int, what: str) -> None:
    """Every integer in `ids` in [0, limit); else a ValueError naming the
    first value outside and its index."""
    if ids.size == 0 or (ids.min() >= 0 and ids.max() < limit):
        return
    bad = (ids < 0) | (ids >= limit)
    index = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), ids.shape))
    raise ValueError(f"{what} must lie in [0, {limit}), got {int(ids[index])} at index {list(index)}")


def token_ids(value: ArrayLike, depth: int, name: str = "inputs") -> NDArray[np.int32]:
    """Integer token ids as int32, every id in [0, depth)."""
    ids = as_ints(value, name)
    _check_range(ids, depth, f"{name} token ids")
    return contiguous(ids, np.int32)


def indices(value: ArrayLike, limit: int, name: str) -> IntArray:
    """Integer indices (class labels, embedding ids) in [0, limit), as a
    C-contiguous int32 or int64 array of their own shape."""
    ids = as_ints(value, name)
    _check_range(ids, limit, name)
    return contiguous(ids, np.int32 if ids.dtype == np.int32 else np.int64)


ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear")


def activation_name(activation: object) -> str:
    """'tanh' etc., or the same numpy-style callables by their __name__."""
    name = activation if isinstance(activation, str) else getattr(activation, "__name__", None)
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    return name


def unshared(array: _A, source: object) -> _A:
    """`array`, made from the caller's `source`, as a backward must read it:
    the values its forward saw. A copy when it is still the caller's memory,
    which the caller may refill between the two."""
    return array.copy() if isinstance(source, np.ndarray) and np.may_share_memory(array, source) else array
