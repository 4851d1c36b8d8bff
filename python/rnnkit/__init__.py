"""rnnkit: TensorFlow 1.x's recurrent API on numpy, with Eigen C++ kernels."""

import os as _os

from . import _checks, _core, initializers
from .cells.base import RNNCell
from .cells.basic_rnn import BasicRNNCell
from .cells.gru import GRUCell
from .cells.lstm import BasicLSTMCell, LSTMCell, LSTMStateTuple
from .cells.layer_norm_lstm import LayerNormBasicLSTMCell
from .cells.multi import MultiRNNCell
from .cells.wrappers import DropoutWrapper, ResidualWrapper
from .bidirectional import Bidirectional, bidirectional_dynamic_rnn, static_bidirectional_rnn
from .ops import one_hot
from .layers import Dense, Embedding
from .losses import MeanSquaredError, SequenceLoss, SoftmaxCrossEntropy, mean_squared_error, sequence_loss
from . import losses, nn
from .nn import (embedding_lookup, softmax, softmax_cross_entropy_with_logits, softmax_cross_entropy_with_logits_v2,
                 sparse_softmax_cross_entropy_with_logits)
from .optimizers import AdamOptimizer, GradientDescentOptimizer, clip_by_global_norm
from .rnn import RNN, dynamic_rnn, last_output, static_rnn
from .sequential import Sequential
from .callbacks import Callback, EarlyStopping, History, LambdaCallback, ModelCheckpoint
from .checkpoint import checkpoint_names, load, load_tf_checkpoint, save, save_tf_checkpoint
from .tf_checkpoint import list_tf_checkpoint
from . import interop  # torch itself is imported only when a conversion runs
from . import onnx  # rnnkit.onnx.export; imports the onnx package only when called

__version__ = "0.1.0"


def set_num_threads(n: int) -> None:
    """Threads used by every kernel (OpenMP loops and the GEMMs), in every
    thread of the process, including threads started later or earlier.

    n must be an int in [1, max_num_threads()]: more threads than the
    machine can run only wait for each other. Results are bit-identical for
    every n."""
    _core.set_num_threads(_checks.positive_int(n, "set_num_threads: n"))


def get_num_threads() -> int:
    """Threads used by every kernel on a quiet machine (see set_num_threads
    and set_adaptive_threads)."""
    return _core.get_num_threads()


def set_adaptive_threads(on: bool) -> None:
    """On (the default), a kernel starts get_num_threads() threads less one
    per CPU that other processes kept busy over the last 0.1 s (at least
    one): on a machine shared with a busy process, threads that wait for a
    core they cannot get make a kernel slower than one thread would.
    Results are bit-identical either way; off, every kernel starts
    get_num_threads() threads. RNNKIT_ADAPTIVE_THREADS=0 in the environment
    turns it off at import."""
    if not isinstance(on, bool):
        raise TypeError(f"set_adaptive_threads: on must be a bool, got {type(on).__name__}")
    _core.set_adaptive_threads(on)


if _os.environ.get("RNNKIT_ADAPTIVE_THREADS") == "0":
    _core.set_adaptive_threads(False)


def adaptive_threads() -> bool:
    """Whether kernels leave busy CPUs to other processes (set_adaptive_threads)."""
    return _core.adaptive_threads()


def threads_in_use() -> int:
    """The threads the next kernel starts: get_num_threads(), or fewer while
    other processes keep some of this process's CPUs busy."""
    return _core.threads_in_use()


def max_num_threads() -> int:
    """The largest thread count set_num_threads accepts: OpenMP's thread
    limit (OMP_THREAD_LIMIT), and at most 4 per processor or 64, whichever
    is more."""
    return _core.max_num_threads()


def set_result_cache_limit(nbytes: int) -> None:
    """Freed result arrays of 64 KiB or more keep their memory for the next
    result of the same size, up to `nbytes` in all (64 MiB by default), so
    that a training step does not fault fresh pages in; 0 turns this off and
    frees what is kept. `nbytes` is an int in [0, 2**63 - 1]."""
    nbytes = _checks.integer(nbytes, "nbytes")
    if not 0 <= nbytes < 2**63:
        raise ValueError(f"nbytes must lie in [0, 2**63 - 1], got {nbytes}")
    _core._result_cache(nbytes)


__all__ = [
    "RNNCell", "BasicRNNCell", "BasicLSTMCell", "LSTMCell", "LSTMStateTuple", "LayerNormBasicLSTMCell", "GRUCell", "MultiRNNCell",
    "ResidualWrapper", "DropoutWrapper", "Bidirectional", "bidirectional_dynamic_rnn",
    "RNN", "dynamic_rnn", "Sequential", "one_hot", "set_num_threads", "get_num_threads", "max_num_threads", "set_adaptive_threads",
    "adaptive_threads", "threads_in_use", "set_result_cache_limit",
    "Dense", "SequenceLoss", "sequence_loss",
    "Embedding", "SoftmaxCrossEntropy", "MeanSquaredError", "mean_squared_error", "losses", "nn", "initializers",
    "softmax", "softmax_cross_entropy_with_logits", "softmax_cross_entropy_with_logits_v2",
    "sparse_softmax_cross_entropy_with_logits", "embedding_lookup", "last_output", "static_rnn",
    "static_bidirectional_rnn",
    "AdamOptimizer", "GradientDescentOptimizer", "clip_by_global_norm",
    "save", "load", "load_tf_checkpoint", "save_tf_checkpoint", "list_tf_checkpoint", "checkpoint_names",
    "Callback", "History", "ModelCheckpoint", "EarlyStopping", "LambdaCallback",
]
