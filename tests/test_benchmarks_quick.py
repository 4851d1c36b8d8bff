"""The benchmark harness in quick mode (tiny shapes, one round): it must run,
produce rows, and every row's reference check must pass. Nothing is timed
against a threshold here; the point is that `python -m benchmarks.run` keeps
working as the package changes."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAVE_TORCH = importlib.util.find_spec("torch") is not None


def read_or_none(path):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return f.read()


def run_quick(tmp_path, *extra):
    out_md = tmp_path / "BENCHMARKS.md"
    out_json = tmp_path / "run.json"
    repo_report = os.path.join(REPO, "BENCHMARKS.md")
    before = read_or_none(repo_report)
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--out", str(out_md), "--json", str(out_json), *extra],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    after = read_or_none(repo_report)
    assert after == before, "quick mode must not touch the repository's BENCHMARKS.md"
    return json.loads(out_json.read_text()), read_or_none(str(out_md))


def check_run(run, text):
    rows = run["rows"]
    assert rows, "no rows"
    checked = [r for r in rows if not r["skip"]]
    # seed, sampling, DeepBench x2, big (x2 thread counts), vanilla: always there
    assert len(checked) >= 13
    assert {r["case"] for r in checked} >= {"seed", "sampling", "DeepBench 1", "DeepBench 2", "big", "vanilla RNN"}
    for r in checked:
        assert r["check_ok"] is True, (r["case"], r["mode"], r["check_summary"])
        assert r["check_summary"].startswith("ok vs ")
        assert r["rnnkit_s"] is not None and r["rnnkit_s"] > 0
    for r in rows:
        if r["skip"]:
            assert r["check_ok"] is None and r["rnnkit_s"] is None
    assert run["gemm"]["before"], "no GEMM ceiling"
    assert {r["threads"] for r in checked} >= {1, 2}
    targets = {t["target"] for t in run["targets"]}
    assert "seed, forward+backward" in targets and "char, training step" in targets
    assert "| Case | Mode |" in text and "## Targets" in text and "Quick mode" in text
    assert run["facts"]["rnnkit_simd"]
    assert set(run["scaling"]) == {"forward", "forward+backward"}  # big LSTM, 2 threads vs 1, interleaved


@pytest.mark.skipif(not HAVE_TORCH, reason="torch not installed: the rnnkit-only run below covers the harness")
def test_quick_against_torch(tmp_path):
    run, text = run_quick(tmp_path)
    check_run(run, text)
    checked = [r for r in run["rows"] if not r["skip"]]
    assert all(r["torch_s"] is not None for r in checked if r["case"] != "GRU")
    assert any("torch float64" in r["check_summary"] for r in checked)
    mem = run["memory"]
    assert {m["framework"] for m in mem["peak"]} == {"rnnkit", "torch"}
    assert all("error" not in m for m in mem["peak"] + mem["flat"]), mem


def test_quick_rnnkit_only(tmp_path):
    run, text = run_quick(tmp_path, "--no-torch")
    check_run(run, text)
    checked = [r for r in run["rows"] if not r["skip"]]
    assert all(r["torch_s"] is None for r in checked)
    assert all("numpy float64" in r["check_summary"] for r in checked)
    mem = run["memory"]
    assert [m["framework"] for m in mem["flat"]] == ["rnnkit"]
    assert all("error" not in m for m in mem["peak"] + mem["flat"]), mem


def test_quick_competitor_mode(tmp_path):
    # beside one busy process: each row at 2 threads and at 1, loaded and quiet
    run, text = run_quick(tmp_path, "--no-torch", "--competitor", "--only", "char,vanilla")
    assert text is None  # the report is left alone
    rows = run["under_load"]
    assert {r["case"] for r in rows} == {"char", "vanilla RNN"}
    for r in rows:
        assert r["threads"] == 2
        for key in ("loaded_threads_s", "loaded_1_s", "quiet_threads_s", "quiet_1_s"):
            assert r[key] > 0
        assert r["loaded_ratio"] == r["loaded_threads_s"] / r["loaded_1_s"]
    assert run["wait_settings"].endswith("adaptive threads on")


def test_distributed_result_renders_into_the_report(tmp_path):
    # a tiny benchmarks.distributed run added to a copy of the last full run, then rendered
    run_json, out_md = tmp_path / "run.json", tmp_path / "BENCHMARKS.md"
    with open(os.path.join(REPO, "benchmarks", "last_run.json")) as f:
        run_json.write_text(f.read())
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    for command in (["benchmarks.distributed", "--batch", "8", "--steps", "2", "--rounds", "1", "--groups", "4",
                     "--ranks", "2", "--into", str(run_json)],
                    ["benchmarks.run", "--render", str(run_json), "--out", str(out_md)]):
        proc = subprocess.run([sys.executable, "-m", *command], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    result = [r for r in json.loads(run_json.read_text())["distributed"] if r["batch"] == 8]
    assert len(result) == 1 and result[0]["bit_identical"] is True
    assert {r["mode"] for r in result[0]["rows"]} >= {"plain", "grouped"}
    text = out_md.read_text()
    assert "## Distributed training" in text and "Batch 8 (load average" in text and "| fit(groups=4) |" in text
