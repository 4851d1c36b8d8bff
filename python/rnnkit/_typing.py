"""The type aliases of rnnkit's annotations: numpy's ArrayLike in, NDArray
out, float32 or float64 unless an integer type is named."""

from typing import Any, Callable, Optional, Protocol, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

__all__ = ["ArrayLike", "DTypeLike", "NDArray", "FloatArray", "IntArray", "State", "StateSize", "InitializerFn",
           "Activation", "Layer", "LossLayer"]

# A float array (rnnkit computes in float32 or float64).
FloatArray = NDArray[np.floating[Any]]
# An integer array (token ids, class labels, sequence lengths).
IntArray = NDArray[np.integer[Any]]
# A cell's state: an array [B, S], an LSTMStateTuple (c, h), or a tuple of
# states (MultiRNNCell); its structure is the cell's, known only at run time.
State = Any
# A cell's state_size: an int, an LSTMStateTuple of ints, or a tuple of those
# (MultiRNNCell), TF's structure.
StateSize = Union[int, Tuple[Any, ...]]
# An initializer: (shape, dtype, rng) -> an array of that shape.
InitializerFn = Callable[[Tuple[int, ...], np.dtype[Any], np.random.Generator], ArrayLike]
# A cell's activation: 'tanh', 'relu', 'sigmoid' or 'linear', or a callable
# of that __name__ (np.tanh).
Activation = Union[str, Callable[..., Any]]


class Layer(Protocol):
    """What Sequential chains: RNN, Bidirectional, Dense, Embedding, or any
    object with the same forward and backward."""

    def forward(self, x: Any, /) -> Any: ...

    def backward(self, dy: Any, /) -> Any: ...


class LossLayer(Protocol):
    """What Sequential trains with: SequenceLoss, SoftmaxCrossEntropy,
    MeanSquaredError, or any object with the same forward and backward."""

    def forward(self, outputs: Any, targets: Any, weights: Any = None, /) -> Any: ...

    def backward(self, d_loss: Optional[Any] = None, /) -> Any: ...
