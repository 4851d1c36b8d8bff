"""rnnkit: TensorFlow 1.x's recurrent API on numpy, with Eigen C++ kernels."""

from . import _core
from .cells.base import RNNCell
from .cells.basic_rnn import BasicRNNCell
from .cells.gru import GRUCell
from .cells.lstm import BasicLSTMCell, LSTMCell, LSTMStateTuple
from .rnn import RNN, dynamic_rnn

__version__ = "0.1.0"


def set_num_threads(n):
    """Threads used by every kernel (OpenMP loops and Eigen's GEMM)."""
    _core.set_num_threads(int(n))


def get_num_threads():
    return _core.get_num_threads()


__all__ = [
    "RNNCell", "BasicRNNCell", "GRUCell", "BasicLSTMCell", "LSTMCell", "LSTMStateTuple",
    "RNN", "dynamic_rnn", "set_num_threads", "get_num_threads",
]
