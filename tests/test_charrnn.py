"""python -m rnnkit.charrnn: train, sample, resume, refusals, Ctrl-C."""

import json
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest

from rnnkit.charrnn import data, main

TINY = ["--rnn-size", "12", "--num-layers", "2", "--seq-length", "8", "--batch-size", "4", "--save-every", "3",
        "--threads", "1", "--val-frac", "0.1"]


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text("hello world, héllo wörld!\n" * 40, encoding="utf-8")
    return str(path)


def _json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _train(capsys, *args):
    rc = main(["train", *args])
    return rc, capsys.readouterr()


def test_train_then_sample(tmp_path, text_file, capsys):
    out_dir = str(tmp_path / "run")
    rc, out = _train(capsys, text_file, "--save-dir", out_dir, "--epochs", "2", *TINY)
    assert rc == 0, out.err
    assert "val_loss" in out.out and "chars/s" not in out.err
    assert re.search(r" - [0-9,]+ chars/s - loss: ", out.out), out.out  # a whole number of characters per second
    for name in ("model.npz", "vocab.json", "config.json", "train_state.json", "loss.csv"):
        assert os.path.isfile(os.path.join(out_dir, name)), name
    assert "é" in _json(os.path.join(out_dir, "vocab.json"))  # UTF-8 characters, not bytes
    state = _json(os.path.join(out_dir, "train_state.json"))
    assert len(state["history"]["loss"]) == 2 and state["history"]["loss"][1] < state["history"]["loss"][0]

    assert main(["sample", "--save-dir", out_dir, "-n", "30", "--prime", "hé", "--seed", "3"]) == 0
    first = capsys.readouterr().out
    assert first.startswith("hé") and len(first.rstrip("\n")) == 32
    assert main(["sample", "--save-dir", out_dir, "-n", "30", "--prime", "hé", "--seed", "3"]) == 0
    assert capsys.readouterr().out == first
    assert main(["sample", "--save-dir", out_dir, "-n", "10", "--num-samples", "3", "--top-k", "2"]) == 0
    assert capsys.readouterr().out.count("-" * 40) == 2


def test_resume_is_exact(tmp_path, text_file, capsys):
    straight, resumed = str(tmp_path / "a"), str(tmp_path / "b")
    assert _train(capsys, text_file, "--save-dir", straight, "--epochs", "2", "--dropout", "0.2", *TINY)[0] == 0
    assert _train(capsys, text_file, "--save-dir", resumed, "--epochs", "1", "--dropout", "0.2", *TINY)[0] == 0
    rc, out = _train(capsys, text_file, "--save-dir", resumed, "--init-from", resumed, "--epochs", "2")
    assert rc == 0, out.err
    with np.load(os.path.join(straight, "model.npz")) as a, np.load(os.path.join(resumed, "model.npz")) as b:
        assert sorted(a.files) == sorted(b.files) and any(k.endswith("/Adam") for k in a.files)
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_resume_refuses_other_options_and_text(tmp_path, text_file, capsys):
    out_dir = str(tmp_path / "run")
    assert _train(capsys, text_file, "--save-dir", out_dir, "--epochs", "1", *TINY)[0] == 0
    rc, out = _train(capsys, text_file, "--save-dir", out_dir, "--init-from", out_dir, "--rnn-size", "16")
    assert rc == 2 and "--rnn-size 16 (saved: 12)" in out.err
    other = tmp_path / "other.txt"
    other.write_text("xyz " * 300, encoding="utf-8")
    rc, out = _train(capsys, str(other), "--save-dir", out_dir, "--init-from", out_dir)
    assert rc == 2 and "vocabulary differs" in out.err


def test_bad_prime_names_the_characters(tmp_path, text_file, capsys):
    out_dir = str(tmp_path / "run")
    assert _train(capsys, text_file, "--save-dir", out_dir, "--epochs", "1", *TINY)[0] == 0
    assert main(["sample", "--save-dir", out_dir, "--prime", "hello QZ"]) == 2
    err = capsys.readouterr().err
    assert "--prime" in err and "'Q'" in err and "'Z'" in err
    assert main(["sample", "--save-dir", str(tmp_path / "nowhere")]) == 2
    assert "config.json" in capsys.readouterr().err


def test_default_corpus_is_the_stdlib():
    text = data.default_corpus(limit=5000)
    assert len(text) == 5000 and text == data.default_corpus(limit=5000)
    assert "def " in data.default_corpus(limit=200_000)


def test_ctrl_c_saves_and_exits_cleanly(tmp_path):
    path = tmp_path / "long.txt"
    path.write_text("the quick brown fox jumps over the lazy dog. " * 400, encoding="utf-8")
    out_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "rnnkit.charrnn", "train", str(path), "--save-dir", str(out_dir), "--epochs", "1000",
           "--rnn-size", "16", "--num-layers", "1", "--seq-length", "8", "--batch-size", "4", "--save-every", "100000",
           "--threads", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # printed once training (and the Ctrl-C handler) has started
        assert line.startswith("charrnn:"), line + proc.stderr.read()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "checkpoint saved" in out
    state = _json(out_dir / "train_state.json")
    assert state["step"] >= 1 and os.path.isfile(out_dir / "model.npz")
