"""Conversion between rnnkit cells and PyTorch's single-layer recurrent modules.

    nn.LSTM  <->  BasicLSTMCell / LSTMCell (proj_size <-> num_proj)
    nn.RNN   <->  BasicRNNCell (tanh or relu)
    nn.GRU   <->  GRUCell(reset_after=True)

Layouts. TF keeps one kernel [D + R, nH] over the concatenated [x, h] with the
gates as column blocks; torch keeps weight_ih [nH, D] and weight_hh [nH, R]
with the gates as row blocks, so each is a transposed slice of TF's kernel.
The LSTM gate order is i, j, f, o in TF and i, f, g, o in torch (j is g).
TF adds `forget_bias` to f at call time and has one bias where torch has two
(bias_ih + bias_hh): `to_torch` puts the TF bias into bias_ih and
`forget_bias` into bias_hh's f block (zeros elsewhere), `from_torch` sums
the two and subtracts `forget_bias` from f. Keeping forget_bias out of
bias_ih makes rnnkit -> torch -> rnnkit give back the very same bits
(b + 1 - 1 would round b in float32).

torch is imported only inside these functions, so rnnkit works without it.
"""

from __future__ import annotations

from typing import Any, Union

import numpy as np

from .cells.base import RNNCell
from .cells.basic_rnn import BasicRNNCell
from .cells.gru import GRUCell
from .cells.lstm import BasicLSTMCell, LSTMCell
from .rnn import RNN

__all__ = ["to_torch", "from_torch"]

# torch's LSTM row block k is TF's column block _LSTM_TORCH_FROM_TF[k] (i, f, g, o <- i, f, j, o);
# the permutation is its own inverse, so it also gives TF's blocks from torch's.
_LSTM_TORCH_FROM_TF = (0, 2, 1, 3)
_F = 1  # the forget gate's block in torch's order


def _torch():
    try:
        import torch
    except ImportError as e:
        raise ImportError("rnnkit.interop needs PyTorch (pip install torch); the rest of rnnkit works without it") from e
    return torch


def _blocks(a, order, size):
    """The row blocks of `a` (each `size` rows) in `order`."""
    return np.concatenate([a[k * size:(k + 1) * size] for k in order], axis=0)


def _torch_dtype(torch, dtype):
    return {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[np.dtype(dtype)]


# ---- rnnkit -> torch ------------------------------------------------------------------------------
def _empty(module_class, *args, **kwargs):
    """The module with uninitialised CPU parameters: built on the meta device,
    so that converting neither spends time on nor draws from torch's RNG."""
    return module_class(*args, device="meta", **kwargs).to_empty(device="cpu")


def _check_convertible_lstm(cell):
    problems = []
    if cell.use_peepholes:
        problems.append("use_peepholes=True (torch.nn.LSTM has no peephole connections)")
    if cell.cell_clip is not None:
        problems.append(f"cell_clip={cell.cell_clip} (torch.nn.LSTM does not clip its cell state)")
    if cell.proj_clip is not None:
        problems.append(f"proj_clip={cell.proj_clip} (torch.nn.LSTM does not clip its projection)")
    if cell.activation != "tanh":
        problems.append(f"activation={cell.activation!r} (torch.nn.LSTM uses tanh)")
    if cell.num_proj is not None and cell.num_proj >= cell.num_units:
        problems.append(f"num_proj={cell.num_proj} >= num_units={cell.num_units} "
                        f"(torch.nn.LSTM needs proj_size < hidden_size)")
    if problems:
        raise ValueError(f"{type(cell).__name__} with {'; '.join(problems)} has no torch.nn.LSTM equivalent")


def to_torch(cell: Union[RNNCell, RNN]) -> Any:
    """A torch module computing the same function as `cell`.

    Args:
      cell: a built BasicRNNCell (tanh or relu), BasicLSTMCell, LSTMCell
        (no peepholes or clips, tanh, num_proj < num_units) or
        GRUCell(reset_after=True); an RNN layer stands for its cell.
    Returns:
      torch.nn.RNN / nn.LSTM / nn.GRU with one layer, batch_first=True, on the
      CPU, in the cell's dtype. Its outputs and final states (h_n, and c_n for
      LSTM) equal dynamic_rnn's outputs and final state.
    Raises:
      ValueError: options with no torch equivalent, or an unbuilt cell.
      TypeError: anything that is not one of those cells.
    """
    torch = _torch()
    if isinstance(cell, RNN):
        cell = cell.cell
    if not isinstance(cell, (BasicRNNCell, LSTMCell, GRUCell)):
        raise TypeError(
            "to_torch converts a BasicRNNCell, BasicLSTMCell, LSTMCell or GRUCell(reset_after=True), "
            f"got {type(cell).__name__}"
        )
    if not cell.built:
        raise ValueError(f"to_torch needs a built {type(cell).__name__}: construct it with input_depth=... "
                         f"or run it once on inputs")
    D, H, v = cell.input_depth, cell.num_units, cell.variables
    dtype = _torch_dtype(torch, cell.dtype)
    params: dict[str, Any] = {}
    if isinstance(cell, LSTMCell):
        _check_convertible_lstm(cell)
        P = cell.num_proj or 0
        module = _empty(torch.nn.LSTM, D, H, batch_first=True, proj_size=P, dtype=dtype)
        kernel_t = v["kernel"].T  # [4H, D + R], rows in TF's gate order
        params["weight_ih_l0"] = _blocks(kernel_t[:, :D], _LSTM_TORCH_FROM_TF, H)
        params["weight_hh_l0"] = _blocks(kernel_t[:, D:], _LSTM_TORCH_FROM_TF, H)
        params["bias_ih_l0"] = _blocks(v["bias"], _LSTM_TORCH_FROM_TF, H)
        bias_hh = np.zeros(4 * H, cell.dtype)
        bias_hh[_F * H:(_F + 1) * H] = cell.forget_bias
        params["bias_hh_l0"] = bias_hh
        if P:
            params["weight_hr_l0"] = v["projection/kernel"].T  # [P, H]
    elif isinstance(cell, BasicRNNCell):
        if cell.activation not in ("tanh", "relu"):
            raise ValueError(f"BasicRNNCell with activation={cell.activation!r} has no torch.nn.RNN equivalent "
                             f"(its nonlinearity is 'tanh' or 'relu')")
        module = _empty(torch.nn.RNN, D, H, nonlinearity=cell.activation, batch_first=True,
                                          dtype=dtype)
        params["weight_ih_l0"] = v["kernel"][:D].T
        params["weight_hh_l0"] = v["kernel"][D:].T
        params["bias_ih_l0"] = v["bias"]
        params["bias_hh_l0"] = np.zeros(H, cell.dtype)
    else:  # GRUCell
        if not cell.reset_after:
            raise ValueError(
                "GRUCell(reset_after=False) is TF1's GRU, which applies the reset gate before the candidate's "
                "matmul; torch.nn.GRU applies it after (a different function). Only GRUCell(reset_after=True) "
                "converts"
            )
        if cell.activation != "tanh":
            raise ValueError(f"GRUCell with activation={cell.activation!r} has no torch.nn.GRU equivalent "
                             f"(torch.nn.GRU uses tanh)")
        module = _empty(torch.nn.GRU, D, H, batch_first=True, dtype=dtype)
        gates_t = v["gates/kernel"].T  # [2H, D + H], rows r then u (torch's r then z)
        params["weight_ih_l0"] = np.concatenate([gates_t[:, :D], v["candidate/input/kernel"].T])
        params["weight_hh_l0"] = np.concatenate([gates_t[:, D:], v["candidate/hidden/kernel"].T])
        params["bias_ih_l0"] = np.concatenate([v["gates/bias"], v["candidate/input/bias"]])
        params["bias_hh_l0"] = np.concatenate([np.zeros(2 * H, cell.dtype), v["candidate/hidden/bias"]])
    with torch.no_grad():
        for name, value in params.items():
            getattr(module, name).copy_(torch.from_numpy(np.ascontiguousarray(value)))
    return module


# ---- torch -> rnnkit ------------------------------------------------------------------------------
def _check_convertible_module(module, torch):
    name = type(module).__name__
    if module.num_layers != 1:
        raise ValueError(f"{name} with num_layers={module.num_layers}: from_torch converts single-layer modules "
                         f"(stack converted layers in a MultiRNNCell)")
    if module.bidirectional:
        raise ValueError(f"{name} with bidirectional=True: from_torch converts unidirectional modules "
                         f"(convert each direction and use rnnkit.Bidirectional)")
    if module.dropout:
        raise ValueError(f"{name} with dropout={module.dropout}: rnnkit has no dropout between layers")
    if not module.bias:
        raise ValueError(f"{name} with bias=False: rnnkit cells always have biases")
    dtypes = {p.dtype for p in module.parameters()}
    if len(dtypes) != 1 or not dtypes <= {torch.float32, torch.float64}:
        shown = ", ".join(sorted(str(d) for d in dtypes))
        raise TypeError(f"{name}'s parameters must all be torch.float32 or all torch.float64, got {shown} "
                        f"(convert with module.float() or module.double())")
    return np.float32 if dtypes == {torch.float32} else np.float64


def from_torch(module: Any, forget_bias: float = 1.0) -> RNNCell:
    """A built rnnkit cell computing the same function as a torch module.

    Args:
      module: a single-layer, unidirectional torch.nn.LSTM, nn.RNN or nn.GRU
        with biases and no dropout (batch_first either way).
      forget_bias: the LSTM cell's forget_bias; it is subtracted from the f
        bias so that the function stays the same (ignored for RNN and GRU).
    Returns:
      BasicLSTMCell (LSTMCell(num_proj=P) when proj_size=P > 0), BasicRNNCell
      or GRUCell(reset_after=True), with input_depth set and the module's
      dtype (float32 or float64).
    Raises:
      TypeError: another kind of module, or non-float32/64 parameters.
      ValueError: num_layers > 1, bidirectional, dropout or bias=False.
    """
    torch = _torch()
    nn = torch.nn
    if not isinstance(module, (nn.LSTM, nn.RNN, nn.GRU)):
        raise TypeError(f"from_torch converts torch.nn.LSTM, nn.RNN and nn.GRU, got {type(module).__name__}")
    dtype = _check_convertible_module(module, torch)
    p = {name: t.detach().cpu().numpy() for name, t in module.named_parameters()}
    D, H = module.input_size, module.hidden_size
    w_ih, w_hh, b_ih, b_hh = p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"], p["bias_hh_l0"]
    cell: RNNCell
    if isinstance(module, nn.LSTM):
        P = module.proj_size
        lstm: LSTMCell
        if P:
            lstm = LSTMCell(H, num_proj=P, forget_bias=forget_bias, dtype=dtype, input_depth=D)
            lstm.variables["projection/kernel"] = p["weight_hr_l0"].T
        else:
            lstm = BasicLSTMCell(H, forget_bias=forget_bias, dtype=dtype, input_depth=D)
        b_hh = b_hh.copy()
        b_hh[_F * H:(_F + 1) * H] -= dtype(lstm.forget_bias)  # exact when b_hh holds just forget_bias
        kernel_t = np.concatenate([w_ih, w_hh], axis=1)  # [4H, D + R], torch's gate order
        lstm.variables["kernel"] = _blocks(kernel_t, _LSTM_TORCH_FROM_TF, H).T
        lstm.variables["bias"] = _blocks(b_ih + b_hh, _LSTM_TORCH_FROM_TF, H)
        cell = lstm
    elif isinstance(module, nn.RNN):
        activation = {"RNN_TANH": "tanh", "RNN_RELU": "relu"}[module.mode]
        cell = BasicRNNCell(H, activation=activation, dtype=dtype, input_depth=D)
        cell.variables["kernel"] = np.concatenate([w_ih, w_hh], axis=1).T
        cell.variables["bias"] = b_ih + b_hh
    else:  # GRU: torch rows r, z, n; rnnkit's u is z and its candidate n
        cell = GRUCell(H, reset_after=True, dtype=dtype, input_depth=D)
        two = 2 * H
        cell.variables["gates/kernel"] = np.concatenate([w_ih[:two], w_hh[:two]], axis=1).T
        cell.variables["gates/bias"] = b_ih[:two] + b_hh[:two]
        cell.variables["candidate/input/kernel"] = w_ih[two:].T
        cell.variables["candidate/input/bias"] = b_ih[two:]
        cell.variables["candidate/hidden/kernel"] = w_hh[two:].T
        cell.variables["candidate/hidden/bias"] = b_hh[two:]
    return cell
