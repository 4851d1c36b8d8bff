"""Dense (TF1's tf.layers.dense, no activation) and Embedding (a trainable
embedding_lookup), forward and backward in C++."""

from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np

from . import _core, initializers
from ._checks import as_float, float_dtype, indices, positive_int, shape_str, unshared
from ._guard import InUse
from ._typing import ArrayLike, DTypeLike, FloatArray, InitializerFn, IntArray, NDArray
from .rnn import grads_and_vars
from .variables import BuiltOnFirstUse, Variables, glorot_uniform, initial_value


class Dense(BuiltOnFirstUse):
    """y = x · kernel + bias on the last axis of x (any rank >= 2).

    Variables: kernel [D, units] (Glorot-uniform, seeded by `seed`, or
    `kernel_initializer`'s), bias [units] (zeros, or `bias_initializer`'s); created from x.shape[-1] on the first forward, or
    at once when `input_depth` is given. forward(x) records a copy of x for
    backward(dy), which returns dx and leaves the variable gradients in
    `grads`. One thread at a time may run forward or backward (a second gets
    a RuntimeError); inference (`layer(x)`) may run in many at once."""

    def __init__(self, units: int, dtype: DTypeLike = np.float32, input_depth: Optional[int] = None,
                 seed: Optional[int] = None, kernel_initializer: Union[None, str, InitializerFn] = None,
                 bias_initializer: Union[None, str, InitializerFn] = None) -> None:
        self.units = positive_int(units, "units")
        self.dtype = float_dtype(dtype)
        self.seed = seed
        self.kernel_initializer = initializers.get(kernel_initializer, "kernel_initializer")
        self.bias_initializer = initializers.get(bias_initializer, "bias_initializer")
        self.variables = Variables("Dense")
        self.grads: dict[str, FloatArray] = {}
        self.input_depth = None
        self._x: Optional[NDArray[Any]] = None  # the input of the last training forward, as backward reads it
        self._x_copy: Optional[NDArray[Any]] = None  # where forward copies an input of the caller's (reused)
        # (kernel, bias) once built: live arrays, assignment copies into them
        self._params: Optional[tuple[NDArray[Any], NDArray[Any]]] = None
        self._in_use = InUse(type(self).__name__)
        if input_depth is not None:
            self.build(positive_int(input_depth, "input_depth"))

    _depth_error = "x must have depth {want} (the layer's input_depth) on its last axis, got {got}"

    def _variable_specs(self, rng: np.random.Generator, input_depth: int) -> list[tuple[str, NDArray[Any]]]:
        """kernel [input_depth, units] and bias [units]."""
        return [("kernel", self._kernel(rng, (input_depth, self.units))),
                ("bias", self._bias(rng, (self.units,)))]

    def build(self, input_depth: int) -> None:
        super().build(input_depth)
        self._params = (self.variables["kernel"], self.variables["bias"])

    def _prepare(self, x: ArrayLike) -> NDArray[Any]:
        if np.ndim(x) < 2:
            raise ValueError(f"x must have rank >= 2 [..., D], got shape {shape_str(np.shape(x))}")
        x = as_float(x, "x", self.dtype)
        self.build(x.shape[-1])
        return x

    def __call__(self, x: ArrayLike) -> FloatArray:
        """Inference: x [..., D] -> y [..., units]; records nothing."""
        params = self._params
        if params is not None and type(x) is np.ndarray and x.dtype is self.dtype and x.ndim >= 2:
            try:  # a sampling head's h, once per token: the kernel checks its shape
                return _core.dense_forward(x, *params)
            except (TypeError, ValueError):
                pass  # not usable as it is: _prepare converts it, or says what is wrong
        prepared = self._prepare(x)
        return _core.dense_forward(prepared, self.variables["kernel"], self.variables["bias"])

    def forward(self, x: ArrayLike) -> FloatArray:
        """x [..., D] -> y [..., units]; keeps a copy of x for backward."""
        with self._in_use:
            self._x = None  # a forward that fails leaves nothing for backward
            prepared = self._prepare(x)
            y = _core.dense_forward(prepared, self.variables["kernel"], self.variables["bias"])
            self._x = self._kept(prepared, x)
            return y

    def _kept(self, x: NDArray[Any], given: object) -> NDArray[Any]:
        """x as backward reads it: the values forward saw. x itself when
        _prepare converted `given` (no one else holds it); a copy of the
        caller's memory otherwise, in a buffer reused across calls."""
        if x is not given and x.base is None:
            return x
        if self._x_copy is None or self._x_copy.shape != x.shape or self._x_copy.dtype != x.dtype:
            self._x_copy = np.empty_like(x)
        np.copyto(self._x_copy, x)
        return self._x_copy

    def backward(self, dy: ArrayLike) -> FloatArray:
        """dy [..., units] (the shape of forward's y) -> dx [..., D]. The
        gradients of kernel and bias are left in `grads`."""
        with self._in_use:
            return self._backward(dy)

    def _backward(self, dy: ArrayLike) -> FloatArray:
        if self._x is None:
            raise RuntimeError("Dense.backward called before forward: call forward(x) first")
        expected = self._x.shape[:-1] + (self.units,)
        d_y = as_float(dy, "dy", self.dtype)
        if d_y.shape != expected:
            raise ValueError(f"dy must have shape {shape_str(expected)} (forward's output), got {shape_str(d_y.shape)}")
        dx, d_kernel, d_bias = _core.dense_backward(self._x, self.variables["kernel"], d_y)
        self.grads.clear()
        self.grads.update(kernel=d_kernel, bias=d_bias)
        return dx

    def grads_and_vars(self) -> list[tuple[FloatArray, FloatArray]]:
        """[(gradient, variable)] for kernel and bias."""
        return grads_and_vars(self)

    def __repr__(self) -> str:
        return f"Dense(units={self.units}, dtype={self.dtype.name})"


class Embedding:
    """A trainable embedding_lookup: ids [...] -> rows of `embedding` [..., dim].

    Variable: embedding [vocab_size, dim] (checkpoint name `embedding`, as
    TF1's `tf.get_variable("embedding", [vocab_size, dim])`), from
    `initializer` (Glorot-uniform, get_variable's default, when None) seeded
    by `seed`. forward(ids) records the ids for backward(dy), which leaves
    the dense gradient [vocab_size, dim] in `grads["embedding"]` (dy's rows
    added into their ids' rows; zero elsewhere) and returns None: ids have
    no gradient. Adam on that dense gradient decays every row's slots, as
    TF1's sparse Adam update does."""

    scope_name = "embedding"
    built = True

    def __init__(self, vocab_size: int, dim: int, initializer: Union[None, str, InitializerFn] = None,
                 dtype: DTypeLike = np.float32, seed: Optional[int] = None) -> None:
        self.vocab_size = positive_int(vocab_size, "vocab_size")
        self.dim = positive_int(dim, "dim")
        self.dtype = float_dtype(dtype)
        self.seed = seed
        self.initializer = initializers.get(initializer, "initializer")
        self.variables = Variables("Embedding")
        self.grads: dict[str, FloatArray] = {}
        self._ids: Optional[IntArray] = None  # the ids of the last training forward (a copy)
        self._in_use = InUse(type(self).__name__)
        rng = np.random.default_rng(seed)
        shape = (self.vocab_size, self.dim)
        value = (glorot_uniform(rng, shape, self.dtype) if self.initializer is None
                 else initial_value(self.initializer, shape, self.dtype, rng, "initializer"))
        self.variables._create("embedding", value)

    @property
    def output_size(self) -> int:
        return self.dim

    def _ids_of(self, ids: ArrayLike) -> IntArray:
        return indices(ids, self.vocab_size, "ids")

    def __call__(self, ids: ArrayLike) -> FloatArray:
        """Inference: ids [...] (integers in [0, vocab_size)) -> [..., dim]."""
        return _core.embedding_lookup(self.variables["embedding"], self._ids_of(ids))

    def forward(self, ids: ArrayLike) -> FloatArray:
        """ids [...] -> [..., dim]; keeps the ids for backward."""
        with self._in_use:
            checked = self._ids_of(ids)
            out = _core.embedding_lookup(self.variables["embedding"], checked)
            self._ids = unshared(checked, ids)
            return out

    def backward(self, dy: ArrayLike) -> None:
        """dy [..., dim] (forward's output shape). Leaves d embedding
        [vocab_size, dim] in `grads`; returns None (ids have no gradient)."""
        with self._in_use:
            if self._ids is None:
                raise RuntimeError("Embedding.backward called before forward: call forward(ids) first")
            expected = self._ids.shape + (self.dim,)
            d_y = as_float(dy, "dy", self.dtype)
            if d_y.shape != expected:
                raise ValueError(f"dy must have shape {shape_str(expected)} (forward's output), "
                                 f"got {shape_str(d_y.shape)}")
            self.grads.clear()
            self.grads["embedding"] = _core.embedding_lookup_backward(self._ids, d_y, self.vocab_size)
            return None

    def grads_and_vars(self) -> list[tuple[FloatArray, FloatArray]]:
        """[(gradient, variable)] for embedding."""
        return grads_and_vars(self)

    def __repr__(self) -> str:
        return f"Embedding(vocab_size={self.vocab_size}, dim={self.dim}, dtype={self.dtype.name})"
