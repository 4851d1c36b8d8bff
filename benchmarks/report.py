"""Tables, the targets' verdicts and BENCHMARKS.md, from one run's numbers."""

import statistics

from . import cpp_bench, distributed, under_load

GEMM_FRACTION = 0.85
FLAT_KIB = 1024  # RSS growth over a long run that still counts as flat


def fmt_time(s):
    if s is None:
        return "–"
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def fmt_mib(kib):
    return "–" if kib is None else f"{kib / 1024:.1f} MiB"


def gemm_best(gemm, threads, shape):
    """numpy's GF/s on a named product at `threads`: the better of the
    measurements before and after the cases (the machine is shared; the
    higher one is the closer to what it can do, and the stricter bar)."""
    vals = [g[threads]["shapes"][shape]["gflops"] for g in (gemm.get("before"), gemm.get("after"))
            if g and threads in g and shape in g[threads]["shapes"]]
    return max(vals) if vals else None


def ceiling(gemm, threads):
    """numpy's square-GEMM GF/s at `threads` (see gemm_best)."""
    return gemm_best(gemm, threads, "ceiling")


def _spread(samples):
    """Interquartile range over the median: the run-to-run noise of a row."""
    if len(samples) < 4:
        return None
    q = statistics.quantiles(samples, n=4)
    return (q[2] - q[0]) / statistics.median(samples)


def row_dict(r, ceil):
    d = {k: getattr(r, k) for k in ("case", "mode", "shape", "threads", "flops", "units_per_call", "note", "skip",
                                    "check_ok", "check_summary", "rnnkit_s", "torch_s", "rnnkit_rounds", "torch_rounds",
                                    "foreign_cores", "rounds_total", "rounds_used", "contended")}
    d["ratio"] = r.torch_s / r.rnnkit_s if (r.rnnkit_s and r.torch_s) else None
    d["rnnkit_gflops"] = r.flops / r.rnnkit_s / 1e9 if r.rnnkit_s else None
    d["torch_gflops"] = r.flops / r.torch_s / 1e9 if r.torch_s else None
    d["ceiling_gflops"] = ceil
    d["rnnkit_pct_ceiling"] = d["rnnkit_gflops"] / ceil if (d["rnnkit_gflops"] and ceil) else None
    d["torch_pct_ceiling"] = d["torch_gflops"] / ceil if (d["torch_gflops"] and ceil) else None
    spreads = [s for s in (_spread(r.rnnkit_rounds), _spread(r.torch_rounds)) if s is not None]
    d["spread"] = max(spreads) if spreads else None
    return d


def _find(run, case, mode, threads=None, shape_prefix=""):
    threads = run["threads"] if threads is None else threads
    for r in run["rows"]:
        if r["case"] == case and r["mode"] == mode and r["threads"] == threads and r["shape"].startswith(shape_prefix):
            return r
    return None


def _unmeasured(r, need_torch=True):
    """Why a row gives no verdict, or None."""
    if r is None:
        return "case not run"
    if r["skip"]:
        return r["skip"]
    if r["check_ok"] is False:
        return "reference check failed: " + r["check_summary"]
    if need_torch and r["torch_s"] is None:
        return "PyTorch not available"
    return None


def _target(target, requirement, measured, verdict, why=""):
    return dict(target=target, requirement=requirement, measured=measured, verdict=verdict, why=why)


def _ratio_target(run, label, case, mode, need, shape_prefix=""):
    r = _find(run, case, mode, shape_prefix=shape_prefix)
    why = _unmeasured(r)
    if why:
        return _target(label, f"≥ {need:g}×", "–", "not measured", why)
    ok = r["ratio"] >= need
    measured = f"{r['ratio']:.2f}× (rnnkit {fmt_time(r['rnnkit_s'])}, torch {fmt_time(r['torch_s'])})"
    return _target(label, f"≥ {need:g}×", measured, "met" if ok else "missed",
                   "" if ok else f"rnnkit is {need / r['ratio']:.2f}× short of the target")


def evaluate_targets(run):
    t = run["threads"]
    gemm = run["gemm"].get("before", {})
    out = [
        _ratio_target(run, "seed, forward+backward", "seed", "forward+backward", 20),
        _ratio_target(run, "char, training step", "char", "training step", 2),
        _ratio_target(run, "sampling, per step", "sampling", "per step", 5),
        _ratio_target(run, "generation, per token (1 sample, LSTM 256)", "generation", "per token", 6, "S1 L1 "),
        _ratio_target(run, "charrnn train, characters per second", "charrnn", "training (per char)", 2),
    ]
    for case, key in (("DeepBench 1", "DeepBench 1"), ("DeepBench 2", "DeepBench 2"), ("big", "big")):
        for mode in ("forward", "forward+backward"):
            r = _find(run, case, mode)
            label = f"{case} LSTM, {mode}"
            req = f"≥ 1.0× and ≥ {GEMM_FRACTION:.0%} of numpy GEMM"
            why = _unmeasured(r, need_torch=False)
            if why:
                out.append(_target(label, req, "–", "not measured", why))
                continue
            pct = r["rnnkit_pct_ceiling"]
            parts = [f"{r['rnnkit_gflops']:.1f} GF/s = {pct:.0%} of {r['ceiling_gflops']:.0f}"]
            if r["ratio"] is not None:
                parts.insert(0, f"{r['ratio']:.2f}×")
            ok_ratio = r["ratio"] is None or r["ratio"] >= 1.0
            ok_gemm = pct is not None and pct >= GEMM_FRACTION
            reasons = []
            if not ok_ratio:
                reasons.append(f"slower than torch ({fmt_time(r['rnnkit_s'])} vs {fmt_time(r['torch_s'])})")
            if not ok_gemm:
                rec = gemm.get(t, {}).get("shapes", {}).get(f"{key} recurrent")
                inp = gemm.get(t, {}).get("shapes", {}).get(f"{key} input")
                msg = f"{pct:.0%} of the square-GEMM ceiling"
                if rec and inp:
                    msg += (f"; numpy itself reaches {gemm_best(run['gemm'], t, key + ' recurrent'):.0f} GF/s on the "
                            f"per-step [{rec['m']}, {rec['k']}]·[{rec['k']}, {rec['n']}] product and "
                            f"{gemm_best(run['gemm'], t, key + ' input'):.0f} GF/s on the hoisted "
                            f"[{inp['m']}, {inp['k']}]·[{inp['k']}, {inp['n']}] one")
                if r["torch_pct_ceiling"] is not None:
                    msg += f"; torch reaches {r['torch_pct_ceiling']:.0%}"
                reasons.append(msg)
            verdict = "met" if (ok_ratio and ok_gemm) else "missed"
            if r["ratio"] is None:
                verdict = "met (GEMM part only)" if ok_gemm else "missed"
                reasons.append("ratio not measured: PyTorch not available")
            out.append(_target(label, req, ", ".join(parts), verdict, "; ".join(reasons)))
    out.append(_ratio_target(run, "GRU, forward+backward", "GRU", "forward+backward", 1.5))
    out.append(_ratio_target(run, "vanilla RNN, forward+backward", "vanilla RNN", "forward+backward", 1.5))
    for mode in ("forward", "forward+backward"):
        label = f"big LSTM {mode}, {t} threads vs 1"
        if t == 1:
            out.append(_target(label, "≥ 1.7×", "–", "not measured", "run with --threads 1"))
            continue
        sc = (run.get("scaling") or {}).get(mode)
        if sc:  # interleaved measurement: the verdict's source
            speedup, t1, tn = sc["rnnkit_speedup"], sc["rnnkit_1_s"], sc["rnnkit_n_s"]
            measured = f"{speedup:.2f}× interleaved"
            if "torch_speedup" in sc:
                measured += f" (torch {sc['torch_speedup']:.2f}×)"
            r1, rt = _find(run, "big", mode, 1), _find(run, "big", mode, t)
            if r1 and rt and r1["rnnkit_s"] and rt["rnnkit_s"]:
                measured += f"; from the separate rows {r1['rnnkit_s'] / rt['rnnkit_s']:.2f}×"
        else:
            r1, rt = _find(run, "big", mode, 1), _find(run, "big", mode, t)
            why = _unmeasured(r1, need_torch=False) or _unmeasured(rt, need_torch=False)
            if why:
                out.append(_target(label, "≥ 1.7×", "–", "not measured", why))
                continue
            speedup, t1, tn = r1["rnnkit_s"] / rt["rnnkit_s"], r1["rnnkit_s"], rt["rnnkit_s"]
            measured = f"{speedup:.2f}×"
            if r1["torch_s"] and rt["torch_s"]:
                measured += f" (torch {r1['torch_s'] / rt['torch_s']:.2f}×)"
        out.append(_target(label, "≥ 1.7×", measured, "met" if speedup >= 1.7 else "missed",
                           "" if speedup >= 1.7 else f"rnnkit {fmt_time(t1)} on 1 thread, {fmt_time(tn)} on {t}"))
    out += _memory_targets(run)
    for r in run.get("under_load") or []:
        label = f"{r['case']} {r['mode']} beside a busy process, {r['threads']} threads vs 1"
        ok = r["loaded_ratio"] <= under_load.TARGET
        out.append(_target(label, f"≤ {under_load.TARGET:g}×", f"{r['loaded_ratio']:.2f}× ({fmt_time(r['loaded_threads_s'])} "
                           f"vs {fmt_time(r['loaded_1_s'])})", "met" if ok else "missed"))
    return out


def _under_load_section(run):
    lines = [f"One competitor (a spin loop pinned to one of this process's CPUs) runs during half of each row's "
             f"rounds and is stopped (SIGSTOP) during the other half; rnnkit's default thread count and 1 thread are "
             f"timed interleaved in both. Settings: {run['wait_settings']}. Why: benchmarks/NOTES.md, Threads.", "",
             "| case | mode | shape | loaded: default | loaded: 1 thread | ratio | quiet: default | quiet: 1 thread |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in run["under_load"]:
        lines.append(f"| {r['case']} | {r['mode']} | {r['shape']} | {fmt_time(r['loaded_threads_s'])} | "
                     f"{fmt_time(r['loaded_1_s'])} | {r['loaded_ratio']:.2f}× | {fmt_time(r['quiet_threads_s'])} | "
                     f"{fmt_time(r['quiet_1_s'])} |")
    return "\n".join(lines)


def _distributed_section(run):
    parts = ["`python -m benchmarks.distributed --batch B --steps 10 --rounds 5 --into ...`, measured apart from "
             "the rows above (load average as each finished, in its heading). Each run is its own process (one "
             "`mpiexec` job per rank count), the runs take turns, medians of the rounds. fit(groups=8) is what "
             "`fit(distributed=True)` computes, in one process: the price of bits that do not depend on the rank "
             "count (why: benchmarks/NOTES.md, Distributed). Plain fit stays the default without MPI."]
    for r in run["distributed"]:
        parts += ["", f"Batch {r['batch']} (load average {r['load_average']:.2f}):", "", distributed.table(r)]
    return "\n".join(parts)


def _peak(m):
    return max(m["first_step_peak_kib"], m["steady_step_peak_kib"])


def _memory_targets(run):
    mem = run.get("memory")
    if not mem:
        return [_target("peak memory of one training step", "≤ PyTorch's", "–", "not measured", "--skip-memory"),
                _target("memory across 1000 training steps", "flat", "–", "not measured", "--skip-memory")]
    out = []
    for workload in (mem["train_workload"], "big-lstm"):
        entries = {m["framework"]: m for m in mem["peak"] if m["workload"] == workload}
        label = f"peak memory of one training step ({workload})"
        rk, tc = entries.get("rnnkit"), entries.get("torch")
        if rk is None or "error" in rk:
            out.append(_target(label, "≤ PyTorch's", "–", "not measured", (rk or {}).get("error", "not run")[-300:]))
            continue
        if tc is None or "error" in tc:
            out.append(_target(label, "≤ PyTorch's", f"rnnkit +{fmt_mib(_peak(rk))}", "not measured",
                               "PyTorch not available" if tc is None else tc["error"][-300:]))
            continue
        ok = _peak(rk) <= _peak(tc)
        why = mem["note"] if (mem["note"] and workload == mem["train_workload"]) else ""
        if not ok:
            why = (why + "; " if why else "") + f"rnnkit needs {_peak(rk) / max(_peak(tc), 1):.2f}× torch's"
        out.append(_target(label, "≤ PyTorch's",
                           f"rnnkit +{fmt_mib(_peak(rk))} vs torch +{fmt_mib(_peak(tc))}", "met" if ok else "missed", why))
    flat = {m["framework"]: m for m in mem["flat"]}
    rk = flat.get("rnnkit")
    label = f"memory across {run['memory'].get('flat', [{}])[0].get('steps', '?')} training steps"
    if rk is None or "error" in rk:
        out.append(_target(label, "flat", "–", "not measured", (rk or {}).get("error", "not run")[-300:]))
    else:
        ok = rk["growth_kib"] <= FLAT_KIB
        measured = f"rnnkit {rk['growth_kib']:+d} KiB after step {rk['growth_from_step']}"
        if "torch" in flat and "error" not in flat["torch"]:
            measured += f" (torch {flat['torch']['growth_kib']:+d} KiB)"
        out.append(_target(label, f"flat (growth ≤ {FLAT_KIB} KiB)", measured, "met" if ok else "missed",
                           mem["note"] or ""))
    return out


# ---- rendering -----------------------------------------------------------------
def _pct(x):
    return "–" if x is None else f"{x:.0%}"


def _num(x, fmt="{:.2f}"):
    return "–" if x is None else fmt.format(x)


def results_table(run):
    head = ("| Case | Mode | Shape | Threads | rnnkit | PyTorch | torch/rnnkit | rnnkit GF/s | torch GF/s "
            "| rnnkit % GEMM | torch % GEMM | spread | others' CPU | Check |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in run["rows"]:
        status = "skipped: " + r["skip"] if r["skip"] else r["check_summary"]
        lines.append("| " + " | ".join([
            r["case"], r["mode"], r["shape"], str(r["threads"]),
            fmt_time(r["rnnkit_s"]), fmt_time(r["torch_s"]),
            _num(r["ratio"], "{:.2f}×"), _num(r["rnnkit_gflops"], "{:.1f}"), _num(r["torch_gflops"], "{:.1f}"),
            _pct(r["rnnkit_pct_ceiling"]), _pct(r["torch_pct_ceiling"]),
            _pct(r["spread"]) + (f" ({r['rounds_used']}/{r['rounds_total']})" if r.get("rounds_total") else ""),
            _num(r["foreign_cores"]) + (" ⚠" if r.get("contended") else ""), status,
        ]) + " |")
    return "\n".join(lines)


def targets_table(run):
    lines = ["| Target | Requirement | Measured | Verdict | Why |", "|---|---|---|---|---|"]
    for t in run["targets"]:
        why = t["why"]
        lines.append(f"| {t['target']} | {t['requirement']} | {t['measured']} | **{t['verdict']}** | {why} |")
    return "\n".join(lines)


def _gemm_section(run):
    g = run["gemm"]
    lines = []
    before = g.get("before", {})
    any_t = next(iter(before.values()), None)
    if any_t:
        env = any_t["env"]
        were = env["were_set_in_parent"]
        lines.append(f"numpy float32 `matmul`, measured in a child process with "
                     f"{', '.join('`' + k + '`' for k in env['unset']) or 'the environment as is'} unset "
                     f"(in the benchmark's own environment they were: "
                     f"{', '.join(f'{k}={v}' for k, v in were.items()) if were else 'not set'}); "
                     f"OpenBLAS {any_t['blas'].get('version')} then ran its `{any_t['blas'].get('architecture')}` kernel. "
                     f"Median of {run.get('gemm_repeats', '?')} timed samples (each ≥ 50 ms of calls) per shape.")
        lines.append("")
        names = list(any_t["shapes"])
        after = g.get("after", {})
        cols = [f"{t} thread{'s' if t > 1 else ''}" for t in before]
        lines.append("| Product [m, k]·[k, n] | " + " | ".join(f"{c} GF/s (before / after the cases)" for c in cols) + " |")
        lines.append("|---|" + "---|" * len(before))

        def cell(t, name):
            b = before[t]["shapes"][name]["gflops"]
            a = after.get(t, {}).get("shapes", {}).get(name)
            return f"{b:.1f} / {a['gflops']:.1f}" if a else f"{b:.1f} / –"

        for name in names:
            s_ = any_t["shapes"][name]
            label = f"{name}: [{s_['m']}, {s_['k']}]·[{s_['k']}, {s_['n']}]"
            lines.append(f"| {label} | " + " | ".join(cell(t, name) for t in before) + " |")

        def busy(t, when):
            v = when.get(t, {}).get("foreign_cores")
            return "–" if v is None else f"{v:.2f}"

        lines.append("| others' CPU during the measurement (cores) | "
                     + " | ".join(f"{busy(t, before)} / {busy(t, after)}" for t in before) + " |")
        lines.append("")
        lines.append("Where other processes kept a core busy, that column understates the machine.")
        lines.append("")
        lines.append("The ceiling used for \"% GEMM\" is the better of the two square-GEMM measurements at the row's "
                     "thread count; each child waits for the machine to be quiet first, like the rounds.")
    return "\n".join(lines)


def _memory_section(run):
    mem = run.get("memory")
    if not mem:
        return "Not measured (--skip-memory)."
    lines = []
    if mem["note"]:
        lines.append(f"Note: {mem['note']}.")
        lines.append("")
    lines.append("| Workload | Framework | RSS after setup | first step peak | steady step peak | of which kept between steps | method |")
    lines.append("|---|---|---|---|---|---|---|")
    for m in mem["peak"]:
        if "error" in m:
            lines.append(f"| {m['workload']} | {m['framework']} | error: {m['error'][-200:]} | | | | |")
            continue
        lines.append(f"| {m['workload']} | {m['framework']} | {fmt_mib(m['setup_rss_kib'])} | +{fmt_mib(m['first_step_peak_kib'])} "
                     f"| +{fmt_mib(m['steady_step_peak_kib'])} | +{fmt_mib(m['kept_kib'])} | {m['method']} |")
    lines.append("")
    lines.append("| Long run | Framework | RSS at marks (step: KiB) | growth |")
    lines.append("|---|---|---|---|")
    for m in mem["flat"]:
        if "error" in m:
            lines.append(f"| {m['workload']} | {m['framework']} | error: {m['error'][-200:]} | |")
            continue
        marks = ", ".join(f"{k}: {v}" for k, v in m["rss_kib"].items())
        lines.append(f"| {m['workload']} × {m['steps']} | {m['framework']} | {marks} | {m['growth_kib']:+d} KiB after step {m['growth_from_step']} |")
    return "\n".join(lines)


PATH_OPTIONS = ("--json", "--out", "--render", "--cpp-bench")


def public_command(command):
    """The run's command without the options that name files on the machine
    that ran it (--json /tmp/..., --out ...)."""
    words, out = command.split(), []
    skip = False
    for w in words:
        if skip:
            skip = False
        elif w in PATH_OPTIONS:
            skip = True
        elif not w.startswith(tuple(o + "=" for o in PATH_OPTIONS)):
            out.append(w)
    return " ".join(out)


def markdown(run):
    """BENCHMARKS.md: this run's machine, results and verdicts; the design
    decisions and their history live in benchmarks/NOTES.md."""
    f = run["facts"]
    la0, la1 = f.get("load_average_start"), f.get("load_average_end")
    out = ["# rnnkit benchmarks", ""]
    if run["quick"]:
        out += ["> **Quick mode** (tiny shapes, one round): this file shows that the harness works; "
                "its numbers and verdicts mean nothing.", ""]
    out += [
        f"The current run: `{public_command(run['command'])}`, {run['started'][:16].replace('T', ' ')} UTC, "
        f"commit `{f.get('commit')}`" + (" (with uncommitted changes)" if f.get("dirty") else "") + ". "
        "Regenerate with `python -m benchmarks.run --json benchmarks/last_run.json` (setup: "
        "`bash benchmarks/setup.sh`); why the kernels are built as they are, what was tried and the numbers "
        "behind each decision: [benchmarks/NOTES.md](benchmarks/NOTES.md).",
        "",
        "## Machine",
        "",
        f"- CPU: {f['cpu']}; {f['logical_cpus']} logical CPUs, {f.get('physical_cores') or '?'} physical cores, "
        f"{f.get('usable_cpus')} usable by this process.",
        f"- rnnkit built for `{f['rnnkit_arch']}`; Eigen uses {f['rnnkit_simd']}; OpenMP: {f['rnnkit_openmp']}.",
        f"- Python {f['python']}, numpy {f['numpy']}, PyTorch {f['torch'] or '(not available: ' + str(run['torch_note']) + ')'}"
        + (f" (oneDNN available: {f.get('torch_mkldnn')})" if f["torch"] else "") + ".",
        f"- Threads: {run['threads']} for rnnkit and PyTorch (`torch.set_num_threads`), except the 1-thread rows.",
        f"- Load average at start {_num(la0[0] if la0 else None)}, at end {_num(la1[0] if la1 else None)} "
        "(a shared machine: see the spread and others' CPU columns).",
        "",
        "## Targets",
        "",
        targets_table(run),
        "",
        "## Results",
        "",
        f"Median over {run['rounds']} interleaved rounds (blocks of ≥ {run['min_block_s']} s per framework, "
        "alternating which goes first). torch/rnnkit > 1 means rnnkit is faster. GF/s counts matrix-product "
        "FLOPs only (forward+backward = 3× forward); % GEMM is of numpy's square-GEMM GF/s at the same thread "
        "count. spread: interquartile range over the median (rounds used/rounds run). others' CPU: cores other "
        f"processes kept busy during the row; each round waits up to {run.get('quiet_wait_s', 0):g} s for it to "
        "fall under 0.25, contended rounds are dropped when 3 quiet ones exist, ⚠ marks rows that kept some. "
        "Sampling times are per step.",
        "",
        results_table(run),
        "",
    ]
    notes_rows = [(r["case"], r["note"]) for r in run["rows"] if r["note"]]
    if notes_rows:
        seen = set()
        out.append("Row notes:")
        for case, note in notes_rows:
            if (case, note) not in seen:
                seen.add((case, note))
                out.append(f"- {case}: {note}.")
        out.append("")
    if run.get("under_load"):
        out += ["## Threads under load", "", _under_load_section(run), ""]
    if run.get("distributed"):
        out += ["## Distributed training", "", _distributed_section(run), ""]
    out += ["## GEMM ceiling", "", _gemm_section(run), "", "## Memory", "", _memory_section(run), ""]
    if run.get("cpp_bench") is not None:
        out += ["## Kernel micro-benchmarks (C++)", "",
                "A subset of `cpp/bench` (Google Benchmark, wall time, same run). `BM_LstmRecurrentGemm` is the "
                "per-step `m_prev · W_h` product as the step loop calls it; `BM_LstmFusedGates` is a step "
                "with every row live minus the same step with every row past its sequence_length, i.e. the "
                "fused gate pass alone. Arguments: B, T, D, H, threads. "
                f"Other processes used {_num(run['cpp_bench'].get('foreign_cores'))} cores on average here "
                "(no quiet wait: with another job on a core, the 2-thread lines are not trustworthy).",
                "", cpp_bench.table(run["cpp_bench"]), ""]
    out += ["## Method", "",
            "- Each row first compares rnnkit's result with a reference and is timed only if that check passes: "
            "PyTorch in float64 with rnnkit's weights copied in, or a numpy float64 reference written from the "
            "spec (always for TF1's GRU, which PyTorch does not have). Tolerance: |a − ref| ≤ atol + rtol·|ref|, "
            "rtol = 1e-4, atol = 1e-5·max|ref|; the Check column gives the worst error as a fraction of it.",
            "- PyTorch's forward runs under `torch.inference_mode()`; its forward+backward computes the input "
            "gradient too, as rnnkit's backward does.",
            "- Memory: `benchmarks/memory.py`, a fresh child process per framework. A step's peak = the anonymous "
            "memory kept since setup + the transient rise of VmHWM above the RSS right before the step; the "
            "verdict takes the larger of the first and the steady step.",
            ""]
    return "\n".join(out)
