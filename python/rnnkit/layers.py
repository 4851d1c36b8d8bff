"""Dense: TF1's tf.layers.dense (no activation), forward and backward in C++."""

import numpy as np

from . import _core
from ._checks import as_float, float_dtype, positive_int, shape_str
from ._guard import InUse
from .rnn import grads_and_vars
from .variables import BuiltOnFirstUse, Variables, glorot_uniform


class Dense(BuiltOnFirstUse):
    """y = x · kernel + bias on the last axis of x (any rank >= 2).

    Variables: kernel [D, units] (Glorot-uniform, seeded by `seed`),
    bias [units] (zeros); created from x.shape[-1] on the first forward, or
    at once when `input_depth` is given. forward(x) records a copy of x for
    backward(dy), which returns dx and leaves the variable gradients in
    `grads`. One thread at a time may run forward or backward (a second gets
    a RuntimeError); inference (`layer(x)`) may run in many at once."""

    def __init__(self, units, dtype=np.float32, input_depth=None, seed=None):
        self.units = positive_int(units, "units")
        self.dtype = float_dtype(dtype)
        self.seed = seed
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
        """kernel [input_depth, units] (Glorot) and bias [units] (zeros)."""
        return [("kernel", glorot_uniform(rng, (input_depth, self.units), self.dtype)),
                ("bias", np.zeros(self.units, self.dtype))]

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
