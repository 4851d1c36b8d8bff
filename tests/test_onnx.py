"""rnnkit.onnx.export: every cell, stack, wrapper and layer runs in ONNX
Runtime with rnnkit's outputs and final states (float32 rounding; float64
to 1e-10), on ragged batches with a length-0 row, with and without initial
states, at batch sizes and lengths of several shapes from one exported file.
Skipped when onnx or onnxruntime is not installed."""

import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="ONNX export needs the onnx extra: pip install rnnkit[onnx]")
ort = pytest.importorskip("onnxruntime", reason="ONNX export tests run the models in onnxruntime: pip install rnnkit[onnx]")

import rnnkit  # noqa: E402
import rnnkit.onnx  # noqa: E402
from helpers import assert_close, rng  # noqa: E402

D, H, P, V = 3, 4, 2, 6
# (batch, steps, lengths): one exported file serves every shape
SHAPES = [(3, 5, [5, 0, 2]), (2, 2, [1, 2])]


def randomize(cell, seed=0):
    """Every variable, biases included, from U(-1, 1) (so clips and relu bite)."""
    r = rng(seed)
    for name, value in cell.variables.items():
        cell.variables[name] = r.uniform(-1, 1, value.shape).astype(value.dtype)
    return cell


CELLS = {
    "rnn_tanh": lambda dt, d: rnnkit.BasicRNNCell(H, dtype=dt, input_depth=d),
    "rnn_relu": lambda dt, d: rnnkit.BasicRNNCell(H, activation="relu", dtype=dt, input_depth=d),
    "rnn_linear": lambda dt, d: rnnkit.BasicRNNCell(H, activation="linear", dtype=dt, input_depth=d),
    "basic_lstm": lambda dt, d: rnnkit.BasicLSTMCell(H, forget_bias=0.3, dtype=dt, input_depth=d),
    "basic_lstm_sigmoid": lambda dt, d: rnnkit.BasicLSTMCell(H, activation="sigmoid", dtype=dt, input_depth=d),
    "basic_lstm_concat_state": lambda dt, d: rnnkit.BasicLSTMCell(H, state_is_tuple=False, dtype=dt, input_depth=d),
    "lstm_peepholes": lambda dt, d: rnnkit.LSTMCell(H, use_peepholes=True, forget_bias=0.7, dtype=dt, input_depth=d),
    "lstm_proj": lambda dt, d: rnnkit.LSTMCell(H, num_proj=P, dtype=dt, input_depth=d),
    "lstm_clips": lambda dt, d: rnnkit.LSTMCell(H, use_peepholes=True, cell_clip=0.4, num_proj=P, proj_clip=0.3,
                                                dtype=dt, input_depth=d),
    "lstm_cell_clip": lambda dt, d: rnnkit.LSTMCell(H, cell_clip=0.3, dtype=dt, input_depth=d),
    "gru": lambda dt, d: rnnkit.GRUCell(H, dtype=dt, input_depth=d),
    "gru_relu": lambda dt, d: rnnkit.GRUCell(H, activation="relu", dtype=dt, input_depth=d),
    "gru_reset_after": lambda dt, d: rnnkit.GRUCell(H, reset_after=True, dtype=dt, input_depth=d),
}


def make_cell(kind, dtype=np.float32, depth=D, seed=0):
    return randomize(CELLS[kind](dtype, depth), seed)


def session(model, tmp_path, **kw):
    path = tmp_path / "model.onnx"
    proto = rnnkit.onnx.export(model, path, **kw)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    assert isinstance(proto, onnx.ModelProto)
    options = ort.SessionOptions()
    options.log_severity_level = 3  # ORT's notice that the optional inputs are overridable initializers
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run(sess, **feed):
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, feed)))


def random_state(cell, batch, seed):
    """The cell's state structure at random."""
    r = rng(seed)
    zero = cell.zero_state(batch)
    return _map(zero, lambda a: r.uniform(-1, 1, a.shape).astype(a.dtype))


def _map(state, f):
    if isinstance(state, tuple):
        return type(state)(*[_map(s, f) for s in state]) if hasattr(state, "_fields") else \
            tuple(_map(s, f) for s in state)
    return f(state)


def state_feed(state, name):
    """{graph input name: array} for a state structure (as export names them)."""
    if isinstance(state, tuple) and hasattr(state, "_fields"):
        return {f"{name}.c": state.c, f"{name}.h": state.h}
    if isinstance(state, tuple):
        out = {}
        for i, s in enumerate(state):
            out.update(state_feed(s, f"{name}[{i}]"))
        return out
    return {name: state}


def inputs(batch, steps, dtype, depth=D, seed=3):
    return rng(seed).normal(size=(batch, steps, depth)).astype(dtype)


def token_ids(batch, steps, seed=4):
    return rng(seed).integers(0, V, size=(batch, steps))


def check_rnn(sess, cell, x, lengths, initial, time_major=False):
    """The session against dynamic_rnn."""
    want_out, want_state = rnnkit.dynamic_rnn(cell, x, lengths, initial, time_major=time_major)
    feed = {"inputs": x}
    if lengths is not None:
        feed["sequence_length"] = np.asarray(lengths, np.int64)
    if initial is not None:
        feed.update(state_feed(initial, "initial_state"))
    got = run(sess, **feed)
    assert_close(got["outputs"], want_out)
    want = state_feed(want_state, "final_state")
    assert set(got) == {"outputs", *want}
    for name, value in want.items():
        assert_close(got[name], value, err_msg=name)
    return got


# ---- cells, one operator or Scan each ----------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(CELLS))
def test_every_cell_matches_dynamic_rnn(kind, tmp_path):
    cell = make_cell(kind)
    sess = session(rnnkit.RNN(cell), tmp_path)
    for batch, steps, lengths in SHAPES:
        x = inputs(batch, steps, np.float32)
        check_rnn(sess, cell, x, lengths, random_state(cell, batch, 5))  # row of length 0 keeps its state
        check_rnn(sess, cell, x, None, None)  # every row full, zero state: the inputs' defaults


@pytest.mark.parametrize("kind", ["rnn_tanh", "rnn_relu", "basic_lstm", "lstm_peepholes", "gru", "gru_reset_after"])
def test_scan_bodies_match_the_operators_cells(kind, tmp_path, monkeypatch):
    """The Scan path (used where an operator cannot express the cell) on the
    cells the operators take, in float32."""
    cell = make_cell(kind)
    monkeypatch.setattr(rnnkit.onnx, "_operator_expresses", lambda cell: False)
    sess = session(cell, tmp_path)
    assert "Scan" in {n.op_type for n in onnx.load(str(tmp_path / "model.onnx")).graph.node}
    batch, steps, lengths = SHAPES[0]
    check_rnn(sess, cell, inputs(batch, steps, np.float32), lengths, random_state(cell, batch, 5))


@pytest.mark.parametrize("kind,op", [("rnn_tanh", "RNN"), ("basic_lstm", "LSTM"), ("lstm_peepholes", "LSTM"),
                                     ("gru", "GRU"), ("gru_reset_after", "GRU"), ("lstm_proj", "Scan"),
                                     ("lstm_cell_clip", "Scan"), ("rnn_linear", "Scan")])
def test_operator_choice(kind, op, tmp_path):
    """ONNX's own operators where they express the cell exactly; Scan otherwise."""
    path = tmp_path / "m.onnx"
    rnnkit.onnx.export(make_cell(kind), path)
    nodes = {n.op_type: n for n in onnx.load(str(path)).graph.node}
    assert op in nodes
    if kind.startswith("gru"):
        attrs = {a.name: a for a in nodes["GRU"].attribute}
        assert attrs["linear_before_reset"].i == (kind == "gru_reset_after")


@pytest.mark.parametrize("kind", ["basic_lstm", "lstm_clips", "gru", "gru_reset_after", "rnn_relu"])
def test_float64_models_export_in_float64(kind, tmp_path):
    """ONNX Runtime's recurrent operators are float32 only: float64 cells run
    as Scan bodies in float64, to float64's rounding."""
    cell = make_cell(kind, np.float64)
    sess = session(cell, tmp_path)
    assert sess.get_inputs()[0].type == "tensor(double)"
    batch, steps, lengths = SHAPES[0]
    got = check_rnn(sess, cell, inputs(batch, steps, np.float64), lengths, random_state(cell, batch, 5))
    assert got["outputs"].dtype == np.float64


def test_time_major(tmp_path):
    cell = make_cell("lstm_peepholes")
    sess = session(cell, tmp_path, batch_major=False)
    x = inputs(5, 3, np.float32).transpose(1, 0, 2).copy()  # [T=3, B=5, D]
    check_rnn(sess, cell, x, [3, 0, 1, 2, 3], random_state(cell, 5, 1), time_major=True)


# ---- stacks, wrappers, token ids ---------------------------------------------------------------------------
def test_multi_rnn_cell_mixes_operators_and_scans(tmp_path):
    cells = [make_cell("basic_lstm", seed=1), make_cell("gru", depth=H, seed=2),
             make_cell("lstm_clips", depth=H, seed=3), make_cell("rnn_tanh", depth=P, seed=4)]
    cell = rnnkit.MultiRNNCell(cells)
    sess = session(rnnkit.RNN(cell), tmp_path)
    for batch, steps, lengths in SHAPES:
        x = inputs(batch, steps, np.float32)
        check_rnn(sess, cell, x, lengths, random_state(cell, batch, 6))
        check_rnn(sess, cell, x, lengths, None)


def test_wrappers(tmp_path):
    """ResidualWrapper adds the inputs on live steps; DropoutWrapper is the
    identity at inference."""
    inner = [rnnkit.ResidualWrapper(make_cell("gru", depth=H, seed=1)),
             rnnkit.DropoutWrapper(make_cell("lstm_proj", depth=H, seed=2), input_keep_prob=0.5,
                                   output_keep_prob=0.5, state_keep_prob=0.5, seed=3)]
    cell = rnnkit.MultiRNNCell([make_cell("rnn_tanh", seed=0)] + inner)
    sess = session(cell, tmp_path)
    batch, steps, lengths = SHAPES[0]
    check_rnn(sess, cell, inputs(batch, steps, np.float32), lengths, random_state(cell, batch, 2))


@pytest.mark.parametrize("kind", ["basic_lstm", "lstm_peepholes", "gru", "gru_reset_after", "rnn_tanh", "lstm_proj"])
def test_token_ids(kind, tmp_path):
    """int64 ids [B, T]: the rows of the input kernel they select."""
    cell = rnnkit.MultiRNNCell([make_cell(kind, depth=V), make_cell("gru", depth=cell_width(kind), seed=2)])
    sess = session(cell, tmp_path, token_ids=True)
    assert sess.get_inputs()[0].type == "tensor(int64)"
    for batch, steps, lengths in SHAPES:
        check_rnn(sess, cell, token_ids(batch, steps), lengths, random_state(cell, batch, 3))


def cell_width(kind):
    return P if kind == "lstm_proj" else H


# ---- Bidirectional, Dense, Sequential ---------------------------------------------------------------------
def test_bidirectional(tmp_path):
    fw, bw = make_cell("lstm_peepholes", seed=1), make_cell("gru_reset_after", seed=2)
    sess = session(rnnkit.Bidirectional(fw, bw), tmp_path)
    for batch, steps, lengths in SHAPES:
        x = inputs(batch, steps, np.float32)
        s_fw, s_bw = random_state(fw, batch, 3), random_state(bw, batch, 4)
        (out_fw, out_bw), (f_fw, f_bw) = rnnkit.bidirectional_dynamic_rnn(fw, bw, x, lengths, s_fw, s_bw)
        got = run(sess, inputs=x, sequence_length=np.array(lengths, np.int64),
                  **state_feed(s_fw, "initial_state_fw"), **state_feed(s_bw, "initial_state_bw"))
        assert_close(got["outputs_fw"], out_fw)
        assert_close(got["outputs_bw"], out_bw)
        for name, value in {**state_feed(f_fw, "final_state_fw"), **state_feed(f_bw, "final_state_bw")}.items():
            assert_close(got[name], value, err_msg=name)


def test_bidirectional_token_ids(tmp_path):
    fw, bw = make_cell("basic_lstm", depth=V, seed=1), make_cell("lstm_proj", depth=V, seed=2)
    sess = session(rnnkit.Bidirectional(fw, bw), tmp_path, token_ids=True)
    batch, steps, lengths = SHAPES[0]
    ids = token_ids(batch, steps)
    (out_fw, out_bw), _ = rnnkit.bidirectional_dynamic_rnn(fw, bw, ids, lengths)
    got = run(sess, inputs=ids, sequence_length=np.array(lengths, np.int64))
    assert_close(got["outputs_fw"], out_fw)
    assert_close(got["outputs_bw"], out_bw)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense(dtype, tmp_path):
    dense = rnnkit.Dense(5, dtype=dtype, input_depth=D)
    dense.variables["bias"] = rng(1).normal(size=5).astype(dense.dtype)
    sess = session(dense, tmp_path)
    for shape in [(4, 1, D), (2, 3, D)]:
        x = rng(2).normal(size=shape).astype(dtype)
        assert_close(run(sess, inputs=x)["outputs"], dense(x))


def sequential(cell):
    dense = rnnkit.Dense(5, input_depth=cell.output_size)
    dense.variables["bias"] = rng(1).normal(size=5).astype(dense.dtype)
    return rnnkit.Sequential([rnnkit.RNN(cell), dense])


@pytest.mark.parametrize("batch_major", [True, False])
def test_sequential(batch_major, tmp_path):
    cell = rnnkit.MultiRNNCell([make_cell("basic_lstm", seed=1), make_cell("lstm_clips", depth=H, seed=2)])
    model = sequential(cell)
    sess = session(model, tmp_path, batch_major=batch_major)
    for batch, steps, lengths in SHAPES:
        x = inputs(batch, steps, np.float32)
        want = model.predict(x, sequence_length=lengths)
        feed_x = x if batch_major else x.transpose(1, 0, 2).copy()
        got = run(sess, inputs=feed_x, sequence_length=np.array(lengths, np.int64))
        assert_close(got["outputs"] if batch_major else got["outputs"].transpose(1, 0, 2), want)
        # the recurrent layer's final state is an output too
        _, state = rnnkit.dynamic_rnn(cell, x, lengths)
        assert_close(got["final_state[0][1].h"], state[1].h)


def test_sequential_token_ids(tmp_path):
    model = sequential(make_cell("gru", depth=V))
    sess = session(model, tmp_path, token_ids=True)
    batch, steps, lengths = SHAPES[0]
    ids = token_ids(batch, steps)
    assert_close(run(sess, inputs=ids, sequence_length=np.array(lengths, np.int64))["outputs"],
                 model.predict(ids, sequence_length=lengths))


@pytest.mark.parametrize("opset", [14, None, "newest"])
def test_opsets(opset, tmp_path):
    opset = onnx.defs.onnx_opset_version() if opset == "newest" else opset
    cell = make_cell("lstm_clips")
    try:
        sess = session(cell, tmp_path, opset=opset)
    except Exception as e:  # an onnxruntime older than onnx's newest opset
        if opset != onnx.defs.onnx_opset_version() or "opset" not in str(e).lower():
            raise
        pytest.skip(f"this onnxruntime does not run opset {opset}")
    batch, steps, lengths = SHAPES[0]
    check_rnn(sess, cell, inputs(batch, steps, np.float32), lengths, None)


# ---- bad input -------------------------------------------------------------------------------------------
def test_bad_arguments(tmp_path):
    cell = make_cell("gru")
    path = tmp_path / "m.onnx"
    with pytest.raises(TypeError, match="model must be a Sequential, RNN, Bidirectional or Dense"):
        rnnkit.onnx.export(object(), path)
    with pytest.raises(ValueError, match=r"opset must be an int in \[14, "):
        rnnkit.onnx.export(cell, path, opset=9)
    with pytest.raises(TypeError, match="batch_major must be a bool"):
        rnnkit.onnx.export(cell, path, batch_major="yes")
    with pytest.raises(TypeError, match="path must be a str or os.PathLike"):
        rnnkit.onnx.export(cell, 3)
    with pytest.raises(ValueError, match=r"model layer 0 \(RNN\) is not built"):
        rnnkit.onnx.export(rnnkit.GRUCell(3), path)
    with pytest.raises(ValueError, match="token_ids=True needs a recurrent or Embedding first layer"):
        rnnkit.onnx.export(rnnkit.Dense(2, input_depth=3), path, token_ids=True)
    with pytest.raises(TypeError, match="cannot export a LayerNormBasicLSTMCell cell"):
        rnnkit.onnx.export(rnnkit.LayerNormBasicLSTMCell(3, input_depth=2), path)
    with pytest.raises(ValueError, match="a ResidualWrapper needs float inputs"):
        rnnkit.onnx.export(rnnkit.ResidualWrapper(make_cell("gru", depth=H)), path, token_ids=True)
    assert not path.exists()


def test_export_names_the_extra_without_onnx(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(ImportError, match=r"pip install rnnkit\[onnx\]"):
        rnnkit.onnx.export(make_cell("gru"), tmp_path / "m.onnx")


def test_importing_rnnkit_does_not_import_onnx():
    import subprocess
    code = "import sys, rnnkit, rnnkit.onnx; assert 'onnx' not in sys.modules and 'onnxruntime' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_sequential_of_two_precisions(tmp_path):
    """A float64 recurrent layer under a float32 head: a Cast between them, as Dense converts its input."""
    model = sequential(make_cell("lstm_clips", np.float64))
    sess = session(model, tmp_path)
    batch, steps, lengths = SHAPES[0]
    x = inputs(batch, steps, np.float64)
    got = run(sess, inputs=x, sequence_length=np.array(lengths, np.int64))
    assert got["outputs"].dtype == np.float32
    assert_close(got["outputs"], model.predict(x, sequence_length=lengths))


# ---- Embedding and return_sequences=False ------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["basic_lstm", "lstm_proj", "gru"])
def test_rnn_last_outputs(kind, tmp_path):
    """return_sequences=False: each row's output at its last valid step (zeros for length 0)."""
    cell = make_cell(kind)
    layer = rnnkit.RNN(cell, return_sequences=False)
    sess = session(layer, tmp_path)
    for batch, steps, lengths in SHAPES:
        x = inputs(batch, steps, np.float32)
        initial = random_state(cell, batch, 5)
        want, state = rnnkit.RNN(cell, return_sequences=False)(x, lengths, initial)
        got = run(sess, inputs=x, sequence_length=np.array(lengths, np.int64), **state_feed(initial, "initial_state"))
        assert got["outputs"].shape == (batch, cell.output_size)
        assert_close(got["outputs"], want)
        for name, value in state_feed(state, "final_state").items():
            assert_close(got[name], value, err_msg=name)
        assert_close(run(sess, inputs=x)["outputs"], layer(x)[0])  # without lengths: step T - 1


def test_bidirectional_last_outputs(tmp_path):
    fw, bw = make_cell("gru", seed=1), make_cell("lstm_proj", seed=2)
    layer = rnnkit.Bidirectional(fw, bw, return_sequences=False)
    sess = session(layer, tmp_path)
    batch, steps, lengths = SHAPES[0]
    x = inputs(batch, steps, np.float32)
    want, _ = layer(x, lengths)
    got = run(sess, inputs=x, sequence_length=np.array(lengths, np.int64))
    assert_close(got["outputs"], want)


def test_embedding(tmp_path):
    embedding = rnnkit.Embedding(V, 3, seed=1)
    sess = session(embedding, tmp_path)
    ids = token_ids(2, 4)
    assert_close(run(sess, inputs=ids)["outputs"], embedding(ids))


def test_sequential_embedding_last_outputs(tmp_path):
    """Embedding -> stacked recurrent layers -> last outputs -> Dense, from token ids."""
    cell = rnnkit.MultiRNNCell([make_cell("lstm_peepholes", seed=1), make_cell("lstm_clips", depth=H, seed=2)])
    dense = rnnkit.Dense(5, input_depth=P)
    model = rnnkit.Sequential([rnnkit.Embedding(V, D, seed=3), rnnkit.RNN(cell, return_sequences=False), dense])
    sess = session(model, tmp_path)
    assert sess.get_inputs()[0].type == "tensor(int64)"
    for batch, steps, lengths in SHAPES:
        ids = token_ids(batch, steps)
        got = run(sess, inputs=ids, sequence_length=np.array(lengths, np.int64))
        assert got["outputs"].shape == (batch, 5)
        assert_close(got["outputs"], model.predict(ids, sequence_length=lengths))


@pytest.mark.parametrize("kind", ["gru", "lstm_proj"])  # an operator, a Scan
def test_graph_rejects_bad_lengths_and_ids(kind, tmp_path):
    """What rnnkit refuses, the graph refuses too, on a node named after the rule."""
    sess = session(make_cell(kind, depth=V), tmp_path, token_ids=True)
    ids = token_ids(2, 3)
    for lengths in ([4, 1], [-1, 2]):
        with pytest.raises(Exception, match=r"sequence_length must lie in \[0, T\]"):
            run(sess, inputs=ids, sequence_length=np.array(lengths, np.int64))
    for bad in (V, -1):
        wrong = ids.copy()
        wrong[1, 2] = bad
        with pytest.raises(Exception, match=rf"token ids must lie in \[0, {V}\)"):
            run(sess, inputs=wrong)
    assert run(sess, inputs=ids, sequence_length=np.array([3, 0], np.int64))["outputs"].shape[:2] == (2, 3)


def test_sequential_bidirectional_and_states(tmp_path):
    """Sequential's states are a list, one entry per recurrent layer (a
    Bidirectional's is (fw, bw)): the graph names them by that indexing."""
    fw, bw = make_cell("basic_lstm", seed=1), make_cell("gru", seed=2)
    top = make_cell("lstm_proj", depth=2 * H, seed=3)
    dense = rnnkit.Dense(5, input_depth=P)
    model = rnnkit.Sequential([rnnkit.Bidirectional(fw, bw), rnnkit.RNN(top), dense])
    sess = session(model, tmp_path)
    batch, steps, lengths = SHAPES[0]
    x = inputs(batch, steps, np.float32)
    initial = [(random_state(fw, batch, 4), random_state(bw, batch, 5)), random_state(top, batch, 6)]
    want = model.predict(x, sequence_length=lengths, initial_state=initial)
    feed = {**state_feed(initial[0][0], "initial_state[0][0]"), **state_feed(initial[0][1], "initial_state[0][1]"),
            **state_feed(initial[1], "initial_state[1]")}
    got = run(sess, inputs=x, sequence_length=np.array(lengths, np.int64), **feed)
    assert_close(got["outputs"], want)
    final = model.final_state
    for name, value in {**state_feed(final[0][0], "final_state[0][0]"), **state_feed(final[0][1], "final_state[0][1]"),
                        **state_feed(final[1], "final_state[1]")}.items():
        assert_close(got[name], value, err_msg=name)
