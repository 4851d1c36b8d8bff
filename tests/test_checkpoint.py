"""save / load under TF1's checkpoint names: exact key names, round trips
into fresh (and unbuilt) objects, errors that name the key, and
load_tf_checkpoint through a fake reader (real TF1 files: test_tf_checkpoint.py)."""

import numpy as np
import pytest

import rnnkit
from helpers import rng

GRUCell = getattr(rnnkit, "GRUCell", None)
needs_gru = pytest.mark.skipif(GRUCell is None, reason="GRUCell is not on this branch yet (added on branch 'gru')")

B, T, D = 3, 5, 4


def randomize(obj, seed=0):
    """Non-zero values in every variable, so that a load that skips one shows."""
    r = rng(seed)
    for array in rnnkit.checkpoint_names(obj).values():
        array[...] = r.uniform(-0.5, 0.5, array.shape)
    return obj


def inputs(dtype=np.float32, depth=D):
    return rng(9).normal(size=(B, T, depth)).astype(dtype)


def assert_same_variables(a, b):
    na, nb = rnnkit.checkpoint_names(a), rnnkit.checkpoint_names(b)
    assert list(na) == list(nb)
    for key in na:
        assert na[key].dtype == nb[key].dtype, key
        np.testing.assert_array_equal(na[key], nb[key], err_msg=key)


def flat(tree):
    """Every array of a nested output / state structure."""
    if isinstance(tree, (tuple, list)):
        return [a for t in tree for a in flat(t)]
    return [np.asarray(tree)]


def assert_same_outputs(a, b):
    fa, fb = flat(a), flat(b)
    assert len(fa) == len(fb)
    for x, y in zip(fa, fb):
        np.testing.assert_array_equal(x, y)


# ---- models: (factory with a seed and whether to build, how to run it, expected names) ----------
def cell_model(make_cell):
    def make(seed, built=True):
        return make_cell(seed, D if built else None)
    return make, lambda m, x: rnnkit.dynamic_rnn(m, x)


MODELS = {
    "BasicRNNCell": (
        *cell_model(lambda seed, d: rnnkit.BasicRNNCell(3, input_depth=d, seed=seed)),
        ["rnn/basic_rnn_cell/kernel", "rnn/basic_rnn_cell/bias"],
    ),
    "BasicLSTMCell": (
        *cell_model(lambda seed, d: rnnkit.BasicLSTMCell(3, input_depth=d, seed=seed)),
        ["rnn/basic_lstm_cell/kernel", "rnn/basic_lstm_cell/bias"],
    ),
    "LSTMCell peepholes+proj": (
        *cell_model(lambda seed, d: rnnkit.LSTMCell(5, use_peepholes=True, num_proj=2, input_depth=d, seed=seed)),
        ["rnn/lstm_cell/kernel", "rnn/lstm_cell/bias", "rnn/lstm_cell/w_f_diag", "rnn/lstm_cell/w_i_diag",
         "rnn/lstm_cell/w_o_diag", "rnn/lstm_cell/projection/kernel"],
    ),
    "RNN(MultiRNNCell)": (
        lambda seed, built=True: rnnkit.RNN(rnnkit.MultiRNNCell([
            rnnkit.BasicLSTMCell(3, input_depth=D if built else None, seed=seed),
            rnnkit.ResidualWrapper(rnnkit.LSTMCell(3, seed=seed + 1)),
            rnnkit.DropoutWrapper(rnnkit.BasicRNNCell(2, seed=seed + 2), output_keep_prob=0.5)])),
        lambda m, x: m(x),
        ["rnn/multi_rnn_cell/cell_0/basic_lstm_cell/kernel", "rnn/multi_rnn_cell/cell_0/basic_lstm_cell/bias",
         "rnn/multi_rnn_cell/cell_1/lstm_cell/kernel", "rnn/multi_rnn_cell/cell_1/lstm_cell/bias",
         "rnn/multi_rnn_cell/cell_2/basic_rnn_cell/kernel", "rnn/multi_rnn_cell/cell_2/basic_rnn_cell/bias"],
    ),
    "Bidirectional": (
        lambda seed, built=True: rnnkit.Bidirectional(rnnkit.BasicLSTMCell(3, input_depth=D if built else None, seed=seed),
                                                   rnnkit.BasicRNNCell(2, input_depth=D if built else None, seed=seed + 1)),
        lambda m, x: m(x, sequence_length=[5, 2, 0]),
        ["bidirectional_rnn/fw/basic_lstm_cell/kernel", "bidirectional_rnn/fw/basic_lstm_cell/bias",
         "bidirectional_rnn/bw/basic_rnn_cell/kernel", "bidirectional_rnn/bw/basic_rnn_cell/bias"],
    ),
    "Dense": (
        lambda seed, built=True: rnnkit.Dense(6, input_depth=D if built else None, seed=seed),
        lambda m, x: m(x),
        ["dense/kernel", "dense/bias"],
    ),
    "Sequential": (
        lambda seed, built=True: rnnkit.Sequential([
            rnnkit.RNN(rnnkit.BasicLSTMCell(3, input_depth=D if built else None, seed=seed)),
            rnnkit.Dense(4, input_depth=3 if built else None, seed=seed + 1),
            rnnkit.RNN(rnnkit.BasicRNNCell(2, input_depth=4 if built else None, seed=seed + 2)),
            rnnkit.Dense(5, input_depth=2 if built else None, seed=seed + 3)]),
        lambda m, x: m.predict(x),
        ["rnn/basic_lstm_cell/kernel", "rnn/basic_lstm_cell/bias", "dense/kernel", "dense/bias",
         "rnn_1/basic_rnn_cell/kernel", "rnn_1/basic_rnn_cell/bias", "dense_1/kernel", "dense_1/bias"],
    ),
}
if GRUCell is not None:
    MODELS["RNN(MultiRNNCell with GRUs)"] = (
        lambda seed, built=True: rnnkit.RNN(rnnkit.MultiRNNCell([
            GRUCell(3, input_depth=D if built else None, seed=seed), GRUCell(2, reset_after=True, seed=seed + 1)])),
        lambda m, x: m(x),
        ["rnn/multi_rnn_cell/cell_0/gru_cell/gates/kernel", "rnn/multi_rnn_cell/cell_0/gru_cell/gates/bias",
         "rnn/multi_rnn_cell/cell_0/gru_cell/candidate/kernel", "rnn/multi_rnn_cell/cell_0/gru_cell/candidate/bias",
         "rnn/multi_rnn_cell/cell_1/gru_cell/gates/kernel", "rnn/multi_rnn_cell/cell_1/gru_cell/gates/bias",
         "rnn/multi_rnn_cell/cell_1/gru_cell/candidate/input/kernel",
         "rnn/multi_rnn_cell/cell_1/gru_cell/candidate/input/bias",
         "rnn/multi_rnn_cell/cell_1/gru_cell/candidate/hidden/kernel",
         "rnn/multi_rnn_cell/cell_1/gru_cell/candidate/hidden/bias"],
    )


def built_model(kind, seed=1):
    make, run, _ = MODELS[kind]
    model = make(seed)
    run(model, inputs())  # builds whatever input_depth left open
    return randomize(model, seed)


@pytest.mark.parametrize("kind", list(MODELS))
def test_key_names_are_tf1s(kind, tmp_path):
    model = built_model(kind)
    assert list(rnnkit.checkpoint_names(model)) == MODELS[kind][2]
    path = rnnkit.save(tmp_path / "model", model)
    assert path == str(tmp_path / "model.npz")
    with np.load(path) as npz:
        assert sorted(npz.files) == sorted(MODELS[kind][2])
        for key, array in rnnkit.checkpoint_names(model).items():
            np.testing.assert_array_equal(npz[key], array)


def test_checkpoint_names_are_the_live_arrays():
    cell = rnnkit.BasicLSTMCell(3, input_depth=2)
    names = rnnkit.checkpoint_names(rnnkit.RNN(cell))
    assert names["rnn/basic_lstm_cell/kernel"] is cell.variables["kernel"]
    assert rnnkit.checkpoint_names(rnnkit.BasicLSTMCell(3)) == {}  # unbuilt: no variables yet


@needs_gru
def test_gru_cell_names():
    cell = GRUCell(3, input_depth=2)
    assert list(rnnkit.checkpoint_names(cell)) == [
        "rnn/gru_cell/gates/kernel", "rnn/gru_cell/gates/bias",
        "rnn/gru_cell/candidate/kernel", "rnn/gru_cell/candidate/bias"]


def test_sequential_uniquifies_bidirectional_scopes():
    layers = [rnnkit.Bidirectional(rnnkit.BasicRNNCell(2, input_depth=3), rnnkit.BasicRNNCell(2, input_depth=3))
              for _ in range(2)]
    names = list(rnnkit.checkpoint_names(rnnkit.Sequential(layers)))
    assert names[0] == "bidirectional_rnn/fw/basic_rnn_cell/kernel"
    assert names[4] == "bidirectional_rnn_1/fw/basic_rnn_cell/kernel"


@pytest.mark.parametrize("kind", list(MODELS))
@pytest.mark.parametrize("built", [True, False], ids=["into_built", "into_unbuilt"])
def test_round_trip(kind, built, tmp_path):
    make, run, _ = MODELS[kind]
    model = built_model(kind, seed=1)
    path = rnnkit.save(tmp_path / "model.npz", model)
    fresh = make(seed=7, built=built)  # other initial values, maybe no variables yet
    assert rnnkit.load(path, fresh) is fresh
    assert_same_variables(fresh, model)
    x = inputs()
    assert_same_outputs(run(fresh, x), run(model, x))


def test_load_converts_dtype(tmp_path):
    source = randomize(rnnkit.BasicLSTMCell(3, input_depth=D, dtype=np.float64))
    path = rnnkit.save(tmp_path / "f64.npz", source)
    target = rnnkit.BasicLSTMCell(3, input_depth=D, dtype=np.float32)
    live = target.variables["kernel"]
    rnnkit.load(path, target)
    assert target.variables["kernel"] is live and live.dtype == np.float32  # written in place
    np.testing.assert_array_equal(live, source.variables["kernel"].astype(np.float32))


def test_load_is_in_place_for_optimizers(tmp_path):
    """Arrays held elsewhere (optimizer slots, layers) see the loaded values."""
    model = built_model("Sequential")
    path = rnnkit.save(tmp_path / "m.npz", model)
    fresh = MODELS["Sequential"][0](seed=5)
    before = list(rnnkit.checkpoint_names(fresh).values())
    rnnkit.load(path, fresh)
    for held, now in zip(before, rnnkit.checkpoint_names(fresh).values()):
        assert held is now


def test_file_object_and_unbuilt_dense(tmp_path):
    dense = randomize(rnnkit.Dense(3, input_depth=5))
    with open(tmp_path / "d.npz", "wb") as f:
        assert rnnkit.save(f, dense) is None
    fresh = rnnkit.Dense(3)
    with open(tmp_path / "d.npz", "rb") as f:
        rnnkit.load(f, fresh)
    assert fresh.input_depth == 5
    assert_same_variables(fresh, dense)


# ---- errors ---------------------------------------------------------------------------------------
def saved(tmp_path, arrays):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return path


def good_arrays(model):
    return {k: v.copy() for k, v in rnnkit.checkpoint_names(model).items()}


def test_missing_key_is_named(tmp_path):
    model = built_model("Sequential")
    arrays = good_arrays(model)
    del arrays["dense_1/bias"]
    with pytest.raises(ValueError, match=r"missing 'dense_1/bias'"):
        rnnkit.load(saved(tmp_path, arrays), MODELS["Sequential"][0](seed=3))


def test_wrong_shape_names_key_and_both_shapes(tmp_path):
    model = built_model("BasicLSTMCell")
    arrays = good_arrays(model)
    arrays["rnn/basic_lstm_cell/kernel"] = np.zeros((8, 12), np.float32)
    target = rnnkit.BasicLSTMCell(3, input_depth=D)  # kernel [7, 12]
    with pytest.raises(ValueError, match=r"'rnn/basic_lstm_cell/kernel' has shape \[8, 12\].*\[7, 12\]"):
        rnnkit.load(saved(tmp_path, arrays), target)


def test_extra_key_is_named_unless_not_strict(tmp_path):
    model = built_model("BasicLSTMCell")
    arrays = good_arrays(model)
    arrays["rnn/basic_lstm_cell/w_f_diag"] = np.zeros(3, np.float32)
    path = saved(tmp_path, arrays)
    target = rnnkit.BasicLSTMCell(3, input_depth=D, seed=5)
    with pytest.raises(ValueError, match=r"does not: 'rnn/basic_lstm_cell/w_f_diag'.*strict=False"):
        rnnkit.load(path, target)
    rnnkit.load(path, target, strict=False)
    assert_same_variables(target, model)


def test_failed_load_changes_nothing(tmp_path):
    model = built_model("Sequential")
    arrays = good_arrays(model)
    arrays["dense_1/kernel"] = np.zeros((3, 5), np.float32)  # the last layer's is [2, 5]
    target = MODELS["Sequential"][0](seed=3)
    before = {k: v.copy() for k, v in rnnkit.checkpoint_names(target).items()}
    with pytest.raises(ValueError, match="dense_1/kernel"):
        rnnkit.load(saved(tmp_path, arrays), target)
    for key, value in rnnkit.checkpoint_names(target).items():
        np.testing.assert_array_equal(value, before[key])
    unbuilt = MODELS["Sequential"][0](seed=3, built=False)
    with pytest.raises(ValueError, match="'dense_1' give Dense input depth 3, but the layer before it .'rnn_1'. outputs depth 2"):
        rnnkit.load(saved(tmp_path, arrays), unbuilt)
    assert not unbuilt.layers[0].cell.built  # not even built


def test_non_float_array_is_named(tmp_path):
    arrays = good_arrays(built_model("Dense"))
    arrays["dense/bias"] = np.zeros(6, np.int64)
    with pytest.raises(TypeError, match=r"'dense/bias' has dtype int64"):
        rnnkit.load(saved(tmp_path, arrays), rnnkit.Dense(6, input_depth=D))


def test_unbuilt_cannot_be_saved_and_needs_its_kernel_in_the_file(tmp_path):
    with pytest.raises(ValueError, match=r"BasicLSTMCell at 'rnn/basic_lstm_cell' is not built.*input_depth"):
        rnnkit.save(tmp_path / "x.npz", rnnkit.RNN(rnnkit.BasicLSTMCell(3)))
    path = saved(tmp_path, {"rnn/basic_lstm_cell/bias": np.zeros(12, np.float32)})
    with pytest.raises(ValueError, match=r"not built.*'rnn/basic_lstm_cell/kernel'"):
        rnnkit.load(path, rnnkit.BasicLSTMCell(3))


def test_bidirectional_depths_must_agree(tmp_path):
    arrays = good_arrays(rnnkit.Bidirectional(rnnkit.BasicRNNCell(2, input_depth=3), rnnkit.BasicRNNCell(2, input_depth=4)))
    with pytest.raises(ValueError, match="fw cell has input depth 3 and the bw cell 4"):
        rnnkit.load(saved(tmp_path, arrays), rnnkit.Bidirectional(rnnkit.BasicRNNCell(2), rnnkit.BasicRNNCell(2)))


def test_unsupported_objects():
    with pytest.raises(TypeError, match="got AdamOptimizer"):
        rnnkit.checkpoint_names(rnnkit.AdamOptimizer())
    with pytest.raises(TypeError, match="got dict"):
        rnnkit.save("unused.npz", {"a": np.zeros(2)})


def test_scope_map(tmp_path):
    model = built_model("Sequential")
    names = rnnkit.checkpoint_names(model, scope_map={"rnn": "encoder/rnn", "dense_1": "softmax"})
    assert list(names)[:3] == ["encoder/rnn/basic_lstm_cell/kernel", "encoder/rnn/basic_lstm_cell/bias", "dense/kernel"]
    assert "softmax/kernel" in names and "rnn_1/basic_rnn_cell/bias" in names
    path = rnnkit.save(tmp_path / "m.npz", model, scope_map={"rnn": "encoder/rnn"})
    fresh = MODELS["Sequential"][0](seed=4)
    with pytest.raises(ValueError, match="missing 'rnn/basic_lstm_cell/kernel'"):
        rnnkit.load(path, fresh)
    rnnkit.load(path, fresh, scope_map={"rnn": "encoder/rnn"})
    assert_same_variables(fresh, model)
    assert list(rnnkit.checkpoint_names(model, scope_map={"rnn": ""}))[0] == "basic_lstm_cell/kernel"
    with pytest.raises(ValueError, match="scope_map key 'rnn_7' matches none"):
        rnnkit.checkpoint_names(model, scope_map={"rnn_7": "x"})


# ---- TF1 checkpoints ------------------------------------------------------------------------------
class FakeReader:
    """What tf.train.load_checkpoint returns, over a dict."""

    def __init__(self, tensors):
        self.tensors = tensors
        self.read = []

    def get_variable_to_shape_map(self):
        return {k: list(v.shape) for k, v in self.tensors.items()}

    def get_tensor(self, name):
        self.read.append(name)
        return self.tensors[name]


def tf_checkpoint_of(model, scope_map=None):
    """A TF1 training checkpoint's contents: the variables, Adam's slots, the
    step counter and an unrelated scope."""
    tensors = {}
    for key, value in rnnkit.checkpoint_names(model, scope_map).items():
        tensors[key] = value.astype(np.float32)
        tensors[key + "/Adam"] = np.zeros_like(tensors[key])
        tensors[key + "/Adam_1"] = np.zeros_like(tensors[key])
    tensors.update({"global_step": np.array(100, np.int64), "beta1_power": np.array(0.9, np.float32),
                    "embedding/weights": np.ones((7, 4), np.float32)})
    return tensors


def test_tf_checkpoint_through_a_reader():
    model = built_model("Sequential")
    reader = FakeReader(tf_checkpoint_of(model))
    fresh = MODELS["Sequential"][0](seed=2, built=False)
    assert rnnkit.load_tf_checkpoint(reader, fresh) is fresh
    assert_same_variables(fresh, model)
    assert sorted(reader.read) == sorted(MODELS["Sequential"][2])  # only what the model needs


def test_tf_checkpoint_scope_map_and_errors():
    model = built_model("RNN(MultiRNNCell)")
    tensors = tf_checkpoint_of(model, scope_map={"rnn": "encoder"})
    make = MODELS["RNN(MultiRNNCell)"][0]
    fresh = make(seed=3)
    rnnkit.load_tf_checkpoint(FakeReader(tensors), fresh, scope_map={"rnn": "encoder"})
    assert_same_variables(fresh, model)
    with pytest.raises(ValueError, match="no variables under the model's 'rnn/multi_rnn_cell'.*'encoder/multi_rnn_cell/"):
        rnnkit.load_tf_checkpoint(FakeReader(tensors), make(seed=3))
    # a variable the cell does not have, under the model's scope, is an error unless not strict
    tensors["encoder/multi_rnn_cell/cell_1/lstm_cell/w_f_diag"] = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match="'encoder/multi_rnn_cell/cell_1/lstm_cell/w_f_diag'"):
        rnnkit.load_tf_checkpoint(FakeReader(tensors), make(seed=3), scope_map={"rnn": "encoder"})
    rnnkit.load_tf_checkpoint(FakeReader(tensors), make(seed=3), scope_map={"rnn": "encoder"}, strict=False)
    tensors["encoder/multi_rnn_cell/cell_0/basic_lstm_cell/bias"] = np.zeros(13, np.float32)
    with pytest.raises(ValueError, match=r"'encoder/multi_rnn_cell/cell_0/basic_lstm_cell/bias' has shape \[13\]"):
        rnnkit.load_tf_checkpoint(FakeReader(tensors), make(seed=3), scope_map={"rnn": "encoder"}, strict=False)
