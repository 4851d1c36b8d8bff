"""Generation from a token model: `Sequential.generate`.

A token model is [Embedding(V, E)], one or more RNN layers, and a Dense(V)
head: token ids in, logits over the same V ids out. The prime runs through
the model in one forward per layer (the sequence kernels), then the whole
generation loop runs in one C++ call with the GIL released: per token the
cell stack's single step (the cells' own kernels, as `cell(x, state)`), the
head, the softmax with temperature, the top-k cut and the draw
(cpp/include/rnnkit/generate.hpp).

The draw, exactly (a plain Python loop over `cell(x, state)`, `Dense` and
`rnnkit.random.uniforms` reproduces it; tests/test_generate.py does):
  u      = uniforms(seed, L * S)[t * S + s] for sample s at step t (S samples)
  kept   = every id, or with top_k the k ids of largest logit (ties: lower id first)
  p_i    = exp((float64(z_i) - max z) / temperature) for kept ids, 0 for the others
  cdf    = the running sum of p in float64, in id order
  id     = the first i with cdf_i > u * cdf[-1] (np.searchsorted(cdf, u * cdf[-1], "right"));
           should rounding leave none, the last id with p_i > 0
  greedy = the first id of largest logit.
The probabilities are float64 from the float logits, so two implementations
differ in an id only if u * cdf[-1] falls within float64 rounding of a
boundary of the cdf.
"""

from __future__ import annotations

import secrets
from typing import Any, Optional, Union

import numpy as np

from . import _core
from ._checks import as_ints, non_negative_int, positive_int, shape_str
from .cells.base import RNNCell
from .cells.multi import MultiRNNCell
from .cells.wrappers import DropoutWrapper, ResidualWrapper
from .layers import Dense, Embedding
from .random import check_seed
from .rnn import RNN, _run_forward
from ._typing import ArrayLike, NDArray, State


def step_layers(cell: RNNCell, residual: bool = False) -> list[tuple[str, tuple[Any, ...], bool]]:
    """The C++ step layers of a cell: [(kind, weight args, residual)], in the
    order of its flat state. DropoutWrapper is the identity at inference."""
    if isinstance(cell, MultiRNNCell):
        if residual:
            raise ValueError("generation does not support a ResidualWrapper around a MultiRNNCell; "
                             "wrap each layer instead")
        return [layer for c in cell.cells for layer in step_layers(c)]
    if isinstance(cell, ResidualWrapper):
        if residual:
            raise ValueError("generation does not support a ResidualWrapper around a ResidualWrapper")
        return step_layers(cell.cell, True)
    if isinstance(cell, DropoutWrapper):
        return step_layers(cell.cell, residual)
    if not hasattr(cell, "_step_cell"):
        raise TypeError(f"generation does not support the cell {type(cell).__name__}")
    kind, args = cell._step_cell()
    return [(kind, args, residual)]


class _TokenModel:
    """The parts of a Sequential token model, checked: embedding (or None),
    RNN layers, Dense head, vocabulary size V."""

    def __init__(self, model):
        layers = list(getattr(model, "layers", []))
        self.embedding = None
        if layers and isinstance(layers[0], Embedding):
            self.embedding = layers.pop(0)
        if len(layers) < 2 or not isinstance(layers[-1], Dense) or not all(isinstance(l, RNN) for l in layers[:-1]):
            names = ", ".join(type(l).__name__ for l in model.layers)
            raise ValueError(
                "generate needs a token model: [Embedding(V, E)], one or more RNN layers, then Dense(V); "
                f"got [{names}]")
        self.rnns, self.head = layers[:-1], layers[-1]
        first = self.rnns[0].cell
        if self.embedding is not None:
            table = self.embedding.variables["embedding"]
            self.vocab = table.shape[0]
            first.build(table.shape[1])
        else:
            if first.input_depth is None:
                raise ValueError("generate feeds token ids to the first cell, which needs its vocabulary: "
                                 "construct it with input_depth=<vocabulary size> (or put an Embedding first)")
            self.vocab = first.input_depth
        for prev, layer in zip(self.rnns, self.rnns[1:]):
            layer.cell.build(prev.cell.output_size)
        self.dtype = first.dtype
        self.head.build(self.rnns[-1].cell.output_size)
        if self.head.units != self.vocab:
            raise ValueError(
                f"generate needs the last layer to give logits over the input vocabulary: the model takes ids in "
                f"[0, {self.vocab}) but its Dense head has {self.head.units} units")
        embedding = [] if self.embedding is None else [self.embedding]
        for layer in embedding + [self.head] + [r.cell for r in self.rnns]:
            if layer.dtype != self.dtype:
                raise TypeError(f"every layer must have dtype {self.dtype} for generation, got {layer.dtype} "
                                f"in {type(layer).__name__}")
        self.steps = [s for r in self.rnns for s in step_layers(r.cell)]

    def flat_initial(self, initial_state):
        """The flat state per RNN layer for `initial_state` (None: zeros, 1 row)."""
        if initial_state is None:
            return [[np.zeros((1, w), self.dtype) for w in r.cell._state_widths()] for r in self.rnns]
        states = [initial_state] if len(self.rnns) == 1 else initial_state
        if len(self.rnns) > 1 and (not isinstance(states, (tuple, list)) or len(states) != len(self.rnns)):
            raise TypeError(f"initial_state must hold one state per RNN layer ({len(self.rnns)}), "
                            f"got {type(initial_state).__name__}")
        flat = []
        for r, s in zip(self.rnns, states):
            first = s
            while isinstance(first, (tuple, list)):
                first = first[0] if len(first) else None
            rows = np.shape(first)[0] if first is not None and np.ndim(first) == 2 else 1
            flat.append([np.array(a, copy=True) for a in r.cell._flatten_state(s, rows, name="initial_state")])
        return flat


def _prime_ids(prime, vocab, num_samples):
    ids = np.asarray(prime)
    if ids.ndim not in (1, 2):
        raise ValueError(f"prime must be token ids of rank 1 [P] (or 2 [num_samples, P]), got shape {shape_str(ids.shape)}")
    if ids.size == 0:
        raise ValueError("prime must hold at least one token id: the first generated token is drawn from "
                         "the model's output after the prime's last token")
    ids = as_ints(ids, "prime")
    if ids.ndim == 2 and num_samples not in (1, ids.shape[0]):
        raise ValueError(f"prime has {ids.shape[0]} rows (one per sample) but num_samples is {num_samples}")
    bad = (ids < 0) | (ids >= vocab)
    if bad.any():
        i = tuple(int(k) for k in np.unravel_index(int(np.argmax(bad)), ids.shape))
        raise ValueError(f"prime token ids must lie in [0, {vocab}), got {int(ids[i])} at index {list(i)}")
    return np.ascontiguousarray(ids.reshape(-1, ids.shape[-1]), dtype=np.int32)


def _rows(arrays, n):
    """Each [1, w] array repeated to n rows (fresh arrays: generation writes them)."""
    return [np.repeat(a, n, axis=0) if a.shape[0] == 1 and n > 1 else np.array(a, copy=True) for a in arrays]


def generate(model: Any, prime: ArrayLike, length: int, *, temperature: float = 1.0, top_k: Optional[int] = None,
             greedy: bool = False, seed: Optional[int] = None, num_samples: int = 1, initial_state: State = None,
             return_state: bool = False) -> Union[NDArray[np.int64], tuple[NDArray[np.int64], State]]:
    """Generates token ids from a token model (see the module docstring).

    Args:
      model: a Sequential of [Embedding(V, E)], RNN layers, Dense(V); or
        RNN layers whose first cell takes the ids (input_depth=V).
      prime: token ids [P] (P >= 1) run through the model first, or [S, P],
        one prime per sample. All but the last token go through one forward
        per layer; the last is the first token of the generation loop.
      length: tokens to generate per sample (>= 0).
      temperature: > 0; the logits are divided by it before the softmax.
      top_k: None (all ids) or an int in [1, V]: draw among the k most likely.
      greedy: take the most likely id at every step (no draw).
      seed: an int in [0, 2**64) for the draws; None picks one at random.
      num_samples: S, independent samples generated as one batch.
      initial_state: the model's state before the prime (one RNN layer: its
        cell's state; several: a tuple, one per layer), with 1 or S rows;
        None: zeros.
      return_state: also return the final state.
    Returns:
      int64 ids [S, length]; with return_state, (ids, final_state). The final
      state (also `model.final_state`) is the state after the last token fed,
      that is before the last generated one: `generate(ids[:, -1:], n,
      initial_state=final_state)` continues where this call stopped.
    """
    parts = _TokenModel(model)
    length = non_negative_int(length, "length")
    num_samples = positive_int(num_samples, "num_samples")
    greedy = bool(greedy)
    temperature = float(temperature)
    if not greedy and not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}; for the most likely token at every step "
                         "use greedy=True")
    if not np.isfinite(temperature) and not greedy:
        raise ValueError(f"temperature must be finite, got {temperature}")
    if top_k is not None:
        top_k = positive_int(top_k, "top_k")
        if top_k > parts.vocab:
            raise ValueError(f"top_k must lie in [1, {parts.vocab}] (the vocabulary size), got {top_k}")
    seed = secrets.randbits(64) if seed is None else check_seed(seed)

    ids = _prime_ids(prime, parts.vocab, num_samples)
    samples = ids.shape[0] if ids.shape[0] > 1 else num_samples
    flat = parts.flat_initial(initial_state)
    state_rows = flat[0][0].shape[0]
    if state_rows not in (1, samples):
        raise ValueError(f"initial_state must have 1 or {samples} rows (one per sample), got {state_rows}")
    # The prime runs once with one row unless it, or the state, differs per sample.
    batch = samples if max(ids.shape[0], state_rows) > 1 else 1
    ids = np.repeat(ids, batch, axis=0) if ids.shape[0] != batch else ids
    flat = [_rows(f, batch) for f in flat]
    if ids.shape[1] > 1:
        x = ids[:, :-1]
        if parts.embedding is not None:
            x = parts.embedding(x)
        for i, layer in enumerate(parts.rnns):
            _, x, final = _run_forward(layer.cell, x, None, layer.cell._pack_state(flat[i]), False, None)
            flat[i] = final
    flat = [_rows(f, samples) for f in flat]
    first = np.ascontiguousarray(np.repeat(ids[:, -1], samples // batch))

    state = [a for f in flat for a in f]
    embedding = None if parts.embedding is None else parts.embedding.variables["embedding"]
    (out,) = _core.generate(parts.steps, embedding, parts.head.variables["kernel"], parts.head.variables["bias"],
                            first, state, length, temperature, top_k or 0, greedy, seed)
    finals: list[State] = []
    k = 0
    for f in flat:
        finals.append(parts.rnns[len(finals)].cell._pack_state(state[k:k + len(f)]))
        k += len(f)
    model.final_state = finals[0] if len(finals) == 1 else tuple(finals)
    return (out, model.final_state) if return_state else out
