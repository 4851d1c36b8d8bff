"""The benchmark cases, each a list of rows to check and then time.

A row pairs an rnnkit callable with the PyTorch callable that does the same
work (or None when torch is missing), a FLOP count for one call, and a check
that compares rnnkit's result with a reference.

FLOPs count the matrix products only (2 per multiply-add); the elementwise
gate work is left out, as DeepBench and PyTorch's own figures do. Backward
is counted as twice the forward (d_inputs/d_state and d_weights), so
forward+backward is 3x forward.
"""

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

import rnnkit

from . import reference as ref
from .shapes import FULL, QUICK


@dataclass
class Row:
    case: str
    mode: str
    shape: str
    threads: int
    flops: float = 0.0                 # per reported unit (one call, or one step)
    units_per_call: int = 1            # sampling: one call = 100 steps
    rnnkit: Optional[Callable] = None
    torch: Optional[Callable] = None
    check: Optional[Callable] = None   # () -> reference.Check
    note: str = ""
    skip: Optional[str] = None
    # filled by the harness
    check_summary: str = ""
    check_ok: Optional[bool] = None
    rnnkit_s: Optional[float] = None
    torch_s: Optional[float] = None
    rnnkit_rounds: list = field(default_factory=list)
    torch_rounds: list = field(default_factory=list)
    foreign_cores: Optional[float] = None  # other processes' CPU use while this row was timed (cores)
    rounds_total: int = 0
    rounds_used: int = 0                   # rounds the medians are taken over
    contended: bool = False                # some used rounds ran while others kept >= 0.25 cores busy


def torch_sequence_timers(torch, mod, x, d_out):
    """(forward, forward+backward) calls of a torch recurrent module on x [B, T, D];
    the backward also computes d_inputs, as rnnkit's always does."""
    xt = torch.from_numpy(x)
    xg = xt.clone().requires_grad_(True)
    dt = torch.from_numpy(d_out)

    def t_forward():
        with torch.inference_mode():
            mod(xt)

    def t_train():
        mod.zero_grad(set_to_none=True)
        xg.grad = None
        out, _ = mod(xg)
        out.backward(dt)

    return t_forward, t_train

def seq_shape(B, T, D, H):
    return f"B{B} T{T} D{D} H{H}"


def lstm_flops(B, T, D, H):
    return 2.0 * B * T * (D + H) * 4 * H


class Context:
    def __init__(self, torch, threads, quick, seed=0):
        self.torch = torch
        self.threads = threads
        self.quick = quick
        self.rng = np.random.default_rng(seed)
        self.shapes = QUICK if quick else FULL

    def normal(self, *shape, scale=1.0):
        return (scale * self.rng.standard_normal(shape)).astype(np.float32)


# ---- LSTM over a sequence (seed, DeepBench, big) ------------------------------
def lstm_sequence_rows(ctx, case, B, T, D, H, threads, note=""):
    torch = ctx.torch
    cell = rnnkit.BasicLSTMCell(H, input_depth=D, seed=1)
    # A non-zero bias so that every gate's bias path is exercised by the check.
    cell.variables["bias"] = ctx.normal(4 * H, scale=0.1)
    kernel, bias = cell.variables["kernel"], cell.variables["bias"]
    x = ctx.normal(B, T, D)
    d_out = ctx.normal(B, T, H)
    layer = rnnkit.RNN(cell)
    fb = cell.forget_bias

    def rk_forward():
        rnnkit.dynamic_rnn(cell, x)

    def rk_train():
        layer.forward(x)
        layer.backward(d_out)

    t_forward = t_train = None
    if torch is not None:
        mod = ref.torch_lstm(torch, kernel, bias, D, fb)
        t_forward, t_train = torch_sequence_timers(torch, mod, x, d_out)

    def check_forward():
        out, state = rnnkit.dynamic_rnn(cell, x)
        if torch is not None:
            chk = ref.Check("torch float64")
            m64 = ref.torch_lstm(torch, kernel, bias, D, fb, dtype=torch.float64)
            with torch.no_grad():
                o, (h_n, c_n) = m64(torch.from_numpy(x.astype(np.float64)))
            r_out, r_c, r_h = o.numpy(), c_n[0].numpy(), h_n[0].numpy()
        else:
            chk = ref.Check("numpy float64")
            r_out, (r_c, r_h) = ref.lstm_forward({"kernel": kernel.astype(np.float64), "bias": bias.astype(np.float64)},
                                                 x.astype(np.float64), fb)
        chk.compare("outputs", out, r_out)
        chk.compare("final c", state.c, r_c)
        chk.compare("final h", state.h, r_h)
        return chk

    def check_train():
        out, _ = layer.forward(x)
        dx, _ = layer.backward(d_out)
        grads = {k: v.copy() for k, v in cell.grads.items()}
        if torch is not None:
            chk = ref.Check("torch float64")
            m64 = ref.torch_lstm(torch, kernel, bias, D, fb, dtype=torch.float64)
            x64 = torch.from_numpy(x.astype(np.float64)).requires_grad_(True)
            o, _ = m64(x64)
            o.backward(torch.from_numpy(d_out.astype(np.float64)))
            tg = ref.torch_lstm_grads_as_tf(m64, H)
            chk.compare("outputs", out, o.detach().numpy())
            chk.compare("d_inputs", dx, x64.grad.numpy())
            chk.compare("d kernel", grads["kernel"], tg["kernel"])
            chk.compare("d bias", grads["bias"], tg["bias"])
        else:
            chk = ref.Check("numpy float64 (directional derivative)")
            p64 = {"kernel": kernel.astype(np.float64), "bias": bias.astype(np.float64), "x": x.astype(np.float64)}
            d64 = d_out.astype(np.float64)

            def loss(p):
                o, _ = ref.lstm_forward(p, p["x"], fb)
                return float(np.sum(o * d64))

            ref.directional_check(chk, "grad . v", loss, p64, dict(grads, x=dx), ctx.rng)
        return chk

    shape = seq_shape(B, T, D, H)
    f = lstm_flops(B, T, D, H)
    return [
        Row(case, "forward", shape, threads, f, rnnkit=rk_forward, torch=t_forward, check=check_forward, note=note),
        Row(case, "forward+backward", shape, threads, 3 * f, rnnkit=rk_train, torch=t_train, check=check_train, note=note),
    ]


# ---- char model: LSTM + Dense + sequence_loss + Adam ------------------------------
def char_rows(ctx, threads):
    s = ctx.shapes.char
    B, T, C, H = s["B"], s["T"], s["C"], s["H"]
    shape = f"B{B} T{T} C{C} H{H}"
    f_fwd = lstm_flops(B, T, C, H) + 2.0 * B * T * H * C
    note = "one-hot inputs; BasicLSTMCell + Dense + sequence_loss (+ Adam)"
    torch = ctx.torch
    ids = ctx.rng.integers(0, C, size=(B, T + 1))
    eye = np.eye(C, dtype=np.float32)
    x = eye[ids[:, :T]]
    targets = ids[:, 1:].astype(np.int32)
    weights = np.ones((B, T), np.float32)
    lr = 0.01
    cell = rnnkit.BasicLSTMCell(H, input_depth=C, seed=1)
    model = rnnkit.Sequential([rnnkit.RNN(cell), rnnkit.Dense(C)], loss=rnnkit.SequenceLoss())
    model.predict(x)  # builds the Dense layer
    rnn_layer, dense = model.layers
    optimizer = rnnkit.AdamOptimizer(lr)
    # Each training check starts from these values: the rows before it have
    # trained the model for many steps, and float32 gradients of a model that
    # has converged on random targets are mostly cancellation.
    initial = [(layer.variables, {k: v.copy() for k, v in layer.variables.items()}) for layer in (cell, dense)]

    def rk_forward():
        model.predict(x)

    def rk_train():
        model.train_step(x, targets, weights, optimizer)

    ids = ids[:, :T].astype(np.int32)

    def rk_train_ids():
        model.train_step(ids, targets, weights, optimizer)

    def torch_pair(dtype):
        lstm = ref.torch_lstm(torch, cell.variables["kernel"], cell.variables["bias"], C, cell.forget_bias, dtype=dtype)
        lin = ref.torch_linear(torch, dense.variables["kernel"], dense.variables["bias"], dtype=dtype)
        return lstm, lin

    def torch_loss(lstm, lin, xt, tt, wt):
        out, _ = lstm(xt)
        logits = lin(out)
        ce = torch.nn.functional.cross_entropy(logits.reshape(-1, C), tt.reshape(-1), reduction="none")
        return (ce * wt.reshape(-1)).sum() / wt.sum(), logits

    t_forward = t_train = None
    if torch is not None:
        lstm32, lin32 = torch_pair(torch.float32)
        topt = torch.optim.Adam(list(lstm32.parameters()) + list(lin32.parameters()), lr=lr)
        xt, tt, wt = torch.from_numpy(x), torch.from_numpy(targets.astype(np.int64)), torch.from_numpy(weights)

        def t_forward():
            with torch.inference_mode():
                lin32(lstm32(xt)[0])

        def t_train():
            topt.zero_grad(set_to_none=True)
            loss, _ = torch_loss(lstm32, lin32, xt, tt, wt)
            loss.backward()
            topt.step()
            return loss.item()

    def numpy_params():
        v, d = cell.variables, dense.variables
        return ({"kernel": v["kernel"].astype(np.float64), "bias": v["bias"].astype(np.float64)},
                {"kernel": d["kernel"].astype(np.float64), "bias": d["bias"].astype(np.float64)})

    def check_forward():
        logits = model.predict(x)
        if torch is not None:
            chk = ref.Check("torch float64")
            lstm, lin = torch_pair(torch.float64)
            with torch.no_grad():
                r = lin(lstm(torch.from_numpy(x.astype(np.float64)))[0]).numpy()
        else:
            chk = ref.Check("numpy float64")
            pc, pd = numpy_params()
            out, _ = ref.lstm_forward(pc, x.astype(np.float64), cell.forget_bias)
            r = out @ pd["kernel"] + pd["bias"]
        chk.compare("logits", logits, r)
        return chk

    def check_train(inputs=x):
        for variables, values in initial:
            for k, v in values.items():
                variables[k] = v
        before = {("cell", k): v.copy() for k, v in cell.variables.items()}
        before.update({("dense", k): v.copy() for k, v in dense.variables.items()})
        pc, pd = numpy_params()
        if torch is not None:
            lstm, lin = torch_pair(torch.float64)
        opt = rnnkit.AdamOptimizer(lr)
        loss = model.train_step(inputs, targets, weights, opt)
        grads = {("cell", k): np.array(g) for k, g in rnn_layer.grads.items()}
        grads.update({("dense", k): np.array(g) for k, g in dense.grads.items()})
        if torch is not None:
            chk = ref.Check("torch float64")
            r_loss, _ = torch_loss(lstm, lin, torch.from_numpy(x.astype(np.float64)),
                                   torch.from_numpy(targets.astype(np.int64)), torch.from_numpy(weights.astype(np.float64)))
            r_loss.backward()
            tg = ref.torch_lstm_grads_as_tf(lstm, H)
            r_grads = {("cell", "kernel"): tg["kernel"], ("cell", "bias"): tg["bias"],
                       ("dense", "kernel"): lin.weight.grad.numpy().T, ("dense", "bias"): lin.bias.grad.numpy()}
            chk.scalar("loss", loss, r_loss.item())
            for key, r in r_grads.items():
                chk.compare("d " + "/".join(key), grads[key], r)
        else:
            chk = ref.Check("numpy float64 (loss; directional derivative)")
            chk.scalar("loss", loss, ref.char_loss(pc, pd, x.astype(np.float64), targets, weights.astype(np.float64), cell.forget_bias))
            p64 = {("cell", k): v for k, v in pc.items()}
            p64.update({("dense", k): v for k, v in pd.items()})

            def loss64(p):
                return ref.char_loss({k[1]: v for k, v in p.items() if k[0] == "cell"},
                                     {k[1]: v for k, v in p.items() if k[0] == "dense"},
                                     x.astype(np.float64), targets, weights.astype(np.float64), cell.forget_bias)

            ref.directional_check(chk, "grad . v", loss64, p64, grads, ctx.rng)
        # The update itself: TF1's Adam, step 1, from rnnkit's own gradients.
        after = {("cell", k): v for k, v in cell.variables.items()}
        after.update({("dense", k): v for k, v in dense.variables.items()})
        for key, var in after.items():
            chk.compare("adam " + "/".join(key), var, ref.adam_first_step(before[key], grads[key], lr))
        return chk

    rows = [
        Row("char", "forward", shape, threads, f_fwd, rnnkit=rk_forward, torch=t_forward, check=check_forward, note=note),
        Row("char", "training step", shape, threads, 3 * f_fwd, rnnkit=rk_train, torch=t_train, check=check_train, note=note),
    ]
    if hasattr(rnnkit, "one_hot"):  # token-id inputs: rnnkit gathers kernel rows instead of a one-hot GEMM
        rows.append(Row("char", "training step (ids)", shape, threads, 3 * f_fwd, rnnkit=rk_train_ids, torch=t_train,
                        check=lambda: check_train(ids),
                        note="rnnkit takes int32 token ids [B, T] (row gathers), torch the same one-hot floats"))
    return rows


# ---- sampling: 100 single steps through cell(x, state) + Dense head ------------------------
def sampling_rows(ctx, threads):
    s = ctx.shapes.sampling
    C, H, steps = s["C"], s["H"], s["steps"]
    torch = ctx.torch
    shape = f"B1 H{H} C{C} x{steps} steps"
    flops = 2.0 * (C + H) * 4 * H + 2.0 * H * C
    cell = rnnkit.BasicLSTMCell(H, input_depth=C, seed=2)
    cell.variables["bias"] = ctx.normal(4 * H, scale=0.1)
    eye = np.eye(C, dtype=np.float32)
    dense = rnnkit.Dense(C)
    dense(np.zeros((1, H), np.float32))  # build
    dense.variables["bias"] = ctx.normal(C, scale=0.1)
    head_kernel, head_bias = dense.variables["kernel"], dense.variables["bias"]
    head = dense
    note = "greedy; cell(x, state) + Dense(C) per step"

    def rk_sample(record=None):
        state = cell.zero_state(1)
        x = eye[0:1]
        for _ in range(steps):
            h, state = cell(x, state)
            logits = head(h)
            k = int(np.argmax(logits))
            if record is not None:
                record.append((k, np.array(logits[0])))
            x = eye[k:k + 1]

    t_sample = None
    if torch is not None:
        tcell = ref.torch_lstm(torch, cell.variables["kernel"], cell.variables["bias"], C, cell.forget_bias, cell=True)
        tlin = ref.torch_linear(torch, head_kernel, head_bias)
        teye = torch.eye(C)

        def t_sample():
            with torch.inference_mode():
                h = torch.zeros(1, H)
                c = torch.zeros(1, H)
                x = teye[0:1]
                for _ in range(steps):
                    h, c = tcell(x, (h, c))
                    k = int(tlin(h).argmax())
                    x = teye[k:k + 1]

    def check():
        rec = []
        rk_sample(rec)
        ks = [0] + [k for k, _ in rec[:-1]]  # the input id of each step
        logits = np.stack([lg for _, lg in rec])
        kernel64 = cell.variables["kernel"].astype(np.float64)
        bias64 = cell.variables["bias"].astype(np.float64)
        hk, hb = np.asarray(head_kernel, np.float64), np.asarray(head_bias, np.float64)
        if torch is not None:
            chk = ref.Check("torch float64 (teacher-forced on rnnkit's ids)")
            c64 = ref.torch_lstm(torch, kernel64, bias64, C, cell.forget_bias, dtype=torch.float64, cell=True)
            h = torch.zeros(1, H, dtype=torch.float64)
            c = torch.zeros(1, H, dtype=torch.float64)
            r = []
            with torch.no_grad():
                for k in ks:
                    h, c = c64(torch.from_numpy(eye[k:k + 1].astype(np.float64)), (h, c))
                    r.append(h.numpy()[0] @ hk + hb)
        else:
            chk = ref.Check("numpy float64 (teacher-forced on rnnkit's ids)")
            c = np.zeros((1, H))
            h = np.zeros((1, H))
            r = []
            for k in ks:
                c, h = ref.lstm_step(kernel64, bias64, eye[k:k + 1].astype(np.float64), c, h, cell.forget_bias)
                r.append(h[0] @ hk + hb)
        chk.compare("logits per step", logits, np.stack(r))
        return chk

    return [Row("sampling", "per step", shape, threads, flops, units_per_call=steps,
                rnnkit=rk_sample, torch=t_sample, check=check, note=note)]


# ---- generation: Sequential.generate against PyTorch's per-token loop ----------------------
def _torch_lstm_stack(torch, cells, C, dtype, as_cells):
    """The rnnkit LSTM cells as torch nn.LSTMCell modules, or as one nn.LSTM(num_layers=L)."""
    if as_cells:
        return [ref.torch_lstm(torch, c.variables["kernel"], c.variables["bias"], C if i == 0 else c.num_units,
                               c.forget_bias, dtype=dtype, cell=True) for i, c in enumerate(cells)]
    H = cells[0].num_units
    mod = torch.nn.LSTM(C, H, num_layers=len(cells), batch_first=True).to(dtype)
    with torch.no_grad():
        for i, c in enumerate(cells):
            params = ref.torch_lstm_params(c.variables["kernel"], c.variables["bias"], C if i == 0 else H, c.forget_bias)
            for name, value in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), params):
                getattr(mod, f"{name}_l{i}").copy_(torch.from_numpy(np.ascontiguousarray(value)))
    return mod


def _median_time(fn, repeats=3):
    import time
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def generation_rows(ctx, threads):
    """Per generated token: one sample, 32 samples, a 2-layer stack."""
    s = ctx.shapes.generation
    return [_generation_row(ctx, threads, s["C"], s["H"], s["steps"], samples, layers)
            for samples, layers in ((1, 1), (32, 1), (1, 2))]


def _generation_row(ctx, threads, C, H, steps, S, L):
    torch = ctx.torch
    cells = [rnnkit.BasicLSTMCell(H, input_depth=C if i == 0 else H, seed=3 + i) for i in range(L)]
    for c in cells:
        c.variables["bias"] = ctx.normal(4 * H, scale=0.1)
    dense = rnnkit.Dense(C, input_depth=H, seed=5)
    dense.variables["bias"] = ctx.normal(C, scale=0.1)
    model = rnnkit.Sequential([rnnkit.RNN(cells[0] if L == 1 else rnnkit.MultiRNNCell(cells)), dense])
    shape = f"S{S} L{L} H{H} C{C} x{steps} tokens"
    flops = S * (sum(2.0 * (C + H if i == 0 else 2 * H) * 4 * H for i in range(L)) + 2.0 * H * C)

    def rk():
        model.generate([0], steps, seed=1, num_samples=S)

    t_best, note = None, "rnnkit: Sequential.generate (one C++ call)"
    if torch is not None:
        eye = torch.eye(C)
        lin = ref.torch_linear(torch, dense.variables["kernel"], dense.variables["bias"])
        tcells = _torch_lstm_stack(torch, cells, C, torch.float32, as_cells=True)
        tlstm = _torch_lstm_stack(torch, cells, C, torch.float32, as_cells=False)

        def t_cells():
            with torch.inference_mode():
                gen = torch.Generator().manual_seed(1)
                states = [(torch.zeros(S, H), torch.zeros(S, H)) for _ in range(L)]
                x = eye[torch.zeros(S, dtype=torch.long)]
                for _ in range(steps):
                    for i, tc in enumerate(tcells):
                        states[i] = tc(x, states[i])
                        x = states[i][0]
                    k = torch.multinomial(torch.softmax(lin(x), -1), 1, generator=gen)[:, 0]
                    x = eye[k]

        def t_lstm():
            with torch.inference_mode():
                gen = torch.Generator().manual_seed(1)
                state = None
                x = eye[torch.zeros(S, dtype=torch.long)]
                for _ in range(steps):
                    out, state = tlstm(x[:, None, :], state)
                    k = torch.multinomial(torch.softmax(lin(out[:, 0]), -1), 1, generator=gen)[:, 0]
                    x = eye[k]

        t_cells(), t_lstm()  # warm up
        a, b = _median_time(t_cells), _median_time(t_lstm)
        t_best = t_cells if a <= b else t_lstm
        note += (f"; torch: the faster of an nn.LSTMCell loop ({a / steps * 1e6:.0f} us/token) and a one-step "
                 f"nn.LSTM loop ({b / steps * 1e6:.0f} us/token), each + nn.Linear, softmax, torch.multinomial "
                 "under inference_mode")

    def check():
        ids = model.generate([0], steps, greedy=True, num_samples=S)
        inputs = np.concatenate([np.zeros((S, 1), np.int64), ids[:, :-1]], axis=1)
        onehot = np.eye(C)[inputs]
        if torch is not None:
            chk = ref.Check("torch float64 (teacher-forced on rnnkit's greedy ids)")
            mod = _torch_lstm_stack(torch, cells, C, torch.float64, as_cells=False)
            with torch.no_grad():
                h = mod(torch.from_numpy(onehot))[0].numpy()
        else:
            chk = ref.Check("numpy float64 (teacher-forced on rnnkit's greedy ids)")
            h = onehot
            for c in cells:
                p = {"kernel": c.variables["kernel"].astype(np.float64), "bias": c.variables["bias"].astype(np.float64)}
                h, _ = ref.lstm_forward(p, h, c.forget_bias)
        logits = h @ dense.variables["kernel"].astype(np.float64) + dense.variables["bias"].astype(np.float64)
        chk.compare("greedy ids", ids, np.argmax(logits, axis=-1))
        return chk

    return Row("generation", "per token", shape, threads, flops, units_per_call=steps, rnnkit=rk, torch=t_best,
               check=check, note=note)


# ---- charrnn train's default model: training throughput -----------------------------------
def charrnn_rows(ctx, threads):
    """One training step of `charrnn train`'s default model (ids in, Adam,
    gradients clipped to norm 5), reported per character."""
    s = ctx.shapes.charrnn
    B, T, C, H, L = s["B"], s["T"], s["C"], s["H"], s["L"]
    shape = f"B{B} T{T} C{C} {L}x LSTM {H}"
    from rnnkit.charrnn.cli import DEFAULTS
    from rnnkit.charrnn.model import build_model
    torch = ctx.torch
    model = build_model(dict(DEFAULTS, rnn_size=H, num_layers=L), C, seed=0)
    optimizer = rnnkit.AdamOptimizer(DEFAULTS["learning_rate"])
    ids = ctx.rng.integers(0, C, (B, T + 1))
    x, y = ids[:, :T].astype(np.int32), ids[:, 1:].astype(np.int32)
    weights = np.ones((B, T), np.float32)
    clip = DEFAULTS["grad_clip"]
    cells = model.layers[0].cell.cells  # BasicLSTMCells: the default model has no dropout
    dense = model.layers[1]
    flops = sum(2.0 * B * T * (C + H if i == 0 else 2 * H) * 4 * H for i in range(L)) + 2.0 * B * T * H * C

    def rk():
        model.train_step(x, y, weights, optimizer, clip_norm=clip)

    def torch_model(dtype):
        lstm = _torch_lstm_stack(torch, cells, C, dtype, as_cells=False)
        lin = ref.torch_linear(torch, dense.variables["kernel"], dense.variables["bias"], dtype=dtype)
        return lstm, lin

    def torch_loss(lstm, lin, xt, yt):
        logits = lin(lstm(xt)[0])
        return torch.nn.functional.cross_entropy(logits.reshape(-1, C), yt.reshape(-1))

    t_train = None
    if torch is not None:
        lstm, lin = torch_model(torch.float32)
        params = list(lstm.parameters()) + list(lin.parameters())
        topt = torch.optim.Adam(params, lr=DEFAULTS["learning_rate"])
        xt = torch.nn.functional.one_hot(torch.from_numpy(x.astype(np.int64)), C).float()
        yt = torch.from_numpy(y.astype(np.int64))

        def t_train():
            topt.zero_grad(set_to_none=True)
            loss = torch_loss(lstm, lin, xt, yt)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, clip)
            topt.step()

    def check():
        loss = model.loss.forward(model.predict(x), y, weights)
        if torch is None:
            chk = ref.Check("numpy float64")
            h = np.eye(C)[x]
            for c in cells:
                p = {"kernel": c.variables["kernel"].astype(np.float64), "bias": c.variables["bias"].astype(np.float64)}
                h, _ = ref.lstm_forward(p, h, c.forget_bias)
            z = h @ dense.variables["kernel"].astype(np.float64) + dense.variables["bias"].astype(np.float64)
            top = z.max(-1, keepdims=True)
            lse = np.log(np.exp(z - top).sum(-1)) + top[..., 0]
            chk.scalar("loss", loss, float(np.mean(lse - np.take_along_axis(z, y[..., None], -1)[..., 0])))
            return chk
        chk = ref.Check("torch float64")
        lstm64, lin64 = torch_model(torch.float64)
        with torch.no_grad():
            r = torch_loss(lstm64, lin64, torch.nn.functional.one_hot(torch.from_numpy(x.astype(np.int64)), C).double(),
                           torch.from_numpy(y.astype(np.int64))).item()
        chk.scalar("loss", loss, r)
        return chk

    return [Row("charrnn", "training (per char)", shape, threads, flops / (B * T), units_per_call=B * T, rnnkit=rk,
                torch=t_train, check=check,
                note="charrnn train's default model: ids in, Adam, clip_by_global_norm 5; torch: one-hot in, "
                     "nn.LSTM(num_layers) + nn.Linear, clip_grad_norm_, Adam")]


# ---- GRU and vanilla RNN ------------------------------------------------------------------------------
def gru_rows(ctx, threads, reset_after=False):
    """TF1's GRU (the issue's case) against nn.GRU, which computes the
    reset-after variant at the same FLOPs; and rnnkit's reset-after variant,
    the same function as nn.GRU, checked against it with copied weights."""
    s = ctx.shapes.gru
    B, T, D, H = s["B"], s["T"], s["D"], s["H"]
    shape = seq_shape(B, T, D, H)
    f = 2.0 * B * T * (D + H) * 3 * H
    case = "GRU reset-after" if reset_after else "GRU"
    if reset_after:
        note = "GRUCell(reset_after=True): the same function as torch nn.GRU, checked against it"
    else:
        note = ("TF1 GRU (reset before the matmul) vs torch nn.GRU (reset after; same FLOPs, "
                "a different function): checked against the numpy TF1 reference")
    torch = ctx.torch
    cell = rnnkit.GRUCell(H, input_depth=D, seed=1, reset_after=reset_after)
    for name in list(cell.variables):
        if name.endswith("bias"):  # exercise every bias in the check
            cell.variables[name] = cell.variables[name] + ctx.normal(*cell.variables[name].shape, scale=0.1)
    x = ctx.normal(B, T, D)
    d_out = ctx.normal(B, T, H)
    layer = rnnkit.RNN(cell)

    def rk_forward():
        rnnkit.dynamic_rnn(cell, x)

    def rk_train():
        layer.forward(x)
        layer.backward(d_out)

    t_forward = t_train = None
    if torch is not None:
        mod = (ref.torch_gru_reset_after(torch, cell.variables, D) if reset_after
               else torch.nn.GRU(D, H, batch_first=True))
        t_forward, t_train = torch_sequence_timers(torch, mod, x, d_out)

    def p64():
        return {k: v.astype(np.float64) for k, v in cell.variables.items()}

    def check_forward():
        out, state = rnnkit.dynamic_rnn(cell, x)
        if reset_after:
            if torch is None:
                chk = ref.Check("nothing")
                chk.fail("reset-after GRU", "has no numpy reference here; needs torch")
                return chk
            chk = ref.Check("torch float64")
            with torch.no_grad():
                o, h_n = ref.torch_gru_reset_after(torch, cell.variables, D, torch.float64)(
                    torch.from_numpy(x.astype(np.float64)))
            r_out, r_h = o.numpy(), h_n[0].numpy()
        else:
            chk = ref.Check("numpy float64 (TF1 GRU)")
            r_out, (r_h,) = ref.gru_forward(p64(), x.astype(np.float64))
        chk.compare("outputs", out, r_out)
        chk.compare("final h", state, r_h)
        return chk

    def check_train():
        out, _ = layer.forward(x)
        dx, _ = layer.backward(d_out)
        grads = {k: v.copy() for k, v in cell.grads.items()}
        if reset_after:
            if torch is None:
                chk = ref.Check("nothing")
                chk.fail("reset-after GRU", "has no numpy reference here; needs torch")
                return chk
            chk = ref.Check("torch float64")
            m64 = ref.torch_gru_reset_after(torch, cell.variables, D, torch.float64)
            x64 = torch.from_numpy(x.astype(np.float64)).requires_grad_(True)
            o, _ = m64(x64)
            o.backward(torch.from_numpy(d_out.astype(np.float64)))
            chk.compare("outputs", out, o.detach().numpy())
            chk.compare("d_inputs", dx, x64.grad.numpy())
            for name, r in ref.torch_gru_reset_after_grads(m64, D, H).items():
                chk.compare("d " + name, grads[name], r)
            return chk
        chk = ref.Check("numpy float64 (TF1 GRU, directional derivative)")
        params = dict(p64(), x=x.astype(np.float64))
        d64 = d_out.astype(np.float64)

        def loss(p):
            o, _ = ref.gru_forward(p, p["x"])
            return float(np.sum(o * d64))

        ref.directional_check(chk, "grad . v", loss, params, dict(grads, x=dx), ctx.rng)
        return chk

    return [
        Row(case, "forward", shape, threads, f, rnnkit=rk_forward, torch=t_forward, check=check_forward, note=note),
        Row(case, "forward+backward", shape, threads, 3 * f, rnnkit=rk_train, torch=t_train, check=check_train, note=note),
    ]


def vanilla_rows(ctx, threads):
    s = ctx.shapes.vanilla
    B, T, D, H = s["B"], s["T"], s["D"], s["H"]
    torch = ctx.torch
    shape = seq_shape(B, T, D, H)
    f = 2.0 * B * T * (D + H) * H
    cell = rnnkit.BasicRNNCell(H, input_depth=D, seed=1)
    cell.variables["bias"] = ctx.normal(H, scale=0.1)
    kernel, bias = cell.variables["kernel"], cell.variables["bias"]
    x = ctx.normal(B, T, D)
    d_out = ctx.normal(B, T, H)
    layer = rnnkit.RNN(cell)

    def rk_forward():
        rnnkit.dynamic_rnn(cell, x)

    def rk_train():
        layer.forward(x)
        layer.backward(d_out)

    t_forward = t_train = None
    if torch is not None:
        mod = ref.torch_rnn(torch, kernel, bias, D)
        t_forward, t_train = torch_sequence_timers(torch, mod, x, d_out)

    def check_forward():
        out, state = rnnkit.dynamic_rnn(cell, x)
        if torch is not None:
            chk = ref.Check("torch float64")
            with torch.no_grad():
                o, h_n = ref.torch_rnn(torch, kernel, bias, D, dtype=torch.float64)(torch.from_numpy(x.astype(np.float64)))
            r_out, r_h = o.numpy(), h_n[0].numpy()
        else:
            chk = ref.Check("numpy float64")
            r_out, (r_h,) = ref.rnn_forward({"kernel": kernel.astype(np.float64), "bias": bias.astype(np.float64)},
                                            x.astype(np.float64))
        chk.compare("outputs", out, r_out)
        chk.compare("final h", state, r_h)
        return chk

    def check_train():
        out, _ = layer.forward(x)
        dx, _ = layer.backward(d_out)
        grads = {k: v.copy() for k, v in cell.grads.items()}
        if torch is not None:
            chk = ref.Check("torch float64")
            m64 = ref.torch_rnn(torch, kernel, bias, D, dtype=torch.float64)
            x64 = torch.from_numpy(x.astype(np.float64)).requires_grad_(True)
            o, _ = m64(x64)
            o.backward(torch.from_numpy(d_out.astype(np.float64)))
            tg = ref.torch_rnn_grads_as_tf(m64)
            chk.compare("outputs", out, o.detach().numpy())
            chk.compare("d_inputs", dx, x64.grad.numpy())
            chk.compare("d kernel", grads["kernel"], tg["kernel"])
            chk.compare("d bias", grads["bias"], tg["bias"])
        else:
            chk = ref.Check("numpy float64 (directional derivative)")
            params = {"kernel": kernel.astype(np.float64), "bias": bias.astype(np.float64), "x": x.astype(np.float64)}
            d64 = d_out.astype(np.float64)

            def loss(p):
                o, _ = ref.rnn_forward(p, p["x"])
                return float(np.sum(o * d64))

            ref.directional_check(chk, "grad . v", loss, params, dict(grads, x=dx), ctx.rng)
        return chk

    return [
        Row("vanilla RNN", "forward", shape, threads, f, rnnkit=rk_forward, torch=t_forward, check=check_forward),
        Row("vanilla RNN", "forward+backward", shape, threads, 3 * f, rnnkit=rk_train, torch=t_train, check=check_train),
    ]


# ---- all cases, in the order ---------------------------------------------------------------
CASE_NAMES = ("seed", "char", "sampling", "generation", "charrnn", "deepbench", "big", "gru", "vanilla")


def build_rows(ctx, only=None):
    """Every row for ctx.threads, plus the big LSTM at 1 thread (thread scaling).
    `only`: an optional set of CASE_NAMES."""
    t = ctx.threads
    sh = ctx.shapes
    want = (lambda name: only is None or name in only)
    rows = []
    if want("seed"):
        rows += lstm_sequence_rows(ctx, "seed", threads=t, **sh.seed)
    if want("char"):
        rows += char_rows(ctx, t)
    if want("sampling"):
        rows += sampling_rows(ctx, t)
    if want("generation"):
        rows += generation_rows(ctx, t)
    if want("charrnn"):
        rows += charrnn_rows(ctx, t)
    if want("deepbench"):
        for i, s in enumerate(sh.deepbench, 1):
            rows += lstm_sequence_rows(ctx, f"DeepBench {i}", threads=t, note="D = H", **s)
    if want("big"):
        rows += lstm_sequence_rows(ctx, "big", threads=t, **sh.big)
        if t != 1:
            rows += lstm_sequence_rows(ctx, "big", threads=1, **sh.big)
    if want("gru"):
        rows += gru_rows(ctx, t)
        if ctx.torch is not None:
            rows += gru_rows(ctx, t, reset_after=True)
    if want("vanilla"):
        rows += vanilla_rows(ctx, t)
    return rows
