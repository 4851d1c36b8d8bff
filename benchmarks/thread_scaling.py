"""How rnnkit scales with OpenMP threads beyond this machine's 2 cores, and
whether its results stay bit-identical across thread counts there.

    python -m benchmarks.thread_scaling --threads 1,2,4,8,16

For each case and thread count it times rnnkit (and PyTorch on the CPU, when
importable, with torch.set_num_threads) interleaved, and reports medians and
the speed-up over one thread; every rnnkit result (outputs, input and weight
gradients) is compared bit for bit with the one-thread result. Not part of
the main report: BENCHMARKS.md's targets are for 2 threads.
"""

import argparse
import statistics
import time

import numpy as np

import rnnkit

CASES = {  # name: (cell, B, T, D, H)
    "big LSTM": ("lstm", 32, 50, 1024, 1024),
    "DeepBench 1 LSTM": ("lstm", 16, 25, 512, 512),
    # Small recurrent weights: per-thread batch blocks and grouped gradient sums.
    "char LSTM": ("lstm", 32, 50, 65, 128),
    "small GRU": ("gru", 32, 50, 65, 128),
    "GRU": ("gru", 64, 100, 256, 512),
    "vanilla RNN": ("rnn", 64, 100, 256, 512),
}


def make_cell(kind, D, H):
    if kind == "lstm":
        return rnnkit.BasicLSTMCell(H, input_depth=D, seed=1)
    if kind == "gru":
        return rnnkit.GRUCell(H, input_depth=D, seed=1)
    return rnnkit.BasicRNNCell(H, input_depth=D, seed=1)


def torch_module(torch, kind, D, H):
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[kind]
    return cls(D, H, batch_first=True)


def median_time(f, rounds):
    f()  # warm-up
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        f()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,2,4,8,16", help="comma-separated thread counts")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", default=None, help="comma-separated case names")
    ap.add_argument("--no-torch", action="store_true")
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            torch = None
    names = args.only.split(",") if args.only else list(CASES)
    rng = np.random.default_rng(0)
    print(f"rnnkit {rnnkit.__version__}; SIMD {rnnkit._core.simd}; torch {torch.__version__ if torch else 'absent'}")
    print("| case | threads | rnnkit fwd+bwd | speed-up | torch fwd+bwd | speed-up | torch/rnnkit | bits vs 1 thread |")
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        kind, B, T, D, H = CASES[name]
        x = rng.standard_normal((B, T, D)).astype(np.float32)
        d_out = rng.standard_normal((B, T, H)).astype(np.float32)
        cell = make_cell(kind, D, H)
        layer = rnnkit.RNN(cell)
        mod = torch_module(torch, kind, D, H) if torch else None
        xt = torch.from_numpy(x).requires_grad_(True) if torch else None
        dt = torch.from_numpy(d_out) if torch else None

        def rk():
            out, _ = layer.forward(x)
            dx, _ = layer.backward(d_out)
            return [out, dx] + [cell.grads[k].copy() for k in cell.variables]

        def th():
            out, _ = mod(xt)
            out.backward(dt)

        reference, base_rk, base_th = None, None, None
        for n in threads:
            rnnkit.set_num_threads(n)
            result = rk()
            if reference is None:
                reference = result
            same = all(np.array_equal(a, b) for a, b in zip(reference, result))
            t_rk = median_time(rk, args.rounds)
            t_th = None
            if torch:
                torch.set_num_threads(n)
                t_th = median_time(th, args.rounds)
            base_rk = base_rk or t_rk
            base_th = base_th or t_th
            th_cols = (f"{t_th * 1e3:.1f} ms | {base_th / t_th:.2f}× | {t_th / t_rk:.2f}×" if t_th else "– | – | –")
            print(f"| {name} | {n} | {t_rk * 1e3:.1f} ms | {base_rk / t_rk:.2f}× | {th_cols} | "
                  f"{'identical' if same else 'DIFFERENT'} |", flush=True)


if __name__ == "__main__":
    main()
