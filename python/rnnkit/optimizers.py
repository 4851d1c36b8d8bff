"""TF1's AdamOptimizer and GradientDescentOptimizer, and clip_by_global_norm.
Each call updates (or clips) the whole list in one C++ call; variables are
numpy arrays updated in place."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Iterable, Optional, Sequence

import numpy as np

from . import _core
from ._checks import contiguous, real, scalar
from ._guard import Serial
from ._typing import ArrayLike, FloatArray, NDArray

if TYPE_CHECKING:
    from .sequential import Sequential


def _positive(value: float, name: str) -> float:
    number = real(value, name)
    if not (number > 0 and math.isfinite(number)):
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return number


def _unit_interval(value: float, name: str) -> float:
    number = real(value, name)
    if not 0 <= number < 1:
        raise ValueError(f"{name} must lie in [0, 1), got {value}")
    return number


def _split(grads_and_vars: Iterable[tuple[Optional[ArrayLike], NDArray[Any]]]
           ) -> tuple[list[Optional[NDArray[Any]]], list[NDArray[Any]]]:
    """([grad or None], [variable]) with every variable a numpy array;
    gradients made C-contiguous (their dtype and shape are checked in C++)."""
    pairs = list(grads_and_vars)
    grads: list[Optional[NDArray[Any]]] = []
    variables: list[NDArray[Any]] = []
    for i, pair in enumerate(pairs):
        try:
            grad, var = pair
        except (TypeError, ValueError) as e:
            raise TypeError(f"grads_and_vars[{i}] must be a (gradient, variable) pair") from e
        if not isinstance(var, np.ndarray):
            raise TypeError(f"grads_and_vars[{i}]: variable must be a numpy array, got {type(var).__name__}")
        grads.append(None if grad is None else contiguous(grad))
        variables.append(var)
    if not pairs or all(g is None for g in grads):
        raise ValueError("No gradients provided for any variable")
    return grads, variables


class Optimizer:
    """What both optimizers share: `learning_rate`, read at every step (a
    new value takes effect at the next one; Adam's slots are kept), and
    TF1's `minimize`."""

    _learning_rate: float

    @property
    def learning_rate(self) -> float:
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self._learning_rate = _positive(value, "learning_rate")

    def minimize(self, model: Sequential, x: ArrayLike, y: ArrayLike, weights: Optional[ArrayLike] = None,
                 sequence_length: Optional[ArrayLike] = None) -> float:
        """TF1's name for one training step: `model.train_step(x, y, weights,
        self)` on a Sequential. Returns the loss before the update."""
        return model.train_step(x, y, weights, self, sequence_length=sequence_length)


class GradientDescentOptimizer(Optimizer):
    """var -= learning_rate · g (TF1's GradientDescentOptimizer). Updates
    from several threads run one after another, each whole."""

    def __init__(self, learning_rate: float) -> None:
        self.learning_rate = _positive(learning_rate, "learning_rate")
        self._serial = Serial(type(self).__name__)

    def apply_gradients(self, grads_and_vars: Iterable[tuple[Optional[ArrayLike], NDArray[Any]]]) -> None:
        """Updates every variable in place; pairs whose gradient is None are skipped."""
        grads, variables = _split(grads_and_vars)
        with self._serial:
            _core.sgd_apply(variables, grads, self.learning_rate)

    def __repr__(self) -> str:
        return f"GradientDescentOptimizer(learning_rate={self.learning_rate})"


class AdamOptimizer(Optimizer):
    """TF1's AdamOptimizer (the "epsilon hat" form). At step t = 1, 2, ...:
    lr_t = lr · sqrt(1 - beta2^t) / (1 - beta1^t);  m += (g - m)(1 - beta1);
    v += (g² - v)(1 - beta2);  var -= lr_t · m / (sqrt(v) + epsilon).

    Slots m and v (zeros, the variable's shape and dtype) are kept per
    variable, keyed by the identity of the variable's array; `iterations` is
    the number of apply_gradients calls so far (t of the last step). Updates
    from several threads run one after another, each whole (every call is
    one step)."""

    def __init__(self, learning_rate: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-8) -> None:
        self.learning_rate = _positive(learning_rate, "learning_rate")
        self.beta1 = _unit_interval(beta1, "beta1")
        self.beta2 = _unit_interval(beta2, "beta2")
        self.epsilon = real(epsilon, "epsilon")
        if not (self.epsilon >= 0 and math.isfinite(self.epsilon)):
            raise ValueError(f"epsilon must be a finite number >= 0, got {epsilon}")
        self.iterations = 0
        # id(variable) -> (variable, m, v); holding the variable keeps its id unique
        self._slots: dict[int, tuple[NDArray[Any], NDArray[Any], NDArray[Any]]] = {}
        self._serial = Serial(type(self).__name__)

    def _slots_for(self, var: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any]]:
        entry = self._slots.get(id(var))
        if entry is None or entry[0] is not var:
            entry = (var, np.zeros_like(var, order="C"), np.zeros_like(var, order="C"))
            self._slots[id(var)] = entry
        return entry

    def get_slot(self, var: NDArray[Any], name: str) -> Optional[NDArray[Any]]:
        """The 'm' or 'v' slot of `var` (None before its first update)."""
        if name not in ("m", "v"):
            raise ValueError(f"name must be 'm' or 'v', got {name!r}")
        entry = self._slots.get(id(var))
        if entry is None or entry[0] is not var:
            return None
        return entry[1] if name == "m" else entry[2]

    def apply_gradients(self, grads_and_vars: Iterable[tuple[Optional[ArrayLike], NDArray[Any]]]) -> None:
        """One Adam step on every variable in place; pairs whose gradient is
        None are skipped (their slots are not created)."""
        grads, variables = _split(grads_and_vars)
        with self._serial:
            self._apply(grads, variables)

    def _apply(self, grads: list[Optional[NDArray[Any]]], variables: list[NDArray[Any]]) -> None:
        ms: list[Optional[NDArray[Any]]] = []
        vs: list[Optional[NDArray[Any]]] = []
        for grad, var in zip(grads, variables):
            if grad is None:
                ms.append(None)
                vs.append(None)
            else:
                _, m, v = self._slots_for(var)
                ms.append(m)
                vs.append(v)
        step = self.iterations + 1
        _core.adam_apply(variables, grads, ms, vs, self.learning_rate, self.beta1, self.beta2, self.epsilon, step)
        self.iterations = step

    def __repr__(self) -> str:
        return (f"AdamOptimizer(learning_rate={self.learning_rate}, beta1={self.beta1}, "
                f"beta2={self.beta2}, epsilon={self.epsilon})")


def clip_by_global_norm(tensors: Iterable[Optional[ArrayLike]],
                        clip_norm: float) -> tuple[list[Optional[FloatArray]], np.floating[Any]]:
    """TF1's tf.clip_by_global_norm.

    Args:
      tensors: a list of float arrays of one dtype (None entries pass through).
      clip_norm: a number > 0.
    Returns:
      ([t · clip_norm / max(gn, clip_norm)], gn) where gn = sqrt(Σ‖t‖²) is the
      unclipped global norm (a numpy scalar of the tensors' dtype). A
      non-finite gn makes every entry of every clipped tensor NaN.
    """
    clip_norm = _positive(clip_norm, "clip_norm")
    if isinstance(tensors, np.ndarray):
        raise TypeError("tensors must be a list of arrays, got one array")
    items: list[Optional[NDArray[Any]]] = []
    for i, t in enumerate(tensors):
        if t is None:
            items.append(None)
            continue
        arr = np.asarray(t)
        if arr.dtype.kind != "f":
            raise TypeError(f"tensors[{i}] must be a float array (float32 or float64), got dtype {arr.dtype}")
        items.append(contiguous(arr))
    clipped, norm = _core.clip_by_global_norm(items, clip_norm)
    return clipped, scalar(norm)
