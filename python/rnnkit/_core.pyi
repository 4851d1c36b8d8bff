"""rnnkit's C++ kernels (src/*.cpp, pybind11), as type checkers see them.

Float arrays are float32 or float64, one dtype per call (the first array's
decides); integer arrays are int32 or int64 where not named. A tape is the
dict a forward fills and its backward reads. tests/test_typing.py checks
that every name and argument here matches the built extension.
"""

from typing import Any, Literal, Optional, Sequence, overload

import numpy as np
from numpy.typing import NDArray

_Float = NDArray[np.floating[Any]]
_Int = NDArray[np.integer[Any]]
_Lengths = Optional[NDArray[np.int32]]  # sequence_length [B], int32 in [0, T]
_Tape = dict[str, Any]
_Grads = dict[str, _Float]  # variable name -> gradient

arch: str
simd: str
openmp: bool

# ---- threads and result memory (module.cpp) ----
def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...
def threads_in_use() -> int: ...
def set_adaptive_threads(on: bool) -> None: ...
def adaptive_threads() -> bool: ...
def max_num_threads() -> int: ...
def _result_cache(limit: Optional[int] = None) -> tuple[int, int]: ...

# ---- cells over a sequence: x [B, T, D] ([T, B, D] when time_major) or int32 ids ----
def basic_rnn_forward(
    x: NDArray[Any],
    kernel: _Float,
    bias: _Float,
    h0: _Float,
    sequence_length: _Lengths = None,
    time_major: bool = False,
    activation: str = "tanh",
    state_mask: Optional[_Float] = None,
    tape: Optional[_Tape] = None,
) -> tuple[_Float, _Float]: ...
def basic_rnn_backward(
    tape: _Tape,
    d_outputs: _Float,
    dh_final: _Float,
    kernel: _Float,
    bias: _Float,
    activation: str = "tanh",
    input_grad: bool = True,
) -> tuple[Optional[_Float], _Float, _Grads]: ...
def lstm_forward(
    x: NDArray[Any],
    kernel: _Float,
    bias: _Float,
    w_f_diag: Optional[_Float],
    w_i_diag: Optional[_Float],
    w_o_diag: Optional[_Float],
    projection: Optional[_Float],
    c0: _Float,
    m0: _Float,
    sequence_length: _Lengths = None,
    time_major: bool = False,
    forget_bias: float = 1.0,
    activation: str = "tanh",
    cell_clip: Optional[float] = None,
    proj_clip: Optional[float] = None,
    state_mask: Optional[_Float] = None,
    tape: Optional[_Tape] = None,
) -> tuple[_Float, _Float, _Float]: ...
def lstm_backward(
    tape: _Tape,
    d_outputs: _Float,
    dc_final: _Float,
    dm_final: _Float,
    kernel: _Float,
    bias: _Float,
    w_f_diag: Optional[_Float],
    w_i_diag: Optional[_Float],
    w_o_diag: Optional[_Float],
    projection: Optional[_Float],
    forget_bias: float = 1.0,
    activation: str = "tanh",
    cell_clip: Optional[float] = None,
    proj_clip: Optional[float] = None,
    input_grad: bool = True,
) -> tuple[Optional[_Float], _Float, _Float, _Grads]: ...
def layer_norm_lstm_forward(
    x: NDArray[Any],
    kernel: _Float,
    bias: Optional[_Float],  # without layer norm; the ten gamma/beta arrays [H] with it
    input_gamma: Optional[_Float],
    input_beta: Optional[_Float],
    transform_gamma: Optional[_Float],
    transform_beta: Optional[_Float],
    forget_gamma: Optional[_Float],
    forget_beta: Optional[_Float],
    output_gamma: Optional[_Float],
    output_beta: Optional[_Float],
    state_gamma: Optional[_Float],
    state_beta: Optional[_Float],
    c0: _Float,
    h0: _Float,
    sequence_length: _Lengths = None,
    time_major: bool = False,
    forget_bias: float = 1.0,
    activation: str = "tanh",
    dropout_keep_prob: float = 1.0,
    dropout_seed: float = 0.0,
    dropout_first_row: float = 0.0,
    state_mask: Optional[_Float] = None,
    tape: Optional[_Tape] = None,
) -> tuple[_Float, _Float, _Float]: ...
def layer_norm_lstm_backward(
    tape: _Tape,
    d_outputs: _Float,
    dc_final: _Float,
    dh_final: _Float,
    kernel: _Float,
    bias: Optional[_Float],
    input_gamma: Optional[_Float],
    input_beta: Optional[_Float],
    transform_gamma: Optional[_Float],
    transform_beta: Optional[_Float],
    forget_gamma: Optional[_Float],
    forget_beta: Optional[_Float],
    output_gamma: Optional[_Float],
    output_beta: Optional[_Float],
    state_gamma: Optional[_Float],
    state_beta: Optional[_Float],
    forget_bias: float = 1.0,
    activation: str = "tanh",
    dropout_keep_prob: float = 1.0,
    dropout_seed: float = 0.0,
    dropout_first_row: float = 0.0,
    input_grad: bool = True,
) -> tuple[Optional[_Float], _Float, _Float, _Grads]: ...
def gru_forward(
    x: NDArray[Any],
    gates_kernel: _Float,
    gates_bias: _Float,
    candidate_kernel: _Float,
    candidate_bias: _Float,
    h0: _Float,
    sequence_length: _Lengths = None,
    time_major: bool = False,
    activation: str = "tanh",
    state_mask: Optional[_Float] = None,
    tape: Optional[_Tape] = None,
) -> tuple[_Float, _Float]: ...
def gru_backward(
    tape: _Tape,
    d_outputs: _Float,
    dh_final: _Float,
    gates_kernel: _Float,
    gates_bias: _Float,
    candidate_kernel: _Float,
    candidate_bias: _Float,
    activation: str = "tanh",
    input_grad: bool = True,
) -> tuple[Optional[_Float], _Float, _Grads]: ...
def gru_reset_after_forward(
    x: NDArray[Any],
    gates_kernel: _Float,
    gates_bias: _Float,
    candidate_input_kernel: _Float,
    candidate_input_bias: _Float,
    candidate_hidden_kernel: _Float,
    candidate_hidden_bias: _Float,
    h0: _Float,
    sequence_length: _Lengths = None,
    time_major: bool = False,
    activation: str = "tanh",
    state_mask: Optional[_Float] = None,
    tape: Optional[_Tape] = None,
) -> tuple[_Float, _Float]: ...
def gru_reset_after_backward(
    tape: _Tape,
    d_outputs: _Float,
    dh_final: _Float,
    gates_kernel: _Float,
    gates_bias: _Float,
    candidate_input_kernel: _Float,
    candidate_input_bias: _Float,
    candidate_hidden_kernel: _Float,
    candidate_hidden_bias: _Float,
    activation: str = "tanh",
    input_grad: bool = True,
) -> tuple[Optional[_Float], _Float, _Grads]: ...

# ---- sequences (bind_sequence_ops.cpp) ----
def reverse_sequence(x: NDArray[Any], sequence_length: _Lengths = None, time_major: bool = False) -> NDArray[Any]: ...
def apply_mask(x: _Float, mask: _Float, time_major: bool = False) -> _Float: ...
def add_on_live_steps(out: _Float, x: _Float, sequence_length: _Lengths = None, time_major: bool = False) -> None: ...

# ---- Dense (bind_dense.cpp) ----
def dense_forward(x: _Float, kernel: _Float, bias: _Float) -> _Float: ...
def dense_backward(x: _Float, kernel: _Float, dy: _Float) -> tuple[_Float, _Float, _Float]: ...

# ---- sequence_loss (bind_loss.cpp) ----
def sequence_loss_forward(
    logits: _Float,
    targets: _Int,
    weights: _Float,
    average_across_timesteps: bool = True,
    average_across_batch: bool = True,
    sum_over_timesteps: bool = False,
    sum_over_batch: bool = False,
    tape: Optional[_Tape] = None,
) -> _Float: ...
def sequence_loss_backward(tape: _Tape, d_loss: _Float) -> _Float: ...

# ---- optimizers (bind_optim.cpp): variables updated in place ----
def adam_apply(
    variables: Sequence[_Float],
    gradients: Sequence[Optional[_Float]],
    m: Sequence[Optional[_Float]],
    v: Sequence[Optional[_Float]],
    learning_rate: float,
    beta1: float,
    beta2: float,
    epsilon: float,
    step: int,
) -> None: ...
def sgd_apply(variables: Sequence[_Float], gradients: Sequence[Optional[_Float]], learning_rate: float) -> None: ...
def clip_by_global_norm(
    tensors: Sequence[Optional[_Float]], clip_norm: float
) -> tuple[list[Optional[_Float]], _Float]: ...

# ---- generation (bind_generate.cpp) ----
def generate(
    layers: Sequence[tuple[str, tuple[Any, ...], bool]],
    embedding: Optional[_Float],
    head_kernel: _Float,
    head_bias: _Float,
    first: NDArray[np.int32],
    state: Sequence[_Float],
    length: int,
    temperature: float,
    top_k: int,
    greedy: bool,
    seed: int,
) -> tuple[NDArray[np.int64]]: ...
def uniforms(seed: int, n: int, first: int = 0) -> NDArray[np.float64]: ...

# ---- row ops (bind_ops.cpp): arrays [..., C] flattened to rows ----
def softmax(logits: _Float) -> _Float: ...
def softmax_backward(y: _Float, dy: _Float) -> _Float: ...
@overload
def softmax_cross_entropy(logits: _Float, labels: _Float, with_probs: Literal[False] = False) -> _Float: ...
@overload
def softmax_cross_entropy(logits: _Float, labels: _Float, with_probs: Literal[True]) -> tuple[_Float, _Float]: ...
@overload
def softmax_cross_entropy(logits: _Float, labels: _Float, with_probs: bool) -> _Float | tuple[_Float, _Float]: ...
def softmax_cross_entropy_backward(labels: _Float, probs: _Float, d_loss: _Float) -> _Float: ...
@overload
def sparse_softmax_cross_entropy(logits: _Float, labels: _Int, with_probs: Literal[False] = False) -> _Float: ...
@overload
def sparse_softmax_cross_entropy(logits: _Float, labels: _Int, with_probs: Literal[True]) -> tuple[_Float, _Float]: ...
@overload
def sparse_softmax_cross_entropy(logits: _Float, labels: _Int, with_probs: bool) -> _Float | tuple[_Float, _Float]: ...
def sparse_softmax_cross_entropy_backward(labels: _Int, probs: _Float, d_loss: _Float) -> _Float: ...
def sum_by_nonzero_weights(values: _Float, weights: _Float) -> _Float: ...
def sum_by_nonzero_weights_backward(weights: _Float, d_loss: _Float) -> _Float: ...
def mean_squared_error(predictions: _Float, labels: _Float, weights: _Float) -> _Float: ...
def mean_squared_error_backward(predictions: _Float, labels: _Float, weights: _Float, d_loss: _Float) -> _Float: ...
def embedding_lookup(params: _Float, ids: _Int) -> _Float: ...
def embedding_lookup_backward(ids: _Int, dy: _Float, vocab_size: int) -> _Float: ...
def last_output(outputs: _Float, sequence_length: _Lengths = None, time_major: bool = False) -> _Float: ...
def last_output_backward(
    d_last: _Float, sequence_length: _Lengths = None, steps: int = 0, time_major: bool = False
) -> _Float: ...
