"""Dense (TF1's tf.layers.dense, no activation) and Embedding (a trainable
embedding_lookup), forward and backward in C++."""

import numpy as np

from . import _core, initializers
from ._checks import as_float, float_dtype, indices, positive_int, shape_str, unshared
from ._guard import InUse
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

    def __init__(self, units, dtype=np.float32, input_depth=None, seed=None, kernel_initializer=None,
                 bias_initializer=None):
        self.units = positive_int(units, "units")
        self.dtype = float_dtype(dtype)
        self.seed = seed
        self.kernel_initializer = initializers.get(kernel_initializer, "kernel_initializer")
        self.bias_initializer = initializers.get(bias_initializer, "bias_initializer")
        self.variables = Variables("Dense")
        self.grads = {}
        self.input_depth = None
        self._x = None  # the input of the last training forward, as backward reads it
        self._x_copy = None  # where forward copies an input of the caller's (reused)
        self._params = None  # (kernel, bias) once built: live arrays, assignment copies into them
        self._in_use = InUse(type(self).__name__)
        if input_depth is not None:
            self.build(positive_int(input_depth, "input_depth"))

    _depth_error = "x must have depth {want} (the layer's input_depth) on its last axis, got {got}"

    def _variable_specs(self, rng, input_depth):
        """kernel [input_depth, units] and bias [units]."""
        return [("kernel", self._kernel(rng, (input_depth, self.units))),
                ("bias", self._bias(rng, (self.units,)))]

    def build(self, input_depth):
        super().build(input_depth)
        self._params = (self.variables["kernel"], self.variables["bias"])

    def _prepare(self, x):
        if np.ndim(x) < 2:
            raise ValueError(f"x must have rank >= 2 [..., D], got shape {shape_str(np.shape(x))}")
        x = as_float(x, "x", self.dtype)
        self.build(x.shape[-1])
        return x

    def __call__(self, x):
        """Inference: x [..., D] -> y [..., units]; records nothing."""
        params = self._params
        if params is not None and type(x) is np.ndarray and x.dtype is self.dtype and x.ndim >= 2:
            try:  # a sampling head's h, once per token: the kernel checks its shape
                return _core.dense_forward(x, *params)
            except (TypeError, ValueError):
                pass  # not usable as it is: _prepare converts it, or says what is wrong
        x = self._prepare(x)
        return _core.dense_forward(x, *self._params)

    def forward(self, x):
        """x [..., D] -> y [..., units]; keeps a copy of x for backward."""
        with self._in_use:
            self._x = None  # a forward that fails leaves nothing for backward
            given = x
            x = self._prepare(x)
            y = _core.dense_forward(x, self.variables["kernel"], self.variables["bias"])
            self._x = self._kept(x, given)
            return y

    def _kept(self, x, given):
        """x as backward reads it: the values forward saw. x itself when
        _prepare converted `given` (no one else holds it); a copy of the
        caller's memory otherwise, in a buffer reused across calls."""
        if x is not given and x.base is None:
            return x
        if self._x_copy is None or self._x_copy.shape != x.shape or self._x_copy.dtype != x.dtype:
            self._x_copy = np.empty_like(x)
        np.copyto(self._x_copy, x)
        return self._x_copy

    def backward(self, dy):
        """dy [..., units] (the shape of forward's y) -> dx [..., D]. The
        gradients of kernel and bias are left in `grads`."""
        with self._in_use:
            return self._backward(dy)

    def _backward(self, dy):
        if self._x is None:
            raise RuntimeError("Dense.backward called before forward: call forward(x) first")
        expected = self._x.shape[:-1] + (self.units,)
        dy = as_float(dy, "dy", self.dtype)
        if dy.shape != expected:
            raise ValueError(f"dy must have shape {shape_str(expected)} (forward's output), got {shape_str(dy.shape)}")
        dx, d_kernel, d_bias = _core.dense_backward(self._x, self.variables["kernel"], dy)
        self.grads.clear()
        self.grads.update(kernel=d_kernel, bias=d_bias)
        return dx

    def grads_and_vars(self):
        """[(gradient, variable)] for kernel and bias."""
        return grads_and_vars(self)

    def __repr__(self):
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

    def __init__(self, vocab_size, dim, initializer=None, dtype=np.float32, seed=None):
        self.vocab_size = positive_int(vocab_size, "vocab_size")
        self.dim = positive_int(dim, "dim")
        self.dtype = float_dtype(dtype)
        self.seed = seed
        self.initializer = initializers.get(initializer, "initializer")
        self.variables = Variables("Embedding")
        self.grads = {}
        self._ids = None  # the ids of the last training forward (a copy)
        self._in_use = InUse(type(self).__name__)
        rng = np.random.default_rng(seed)
        shape = (self.vocab_size, self.dim)
        value = (glorot_uniform(rng, shape, self.dtype) if self.initializer is None
                 else initial_value(self.initializer, shape, self.dtype, rng, "initializer"))
        self.variables._create("embedding", value)

    @property
    def output_size(self):
        return self.dim

    def _ids_of(self, ids):
        return indices(ids, self.vocab_size, "ids")

    def __call__(self, ids):
        """Inference: ids [...] (integers in [0, vocab_size)) -> [..., dim]."""
        return _core.embedding_lookup(self.variables["embedding"], self._ids_of(ids))

    def forward(self, ids):
        """ids [...] -> [..., dim]; keeps the ids for backward."""
        with self._in_use:
            checked = self._ids_of(ids)
            out = _core.embedding_lookup(self.variables["embedding"], checked)
            self._ids = unshared(checked, ids)
            return out

    def backward(self, dy):
        """dy [..., dim] (forward's output shape). Leaves d embedding
        [vocab_size, dim] in `grads`; returns None (ids have no gradient)."""
        with self._in_use:
            if self._ids is None:
                raise RuntimeError("Embedding.backward called before forward: call forward(ids) first")
            expected = self._ids.shape + (self.dim,)
            dy = as_float(dy, "dy", self.dtype)
            if dy.shape != expected:
                raise ValueError(f"dy must have shape {shape_str(expected)} (forward's output), "
                                 f"got {shape_str(dy.shape)}")
            self.grads.clear()
            self.grads["embedding"] = _core.embedding_lookup_backward(self._ids, dy, self.vocab_size)
            return None

    def grads_and_vars(self):
        """[(gradient, variable)] for embedding."""
        return grads_and_vars(self)

    def __repr__(self):
        return f"Embedding(vocab_size={self.vocab_size}, dim={self.dim}, dtype={self.dtype.name})"
