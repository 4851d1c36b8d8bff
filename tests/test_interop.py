"""rnnkit.interop: to_torch / from_torch give modules and cells with the same
outputs and final states, round trips keep every bit, and what has no
equivalent is a clear error. Skipped when torch is not installed."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import rnnkit  # noqa: E402
from helpers import assert_close, rng  # noqa: E402
from rnnkit.interop import from_torch, to_torch  # noqa: E402

GRUCell = getattr(rnnkit, "GRUCell", None)
needs_gru = pytest.mark.skipif(GRUCell is None, reason="GRUCell is not on this branch yet (added on branch 'gru')")
gru_param = dict(marks=needs_gru)

# torch's own notice that its oneDNN path lacks projections; it then uses its default kernel
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN:UserWarning")

B, T, D, H, P = 3, 6, 4, 5, 2
DTYPES = [np.float32, np.float64]


# ---- running both sides ---------------------------------------------------------------------------------
def randomize(cell, seed=0):
    """Every variable, biases included, drawn from U(-0.5, 0.5)."""
    r = rng(seed)
    for name, value in cell.variables.items():
        cell.variables[name] = r.uniform(-0.5, 0.5, value.shape).astype(cell.dtype)
    return cell


def is_lstm(cell):
    return isinstance(cell, rnnkit.LSTMCell)


def initial_states(cell, dtype, seed=1):
    """(h0 [B, R], c0 [B, H] or None) drawn at random."""
    r = rng(seed)
    h0 = r.normal(size=(B, cell.output_size)).astype(dtype)
    c0 = r.normal(size=(B, cell.num_units)).astype(dtype) if is_lstm(cell) else None
    return h0, c0


def run_rnnkit(cell, x, h0, c0):
    """(outputs [B, T, R], h [B, R], c [B, H] or None)."""
    if c0 is None:
        out, h = rnnkit.dynamic_rnn(cell, x, initial_state=h0)
        return out, h, None
    if cell.state_is_tuple:
        out, final = rnnkit.dynamic_rnn(cell, x, initial_state=rnnkit.LSTMStateTuple(c0, h0))
        return out, final.h, final.c
    out, final = rnnkit.dynamic_rnn(cell, x, initial_state=np.concatenate([c0, h0], axis=1))
    return out, final[:, cell.num_units:], final[:, :cell.num_units]


def run_torch(module, x, h0, c0):
    """The same triple from a torch module (batch_first either way)."""
    xt = torch.from_numpy(x if module.batch_first else np.ascontiguousarray(np.swapaxes(x, 0, 1)))
    hx = torch.from_numpy(h0)[None]
    with torch.no_grad():
        if c0 is None:
            out, h = module(xt, hx)
            c = None
        else:
            out, (h, c) = module(xt, (hx, torch.from_numpy(c0)[None]))
            c = c[0].numpy()
    out = out.numpy()
    return (out if module.batch_first else np.swapaxes(out, 0, 1)), h[0].numpy(), c


def assert_same_function(cell, module, dtype, seed=2):
    x = rng(seed).normal(size=(B, T, cell.input_depth)).astype(dtype)
    h0, c0 = initial_states(cell, dtype, seed + 1)
    ours, theirs = run_rnnkit(cell, x, h0, c0), run_torch(module, x, h0, c0)
    assert ours[0].shape == theirs[0].shape == (B, T, cell.output_size)
    for name, a, b in zip(("outputs", "final h", "final c"), ours, theirs):
        if a is None:
            assert b is None
            continue
        assert_close(a, b, dtype, err_msg=name)


def assert_identical_cells(a, b):
    assert type(a) is type(b)
    assert a.dtype == b.dtype and a.input_depth == b.input_depth and a.num_units == b.num_units
    assert list(a.variables) == list(b.variables)
    for name in a.variables:
        np.testing.assert_array_equal(a.variables[name], b.variables[name], err_msg=name)


# ---- rnnkit -> torch ----------------------------------------------------------------------------------------
CELLS = {
    "BasicRNNCell-tanh": lambda dt: rnnkit.BasicRNNCell(H, dtype=dt, input_depth=D),
    "BasicRNNCell-relu": lambda dt: rnnkit.BasicRNNCell(H, activation="relu", dtype=dt, input_depth=D),
    "BasicLSTMCell": lambda dt: rnnkit.BasicLSTMCell(H, dtype=dt, input_depth=D),
    "BasicLSTMCell-fb0.5-concat-state": lambda dt: rnnkit.BasicLSTMCell(
        H, forget_bias=0.5, state_is_tuple=False, dtype=dt, input_depth=D),
    "LSTMCell": lambda dt: rnnkit.LSTMCell(H, dtype=dt, input_depth=D),
    "LSTMCell-num_proj": lambda dt: rnnkit.LSTMCell(H, num_proj=P, dtype=dt, input_depth=D),
    "LSTMCell-num_proj-fb0": lambda dt: rnnkit.LSTMCell(H, num_proj=P, forget_bias=0.0, dtype=dt, input_depth=D),
    "GRUCell-reset_after": lambda dt: GRUCell(H, reset_after=True, dtype=dt, input_depth=D),
}
CELL_PARAMS = [pytest.param(k, **(gru_param if k.startswith("GRU") else {})) for k in CELLS]
TORCH_CLASS = {"BasicRNNCell": "RNN", "BasicLSTMCell": "LSTM", "LSTMCell": "LSTM", "GRUCell": "GRU"}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", CELL_PARAMS)
def test_to_torch_same_outputs(kind, dtype):
    cell = randomize(CELLS[kind](dtype))
    module = to_torch(cell)
    assert type(module) is getattr(torch.nn, TORCH_CLASS[type(cell).__name__])
    assert module.batch_first and module.num_layers == 1 and not module.bidirectional
    assert all(p.dtype == {np.float32: torch.float32, np.float64: torch.float64}[dtype] for p in module.parameters())
    assert_same_function(cell, module, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", CELL_PARAMS)
def test_rnnkit_torch_rnnkit_keeps_every_bit(kind, dtype):
    cell = randomize(CELLS[kind](dtype))
    back = from_torch(to_torch(cell), forget_bias=getattr(cell, "forget_bias", 1.0))
    if type(cell) is rnnkit.LSTMCell and cell.num_proj is None:
        assert type(back) is rnnkit.BasicLSTMCell  # an nn.LSTM without proj_size comes back basic
        back = rnnkit.LSTMCell(H, forget_bias=back.forget_bias, dtype=dtype, input_depth=D)
        for name, value in from_torch(to_torch(cell)).variables.items():
            back.variables[name] = value
    assert_identical_cells(back, cell)
    for attr in ("activation", "forget_bias", "num_proj", "reset_after"):
        assert getattr(back, attr, None) == getattr(cell, attr, None), attr


def test_default_forget_bias_round_trip_is_exact():
    cell = randomize(rnnkit.BasicLSTMCell(H, input_depth=D))
    module = to_torch(cell)
    # TF's bias in bias_ih (torch's gate order), forget_bias on bias_hh's f block
    f = slice(H, 2 * H)
    np.testing.assert_array_equal(module.bias_ih_l0.detach().numpy()[f], cell.variables["bias"][2 * H:3 * H])
    np.testing.assert_array_equal(module.bias_hh_l0.detach().numpy(), np.r_[np.zeros(H), np.ones(H), np.zeros(2 * H)])
    assert_identical_cells(from_torch(module), cell)


def test_to_torch_does_not_draw_from_torchs_rng():
    state = torch.random.get_rng_state()
    to_torch(randomize(rnnkit.BasicLSTMCell(H, input_depth=D)))
    assert torch.equal(torch.random.get_rng_state(), state)


def test_to_torch_takes_an_rnn_layer():
    cell = randomize(rnnkit.BasicRNNCell(H, input_depth=D))
    assert_same_function(cell, to_torch(rnnkit.RNN(cell)), np.float32)


# ---- torch -> rnnkit ----------------------------------------------------------------------------------------
MODULES = {
    "RNN-tanh": lambda: torch.nn.RNN(D, H, batch_first=True),
    "RNN-relu": lambda: torch.nn.RNN(D, H, nonlinearity="relu"),
    "LSTM": lambda: torch.nn.LSTM(D, H, batch_first=True),
    "LSTM-proj_size": lambda: torch.nn.LSTM(D, H, proj_size=P),
    "GRU": lambda: torch.nn.GRU(D, H, batch_first=True),
}
MODULE_PARAMS = [pytest.param(k, **(gru_param if k.startswith("GRU") else {})) for k in MODULES]


def random_module(kind, dtype, seed=0):
    """torch's own initialisation (non-zero biases), plus distinct bias_hh values."""
    torch.manual_seed(seed)
    module = MODULES[kind]().to({np.float32: torch.float32, np.float64: torch.float64}[dtype])
    with torch.no_grad():
        module.bias_hh_l0.uniform_(-0.5, 0.5)
    return module


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", MODULE_PARAMS)
def test_from_torch_same_outputs(kind, dtype):
    module = random_module(kind, dtype)
    cell = from_torch(module)
    expected = {"RNN": rnnkit.BasicRNNCell, "LSTM": rnnkit.BasicLSTMCell, "GRU": GRUCell}[kind.split("-")[0]]
    if kind == "LSTM-proj_size":
        expected = rnnkit.LSTMCell
        assert cell.num_proj == P
    assert type(cell) is expected and cell.built and cell.input_depth == D and cell.dtype == dtype
    if kind.startswith("RNN"):
        assert cell.activation == kind.split("-")[1]
    if kind == "GRU":
        assert cell.reset_after
    if kind.startswith("LSTM"):
        assert cell.forget_bias == 1.0
    assert all(np.any(v != 0) for v in cell.variables.values())
    assert_same_function(cell, module, dtype)


@pytest.mark.parametrize("forget_bias", [0.0, 1.0, 2.5])
def test_from_torch_forget_bias_keeps_the_function(forget_bias):
    module = random_module("LSTM", np.float64)
    cell = from_torch(module, forget_bias=forget_bias)
    assert cell.forget_bias == forget_bias
    assert_same_function(cell, module, np.float64)


@pytest.mark.parametrize("kind", MODULE_PARAMS)
def test_torch_rnnkit_torch_same_function_and_weights(kind):
    module = random_module(kind, np.float32)
    again = to_torch(from_torch(module))
    for name, param in module.named_parameters():
        if name.startswith("weight"):
            np.testing.assert_array_equal(getattr(again, name).detach().numpy(), param.detach().numpy(), err_msg=name)
    cell = from_torch(module)
    x = rng(4).normal(size=(B, T, D)).astype(np.float32)
    h0, c0 = initial_states(cell, np.float32)
    for a, b in zip(run_torch(again, x, h0, c0), run_torch(module, x, h0, c0)):
        if a is not None:
            assert_close(a, b, np.float32)


# ---- errors -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("options, message", [
    (dict(use_peepholes=True), "use_peepholes=True"),
    (dict(cell_clip=3.0), "cell_clip=3.0"),
    (dict(num_proj=2, proj_clip=1.0), "proj_clip=1.0"),
    (dict(activation="relu"), "activation='relu'"),
    (dict(num_proj=H), f"num_proj={H} >= num_units={H}"),
])
def test_to_torch_lstm_without_equivalent(options, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")) as info:
        to_torch(rnnkit.LSTMCell(H, input_depth=D, **options))
    assert "no torch.nn.LSTM equivalent" in str(info.value)


def test_to_torch_errors():
    with pytest.raises(ValueError, match="activation='sigmoid'.*'tanh' or 'relu'"):
        to_torch(rnnkit.BasicRNNCell(H, activation="sigmoid", input_depth=D))
    with pytest.raises(ValueError, match="needs a built BasicLSTMCell.*input_depth"):
        to_torch(rnnkit.BasicLSTMCell(H))
    for obj in (rnnkit.MultiRNNCell([rnnkit.BasicRNNCell(H, input_depth=D)]),
                rnnkit.ResidualWrapper(rnnkit.BasicRNNCell(D, input_depth=D)), rnnkit.Dense(3, input_depth=D),
                rnnkit.LayerNormBasicLSTMCell(H, input_depth=D)):
        with pytest.raises(TypeError, match=f"got {type(obj).__name__}"):
            to_torch(obj)


@needs_gru
def test_to_torch_tf_gru_is_a_different_function():
    with pytest.raises(ValueError, match=r"reset_after=False.*different function"):
        to_torch(GRUCell(H, input_depth=D))
    with pytest.raises(ValueError, match="activation='relu'"):
        to_torch(GRUCell(H, reset_after=True, activation="relu", input_depth=D))


def test_from_torch_errors():
    with pytest.raises(TypeError, match="got Linear"):
        from_torch(torch.nn.Linear(3, 4))
    with pytest.raises(TypeError, match="got LSTMCell"):
        from_torch(torch.nn.LSTMCell(3, 4))
    with pytest.raises(ValueError, match="num_layers=2"):
        from_torch(torch.nn.LSTM(D, H, num_layers=2))
    with pytest.raises(ValueError, match="bidirectional=True"):
        from_torch(torch.nn.GRU(D, H, bidirectional=True))
    with pytest.raises(ValueError, match="bias=False"):
        from_torch(torch.nn.RNN(D, H, bias=False))
    module = torch.nn.LSTM(D, H)
    module.dropout = 0.5  # set afterwards: torch warns about dropout on a single layer
    with pytest.raises(ValueError, match="dropout=0.5"):
        from_torch(module)
    with pytest.raises(TypeError, match="torch.float16"):
        from_torch(torch.nn.RNN(D, H).half())
