"""Plain numpy references, written from the spec one step at a time, with no
attempt at speed. The kernels are checked against these."""

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


ACT = {"tanh": np.tanh, "relu": lambda x: np.maximum(x, 0), "sigmoid": sigmoid, "linear": lambda x: x}


def basic_rnn_step(v, x, state, activation="tanh"):
    (h,) = state
    h = ACT[activation](np.concatenate([x, h], 1) @ v["kernel"] + v["bias"])
    return h, (h,)


def lstm_step(v, x, state, forget_bias=1.0, use_peepholes=False, cell_clip=None, num_proj=None,
              proj_clip=None, activation="tanh"):
    c, m = state
    act = ACT[activation]
    z = np.concatenate([x, m], 1) @ v["kernel"] + v["bias"]
    i, j, f, o = np.split(z, 4, axis=1)
    if use_peepholes:
        c_new = sigmoid(f + forget_bias + v["w_f_diag"] * c) * c + sigmoid(i + v["w_i_diag"] * c) * act(j)
    else:
        c_new = sigmoid(f + forget_bias) * c + sigmoid(i) * act(j)
    if cell_clip is not None:
        c_new = np.clip(c_new, -cell_clip, cell_clip)
    if use_peepholes:
        m_new = sigmoid(o + v["w_o_diag"] * c_new) * act(c_new)
    else:
        m_new = sigmoid(o) * act(c_new)
    if num_proj is not None:
        m_new = m_new @ v["projection/kernel"]
        if proj_clip is not None:
            m_new = np.clip(m_new, -proj_clip, proj_clip)
    return m_new, (c_new, m_new)


def gru_step(v, x, state, reset_after=False, activation="tanh"):
    """TF1's GRUCell, or (reset_after) the PyTorch / Keras 3 / cuDNN variant."""
    (h,) = state
    act = ACT[activation]
    H = h.shape[1]
    gates = sigmoid(np.concatenate([x, h], 1) @ v["gates/kernel"] + v["gates/bias"])
    r, u = gates[:, :H], gates[:, H:]
    if reset_after:
        c = act(x @ v["candidate/input/kernel"] + v["candidate/input/bias"]
                + r * (h @ v["candidate/hidden/kernel"] + v["candidate/hidden/bias"]))
    else:
        c = act(np.concatenate([x, r * h], 1) @ v["candidate/kernel"] + v["candidate/bias"])
    h = u * h + (1.0 - u) * c
    return h, (h,)


def dynamic_rnn(step, x, state, sequence_length=None, time_major=False):
    """TF's dynamic_rnn over a step function: zero outputs and carried state
    past each row's length. x: [B, T, D] (or [T, B, D]); state: tuple of [B, w]."""
    if time_major:
        x = np.swapaxes(x, 0, 1)
    B, T = x.shape[:2]
    lengths = np.full(B, T) if sequence_length is None else np.asarray(sequence_length)
    outputs = []
    for t in range(T):
        out, new_state = step(x[:, t], state)
        live = (t < lengths)[:, None]
        outputs.append(np.where(live, out, 0))
        state = tuple(np.where(live, n, s) for n, s in zip(new_state, state))
    out = np.stack(outputs, 1) if T else np.zeros((B, 0, state[-1].shape[1]))  # output width = last state's
    if time_major:
        out = np.swapaxes(out, 0, 1)
    return out, state


def dense(x, kernel, bias):
    """x [..., D] @ kernel [D, U] + bias [U]."""
    return x @ kernel + bias


def sequence_loss(logits, targets, weights):
    """TF 1.15's sequence_loss with its default flags: Σ(ce·w) / Σw, 0 when Σw = 0."""
    z = logits - logits.max(axis=-1, keepdims=True) if logits.size else logits
    log_softmax = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    ce = -np.take_along_axis(log_softmax, targets[..., None].astype(np.intp), axis=-1)[..., 0]
    total = weights.sum()
    return (ce * weights).sum() / total if total != 0 else 0.0


def adam_step(var, grad, m, v, t, lr, beta1, beta2, epsilon):
    """One step of TF1's Adam (the "epsilon hat" form). Returns (var, m, v)."""
    lr_t = lr * np.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
    m = m + (grad - m) * (1 - beta1)
    v = v + (grad * grad - v) * (1 - beta2)
    return var - lr_t * m / (np.sqrt(v) + epsilon), m, v


def clip_by_global_norm(tensors, clip_norm):
    """tf.clip_by_global_norm: ([t · clip_norm / max(gn, clip_norm)], gn)."""
    norm = np.sqrt(sum(float((t.astype(np.float64) ** 2).sum()) for t in tensors))
    if not np.isfinite(norm):
        return [np.full(t.shape, np.nan) for t in tensors], norm
    return [t * (clip_norm / max(norm, clip_norm)) for t in tensors], norm


def layer_normalize(v, gamma, beta, epsilon=1e-12):
    """tf.contrib.layers.layer_norm over the last axis: the biased variance, epsilon 1e-12."""
    mean = v.mean(axis=-1, keepdims=True)
    var = ((v - mean) ** 2).mean(axis=-1, keepdims=True)
    return (v - mean) / np.sqrt(var + epsilon) * gamma + beta


def layer_norm_lstm_step(v, x, state, forget_bias=1.0, layer_norm=True, activation="tanh", dropout_mask=None):
    """TF1's tf.contrib.rnn.LayerNormBasicLSTMCell: i, j, f, o and the new c
    layer-normalised (gamma and beta of "input", "transform", "forget",
    "output", "state"); the bias only without layer norm; dropout_mask [B, H]
    multiplies act(j)."""
    c, h = state
    act = ACT[activation]

    def norm(u, name):
        return layer_normalize(u, v[f"{name}/gamma"], v[f"{name}/beta"]) if layer_norm else u

    z = np.concatenate([x, h], 1) @ v["kernel"]
    if not layer_norm:
        z = z + v["bias"]
    i, j, f, o = np.split(z, 4, axis=1)
    i, j, f, o = norm(i, "input"), norm(j, "transform"), norm(f, "forget"), norm(o, "output")
    g = act(j) if dropout_mask is None else act(j) * dropout_mask
    c_new = norm(c * sigmoid(f + forget_bias) + sigmoid(i) * g, "state")
    h_new = act(c_new) * sigmoid(o)
    return h_new, (c_new, h_new)
