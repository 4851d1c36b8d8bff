"""References every benchmark checks rnnkit against before it is timed.

Two kinds:
- numpy, float64, written from ../shared/spec/tf1-semantics.md one step at a
  time (no attempt at speed). Gradients are checked with a directional
  derivative: <grad, v> against a central difference of the float64 forward.
- PyTorch in float64 with rnnkit's weights copied in (when torch is present).
  TF's LSTM gates are i, j, f, o; torch's are i, f, g(=j), o, and TF adds
  forget_bias at call time where torch has it in the bias.

Agreement is measured as max |a - ref| / (atol + rtol |ref|) with
atol = ATOL_SCALE * max|ref| (a float32 result against a float64 reference,
so the scale of the array sets the absolute floor).
"""

import numpy as np

RTOL = 1e-4
ATOL_SCALE = 1e-5


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def error_ratio(actual, reference, rtol=RTOL, atol_scale=ATOL_SCALE):
    """max |a - r| / (atol + rtol |r|): <= 1 means within tolerance."""
    a = np.asarray(actual, np.float64)
    r = np.asarray(reference, np.float64)
    if a.shape != r.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs reference {r.shape}")
    if r.size == 0:
        return 0.0
    atol = atol_scale * max(float(np.max(np.abs(r))), 1e-30)
    return float(np.max(np.abs(a - r) / (atol + rtol * np.abs(r))))


class Check:
    """Collects named comparisons; `ok` when every ratio <= 1."""

    def __init__(self, against):
        self.against = against
        self.items = []  # (name, ratio)

    def compare(self, name, actual, reference, **tol):
        self.items.append((name, error_ratio(actual, reference, **tol)))

    def scalar(self, name, actual, reference, rtol=RTOL):
        denom = rtol * max(abs(float(reference)), 1e-30)
        self.items.append((name, abs(float(actual) - float(reference)) / denom))

    def fail(self, name, why):
        self.items.append((name + ": " + why, float("inf")))

    @property
    def ok(self):
        return bool(self.items) and all(r <= 1.0 for _, r in self.items)

    @property
    def worst(self):
        return max((r for _, r in self.items), default=float("inf"))

    def summary(self):
        worst_name = max(self.items, key=lambda it: it[1])[0] if self.items else "nothing compared"
        status = "ok" if self.ok else "FAILED"
        return f"{status} vs {self.against} (worst {worst_name}: {self.worst:.2g} of tol)"


# ---- numpy float64 forward references ------------------------------------
def lstm_step(kernel, bias, x, c, h, forget_bias=1.0):
    z = np.concatenate([x, h], 1) @ kernel + bias
    i, j, f, o = np.split(z, 4, axis=1)
    c = sigmoid(f + forget_bias) * c + sigmoid(i) * np.tanh(j)
    h = sigmoid(o) * np.tanh(c)
    return c, h


def lstm_forward(p, x, forget_bias=1.0):
    """p: {'kernel', 'bias'}; x [B, T, D] -> outputs [B, T, H], (c, h)."""
    B, T, _ = x.shape
    H = p["bias"].shape[0] // 4
    c = np.zeros((B, H))
    h = np.zeros((B, H))
    outs = []
    for t in range(T):
        c, h = lstm_step(p["kernel"], p["bias"], x[:, t], c, h, forget_bias)
        outs.append(h)
    return np.stack(outs, 1), (c, h)


def gru_step(p, x, h):
    """TF1's GRUCell: reset applied before the candidate matmul."""
    H = h.shape[1]
    ru = sigmoid(np.concatenate([x, h], 1) @ p["gates/kernel"] + p["gates/bias"])
    r, u = ru[:, :H], ru[:, H:]
    cand = np.tanh(np.concatenate([x, r * h], 1) @ p["candidate/kernel"] + p["candidate/bias"])
    return u * h + (1 - u) * cand


def gru_forward(p, x):
    B, T, _ = x.shape
    H = p["candidate/bias"].shape[0]
    h = np.zeros((B, H))
    outs = []
    for t in range(T):
        h = gru_step(p, x[:, t], h)
        outs.append(h)
    return np.stack(outs, 1), (h,)


def rnn_forward(p, x):
    B, T, _ = x.shape
    H = p["bias"].shape[0]
    h = np.zeros((B, H))
    outs = []
    for t in range(T):
        h = np.tanh(np.concatenate([x[:, t], h], 1) @ p["kernel"] + p["bias"])
        outs.append(h)
    return np.stack(outs, 1), (h,)


def sequence_loss(logits, targets, weights):
    """Both averages: sum(ce * w) / sum(w)."""
    m = logits.max(-1, keepdims=True)
    lse = np.log(np.exp(logits - m).sum(-1)) + m[..., 0]
    picked = np.take_along_axis(logits, targets[..., None], -1)[..., 0]
    ce = lse - picked
    den = weights.sum()
    return float((ce * weights).sum() / den) if den != 0 else 0.0


def char_loss(p_cell, p_dense, x, targets, weights, forget_bias=1.0):
    out, _ = lstm_forward(p_cell, x, forget_bias)
    logits = out @ p_dense["kernel"] + p_dense["bias"]
    return sequence_loss(logits, targets, weights)


def adam_first_step(var, grad, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    """TF1's Adam after one step (t = 1) from zero slots."""
    var = np.asarray(var, np.float64)
    g = np.asarray(grad, np.float64)
    m = (1 - beta1) * g
    v = (1 - beta2) * g * g
    lr_t = lr * np.sqrt(1 - beta2) / (1 - beta1)
    return var - lr_t * m / (np.sqrt(v) + eps)


def directional_check(check, name, loss64, params64, grads, rng, eps=1e-4, rtol=1e-4):
    """Compare sum_k <grads[k], v_k> with (L(p + eps v) - L(p - eps v)) / 2 eps.

    loss64(params) -> float in float64; params64: {name: float64 array};
    grads: {name: float32 gradient from rnnkit}. The tolerance is relative to
    sum_k <|g_k|, |v_k|>, the scale at which cancellation would hide an error."""
    direction = {k: rng.standard_normal(v.shape) for k, v in params64.items()}
    plus = {k: params64[k] + eps * direction[k] for k in params64}
    minus = {k: params64[k] - eps * direction[k] for k in params64}
    numeric = (loss64(plus) - loss64(minus)) / (2 * eps)
    analytic = sum(float(np.sum(np.asarray(grads[k], np.float64) * direction[k])) for k in params64)
    scale = sum(float(np.sum(np.abs(np.asarray(grads[k], np.float64) * direction[k]))) for k in params64)
    check.items.append((name, abs(analytic - numeric) / (rtol * max(scale, 1e-30))))


# ---- PyTorch modules from rnnkit weights -----------------------------------
_TF_TO_TORCH_GATES = (0, 2, 1, 3)  # torch (i, f, g, o) <- TF blocks (i, j, f, o)


def tf_gates_to_torch(a, H, axis):
    """Reorder the 4H gate axis from TF's i, j, f, o to torch's i, f, g, o.
    The permutation is its own inverse, so it also maps torch back to TF."""
    blocks = np.split(np.asarray(a), 4, axis=axis)
    assert blocks[0].shape[axis] == H
    return np.concatenate([blocks[g] for g in _TF_TO_TORCH_GATES], axis=axis)


def torch_lstm_params(kernel, bias, D, forget_bias):
    """(weight_ih [4H, D], weight_hh [4H, H], bias_ih [4H], bias_hh [4H]) in torch's layout."""
    H = bias.shape[0] // 4
    k = tf_gates_to_torch(kernel, H, axis=1)
    b = np.array(bias, np.float64)
    b[2 * H:3 * H] += forget_bias  # TF adds forget_bias at call time
    b = tf_gates_to_torch(b, H, axis=0)
    return k[:D].T, k[D:].T, b, np.zeros_like(b)


def torch_lstm(torch, kernel, bias, D, forget_bias=1.0, dtype=None, cell=False):
    """nn.LSTM (batch_first) or nn.LSTMCell holding the TF weights."""
    H = bias.shape[0] // 4
    dtype = dtype or torch.float32
    mod = torch.nn.LSTMCell(D, H) if cell else torch.nn.LSTM(D, H, batch_first=True)
    mod = mod.to(dtype)
    w_ih, w_hh, b_ih, b_hh = torch_lstm_params(kernel, bias, D, forget_bias)
    sfx = "" if cell else "_l0"
    with torch.no_grad():
        getattr(mod, "weight_ih" + sfx).copy_(torch.from_numpy(np.ascontiguousarray(w_ih)))
        getattr(mod, "weight_hh" + sfx).copy_(torch.from_numpy(np.ascontiguousarray(w_hh)))
        getattr(mod, "bias_ih" + sfx).copy_(torch.from_numpy(b_ih))
        getattr(mod, "bias_hh" + sfx).copy_(torch.from_numpy(b_hh))
    return mod


def torch_lstm_grads_as_tf(mod, H):
    """{'kernel' [D + H, 4H], 'bias' [4H]} from an nn.LSTM's .grad fields."""
    g_ih = mod.weight_ih_l0.grad.detach().double().numpy()
    g_hh = mod.weight_hh_l0.grad.detach().double().numpy()
    g_b = mod.bias_ih_l0.grad.detach().double().numpy()
    kernel = tf_gates_to_torch(np.concatenate([g_ih.T, g_hh.T], 0), H, axis=1)
    return {"kernel": kernel, "bias": tf_gates_to_torch(g_b, H, axis=0)}


def torch_rnn(torch, kernel, bias, D, dtype=None):
    H = bias.shape[0]
    mod = torch.nn.RNN(D, H, nonlinearity="tanh", batch_first=True).to(dtype or torch.float32)
    with torch.no_grad():
        mod.weight_ih_l0.copy_(torch.from_numpy(np.ascontiguousarray(np.asarray(kernel)[:D].T)))
        mod.weight_hh_l0.copy_(torch.from_numpy(np.ascontiguousarray(np.asarray(kernel)[D:].T)))
        mod.bias_ih_l0.copy_(torch.from_numpy(np.asarray(bias)))
        mod.bias_hh_l0.zero_()
    return mod


def torch_rnn_grads_as_tf(mod):
    g_ih = mod.weight_ih_l0.grad.detach().double().numpy()
    g_hh = mod.weight_hh_l0.grad.detach().double().numpy()
    return {"kernel": np.concatenate([g_ih.T, g_hh.T], 0),
            "bias": mod.bias_ih_l0.grad.detach().double().numpy()}


def torch_linear(torch, kernel, bias, dtype=None):
    n_in, n_out = np.asarray(kernel).shape
    mod = torch.nn.Linear(n_in, n_out).to(dtype or torch.float32)
    with torch.no_grad():
        mod.weight.copy_(torch.from_numpy(np.ascontiguousarray(np.asarray(kernel).T)))
        mod.bias.copy_(torch.from_numpy(np.asarray(bias)))
    return mod


def torch_gru_reset_after(torch, v, D, dtype=None):
    """nn.GRU (batch_first) holding a GRUCell(reset_after=True)'s variables.
    torch's gates are r, z, n with z = rnnkit's u and n = its candidate."""
    H = v["candidate/input/bias"].shape[0]
    gk = np.asarray(v["gates/kernel"])
    w_ih = np.concatenate([gk[:D].T, np.asarray(v["candidate/input/kernel"]).T], 0)
    w_hh = np.concatenate([gk[D:].T, np.asarray(v["candidate/hidden/kernel"]).T], 0)
    b_ih = np.concatenate([v["gates/bias"], v["candidate/input/bias"]])
    b_hh = np.concatenate([np.zeros(2 * H, b_ih.dtype), v["candidate/hidden/bias"]])
    mod = torch.nn.GRU(D, H, batch_first=True).to(dtype or torch.float32)
    with torch.no_grad():
        for name, a in (("weight_ih_l0", w_ih), ("weight_hh_l0", w_hh), ("bias_ih_l0", b_ih), ("bias_hh_l0", b_hh)):
            getattr(mod, name).copy_(torch.from_numpy(np.ascontiguousarray(a)))
    return mod


def torch_gru_reset_after_grads(mod, D, H):
    g_ih = mod.weight_ih_l0.grad.detach().double().numpy()
    g_hh = mod.weight_hh_l0.grad.detach().double().numpy()
    b_ih = mod.bias_ih_l0.grad.detach().double().numpy()
    b_hh = mod.bias_hh_l0.grad.detach().double().numpy()
    return {
        "gates/kernel": np.concatenate([g_ih[:2 * H].T, g_hh[:2 * H].T], 0),
        "gates/bias": b_ih[:2 * H],
        "candidate/input/kernel": g_ih[2 * H:].T,
        "candidate/input/bias": b_ih[2 * H:],
        "candidate/hidden/kernel": g_hh[2 * H:].T,
        "candidate/hidden/bias": b_hh[2 * H:],
    }
