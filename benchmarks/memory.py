"""Memory of training steps, measured in a fresh child process per framework.

tracemalloc sees only Python's own allocations, not the buffers that C++
kernels (rnnkit's Eigen, torch's allocator) take from malloc, so this reads
the kernel's accounting of the process instead:

- peak: resident memory is read from /proc/self/status. RSS also counts the
  pages of shared-library code a process touches for the first time (torch's
  first step pages in megabytes of libtorch), so the step's own memory is
  taken as two parts: the anonymous memory (RssAnon) it keeps between steps,
  measured against the RssAnon after the model and data are set up, plus the
  transient peak above the RSS right before the step, read from the
  high-water mark VmHWM after resetting it by writing "5" to
  /proc/self/clear_refs (Linux >= 4.0). "step peak" = kept + transient.
  The first step (lazy allocations: tape, gradients, optimizer slots, thread
  pools, code paged in) and a later, steady step (the 4th) are reported
  separately. Where clear_refs cannot be written, ru_maxrss deltas are used
  (a lower bound) and the method says so.
- flat: VmRSS after steps 10, 100 and N of a long run.

Run as `python -m benchmarks.memory --framework rnnkit|torch --workload W`;
prints one JSON object. The torch child never imports rnnkit and vice versa.
"""

import argparse
import json
import resource
import sys

import numpy as np

from .shapes import FULL, QUICK

WORKLOADS = ("char-train", "char-lstm", "big-lstm")


def _status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def rss_kib():
    return _status_kib("VmRSS")


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def anon_kib():
    return _status_kib("RssAnon")


def transient_peak(step):
    """(peak RSS during step() above the RSS right before it in KiB, method)."""
    before = rss_kib()
    if reset_peak():
        step()
        return max(_status_kib("VmHWM") - before, 0), "VmHWM after clear_refs"
    mark = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    step()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return max(after - max(mark, before), 0), "ru_maxrss (lower bound: the mark cannot be reset)"


# ---- workloads: build(framework, shapes) -> step() -------------------------------
def _data(shapes, workload, rng):
    if workload.startswith("char"):
        s = shapes.char
        B, T, C, H = s["B"], s["T"], s["C"], s["H"]
        ids = rng.integers(0, C, size=(B, T + 1))
        x = np.eye(C, dtype=np.float32)[ids[:, :T]]
        return dict(B=B, T=T, D=C, H=H, C=C, x=x, targets=ids[:, 1:].astype(np.int32),
                    weights=np.ones((B, T), np.float32), d_out=rng.standard_normal((B, T, H)).astype(np.float32))
    s = shapes.big
    B, T, D, H = s["B"], s["T"], s["D"], s["H"]
    return dict(B=B, T=T, D=D, H=H, x=rng.standard_normal((B, T, D)).astype(np.float32),
                d_out=rng.standard_normal((B, T, H)).astype(np.float32))


def build_rnnkit(workload, d, threads):
    import rnnkit

    rnnkit.set_num_threads(threads)
    if workload == "char-train":
        model = rnnkit.Sequential([rnnkit.RNN(rnnkit.BasicLSTMCell(d["H"], input_depth=d["D"], seed=1)),
                                   rnnkit.Dense(d["C"])], loss=rnnkit.SequenceLoss())
        opt = rnnkit.AdamOptimizer(0.01)
        model.predict(d["x"][:1])  # build every variable before the baseline

        def step():
            model.train_step(d["x"], d["targets"], d["weights"], opt)
        return step
    layer = rnnkit.RNN(rnnkit.BasicLSTMCell(d["H"], input_depth=d["D"], seed=1))

    def step():
        layer.forward(d["x"])
        layer.backward(d["d_out"])
    return step


def build_torch(workload, d, threads):
    import torch

    torch.set_num_threads(threads)
    lstm = torch.nn.LSTM(d["D"], d["H"], batch_first=True)
    x = torch.from_numpy(d["x"])
    if workload == "char-train":
        lin = torch.nn.Linear(d["H"], d["C"])
        opt = torch.optim.Adam(list(lstm.parameters()) + list(lin.parameters()), lr=0.01)
        targets = torch.from_numpy(d["targets"].astype(np.int64)).reshape(-1)
        w = torch.from_numpy(d["weights"]).reshape(-1)

        def step():
            opt.zero_grad(set_to_none=True)
            logits = lin(lstm(x)[0])
            ce = torch.nn.functional.cross_entropy(logits.reshape(-1, d["C"]), targets, reduction="none")
            loss = (ce * w).sum() / w.sum()
            loss.backward()
            opt.step()
            loss.item()
        return step
    xg = x.clone().requires_grad_(True)
    dt = torch.from_numpy(d["d_out"])

    def step():
        lstm.zero_grad(set_to_none=True)
        xg.grad = None
        out, _ = lstm(xg)
        out.backward(dt)
    return step


def measure(framework, workload, threads, quick, mode, steps):
    shapes = QUICK if quick else FULL
    d = _data(shapes, workload, np.random.default_rng(0))
    step = (build_rnnkit if framework == "rnnkit" else build_torch)(workload, d, threads)
    out = {"framework": framework, "workload": workload, "threads": threads}
    if mode == "peak":
        setup_anon = anon_kib()
        kept_first = anon_kib() - setup_anon
        first, method = transient_peak(step)
        step()
        step()
        kept = anon_kib() - setup_anon
        steady, _ = transient_peak(step)
        out.update(setup_rss_kib=rss_kib(), setup_anon_kib=setup_anon,
                   first_step_peak_kib=kept_first + first, steady_step_peak_kib=kept + steady,
                   kept_kib=kept, steady_transient_kib=steady, method=method)
    else:
        marks = sorted({m for m in (1, 10, 100, steps) if m <= steps})
        rss = {}
        for i in range(1, steps + 1):
            step()
            if i in marks:
                rss[i] = rss_kib()
        first_mark = 10 if 10 in rss else marks[0]
        out.update(steps=steps, rss_kib={str(k): v for k, v in rss.items()},
                   growth_kib=rss[steps] - rss[first_mark], growth_from_step=first_mark)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--framework", choices=("rnnkit", "torch"), required=True)
    p.add_argument("--workload", choices=WORKLOADS, required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--mode", choices=("peak", "flat"), default="peak")
    p.add_argument("--steps", type=int, default=1000)
    a = p.parse_args(argv)
    print(json.dumps(measure(a.framework, a.workload, a.threads, a.quick, a.mode, a.steps)))


if __name__ == "__main__":
    sys.exit(main())
