"""Runs a subset of the C++ kernel micro-benchmarks (cpp/bench, built by
benchmarks/build_cpp_bench.sh) so that BENCHMARKS.md shows where the time
of a step goes: recurrent GEMM, fused gate pass, whole forward and backward.
Skipped, with a note, when the binary is not built."""

import json
import os
import subprocess

DEFAULT_BINARY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                              "build", "cpp-bench", "cpp", "bench", "rnnkit_bench")

# Step pieces at every step shape and both thread counts; whole sequences at
# the DeepBench and big shapes; the training-step kernels at the char shape.
FILTER = ("BM_Lstm(ForwardStep|FusedGates|RecurrentGemm)/"
          "|BM_Lstm(Forward|Backward)/B:(16|32)/T:(25|150|50)/D:(512|256|1024)/"
          "|BM_(SequenceLoss|Dense|Adam)")


def run(binary=DEFAULT_BINARY, min_time=0.2, timeout=900):
    if not os.path.exists(binary):
        return {"skipped": f"{os.path.relpath(binary)} not built (bash benchmarks/build_cpp_bench.sh)"}
    proc = subprocess.run([binary, f"--benchmark_filter={FILTER}", f"--benchmark_min_time={min_time}",
                           "--benchmark_format=json"], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        return {"skipped": f"rnnkit_bench failed ({proc.returncode}): {proc.stderr.strip()[-500:]}"}
    data = json.loads(proc.stdout)
    rows = []
    for b in data.get("benchmarks", []):
        if b.get("run_type", "iteration") != "iteration":
            continue
        rate = b.get("FLOP/s")
        rows.append({
            "name": b["name"], "time": b["real_time"], "unit": b.get("time_unit", "ns"),
            "gflops": rate / 1e9 if rate else None,
            "rate": {k: b[k] for k in ("elements/s", "rows/s", "params/s") if k in b},
        })
    return {"binary": os.path.relpath(binary), "context": {k: data.get("context", {}).get(k) for k in
                                                              ("date", "num_cpus", "mhz_per_cpu", "library_build_type")},
            "rows": rows}


def table(result):
    if "skipped" in result:
        return f"Not run: {result['skipped']}."
    lines = ["| Benchmark | wall time | GF/s | rate |", "|---|---|---|---|"]
    for r in result["rows"]:
        rate = ", ".join(f"{v / 1e6:.0f} M{k}" for k, v in r["rate"].items())
        gf = "–" if r["gflops"] is None else f"{r['gflops']:.1f}"
        lines.append(f"| `{r['name']}` | {r['time']:.1f} {r['unit']} | {gf} | {rate} |")
    return "\n".join(lines)
