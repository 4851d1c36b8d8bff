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


def live(obj, scope_map=None):
    """{checkpoint name: live variable array}."""
    return rnnkit.checkpoint._variables(obj, scope_map)


def randomize(obj, seed=0):
    """Non-zero values in every variable, so that a load that skips one shows."""
    r = rng(seed)
    for array in live(obj).values():
        array[...] = r.uniform(-0.5, 0.5, array.shape)
    return obj


def inputs(dtype=np.float32, depth=D):
    return rng(9).normal(size=(B, T, depth)).astype(dtype)


def assert_same_variables(a, b):
    na, nb = live(a), live(b)
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
        for key, array in live(model).items():
            np.testing.assert_array_equal(npz[key], array)


def test_checkpoint_names_gives_names_and_shapes():
    cell = rnnkit.BasicLSTMCell(3, input_depth=2)
    assert rnnkit.checkpoint_names(rnnkit.RNN(cell)) == {"rnn/basic_lstm_cell/kernel": (5, 12),
                                                         "rnn/basic_lstm_cell/bias": (12,)}
    assert live(rnnkit.RNN(cell))["rnn/basic_lstm_cell/kernel"] is cell.variables["kernel"]
    assert rnnkit.checkpoint_names(rnnkit.BasicLSTMCell(3)) == {}  # unbuilt: no variables yet


@needs_gru
def test_gru_cell_names():
    cell = GRUCell(3, input_depth=2)
    assert list(rnnkit.checkpoint_names(cell)) == [
        "rnn/gru_cell/gates/kernel", "rnn/gru_cell/gates/bias",
        "rnn/gru_cell/candidate/kernel", "rnn/gru_cell/candidate/bias"]


def test_sequential_uniquifies_bidirectional_scopes():
    layers = [rnnkit.Bidirectional(rnnkit.BasicRNNCell(2, input_depth=d), rnnkit.BasicRNNCell(2, input_depth=d))
              for d in (3, 4)]  # the second reads the first's concatenated outputs
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
    before = list(live(fresh).values())
    rnnkit.load(path, fresh)
    for held, now in zip(before, live(fresh).values()):
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
    return {k: v.copy() for k, v in live(model).items()}


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
    before = {k: v.copy() for k, v in live(target).items()}
    with pytest.raises(ValueError, match="dense_1/kernel"):
        rnnkit.load(saved(tmp_path, arrays), target)
    for key, value in live(target).items():
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
    with pytest.raises(TypeError, match="got ndarray"):
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
    for key, value in live(model, scope_map).items():
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


# ---- all or nothing; hostile and broken files ---------------------------------------------------
import io  # noqa: E402
import tracemalloc  # noqa: E402
import zipfile  # noqa: E402

LSTM_KERNEL, LSTM_BIAS = "rnn/basic_lstm_cell/kernel", "rnn/basic_lstm_cell/bias"


def lstm(seed=3):
    return randomize(rnnkit.BasicLSTMCell(3, input_depth=D, seed=seed), seed)


def unchanged(model):
    """Checks, on leaving the block, that no variable of `model` changed."""
    before = {k: v.copy() for k, v in live(model).items()}

    class Check:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            for key, value in live(model).items():
                np.testing.assert_array_equal(value, before[key], err_msg=key)

    return Check()


def npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def zipped(tmp_path, members, name="crafted.npz", compression=zipfile.ZIP_STORED):
    """An .npz written member by member: {member name: bytes}."""
    path = tmp_path / name
    with zipfile.ZipFile(path, "w", compression=compression) as z:
        for member, data in members.items():
            z.writestr(member, data)
    return path


def test_a_read_only_variable_fails_the_load_before_any_write(tmp_path):
    target = lstm()
    target.variables[LSTM_BIAS.split("/", 2)[2]].flags.writeable = False  # the second variable
    with unchanged(target), pytest.raises(ValueError, match=r"variables 'rnn/basic_lstm_cell/bias' are read-only"):
        rnnkit.load(saved(tmp_path, good_arrays(lstm(seed=5))), target)


def test_a_value_that_overflows_float32_is_an_error(tmp_path):
    arrays = {k: v.astype(np.float64) for k, v in good_arrays(lstm(seed=5)).items()}
    arrays[LSTM_BIAS][7] = -1e300
    target = lstm()
    with unchanged(target), pytest.raises(ValueError, match=r"'rnn/basic_lstm_cell/bias' holds -1e\+300 at index \[7\], "
                                                            r"which overflows the variable's float32"):
        rnnkit.load(saved(tmp_path, arrays), target)
    arrays[LSTM_BIAS][7] = 3.4028235e38  # above float32's largest, but rounds to it: no overflow
    arrays[LSTM_BIAS][8] = np.inf  # an inf in the file stays one
    rnnkit.load(saved(tmp_path, arrays), target)
    assert target.variables["bias"][7] == np.finfo(np.float32).max and target.variables["bias"][8] == np.inf


def test_byte_order_and_fortran_order_are_read_as_numpy_writes_them(tmp_path):
    arrays = good_arrays(lstm(seed=5))
    stored = {LSTM_KERNEL: np.asfortranarray(arrays[LSTM_KERNEL]), LSTM_BIAS: arrays[LSTM_BIAS].astype(">f8")}
    target = rnnkit.load(saved(tmp_path, stored), lstm())
    np.testing.assert_array_equal(target.variables["kernel"], arrays[LSTM_KERNEL])
    np.testing.assert_array_equal(target.variables["bias"], arrays[LSTM_BIAS])


def test_compressed_files_load(tmp_path):
    arrays = good_arrays(lstm(seed=5))
    np.savez_compressed(tmp_path / "c.npz", **arrays)
    target = rnnkit.load(tmp_path / "c.npz", lstm())
    np.testing.assert_array_equal(target.variables["kernel"], arrays[LSTM_KERNEL])


def test_files_that_are_not_npz_files_are_named(tmp_path):
    target = lstm()
    cases = {
        "empty.npz": (b"", r"'.*empty.npz' is empty, not an .npz file"),
        "one.npy": (npy_bytes(np.zeros(3)), r"'.*one.npy' is an .npy file \(one array\), not an .npz file"),
        "text.npz": (b"rnn/basic_lstm_cell/kernel = 1\n", r"'.*text.npz' is not an .npz file \(a zip archive\): it starts with b'rnn/"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with unchanged(target), pytest.raises(ValueError, match=message):
            rnnkit.load(tmp_path / name, target)


def test_truncated_and_corrupted_zips_are_named(tmp_path):
    target = lstm()
    whole = saved(tmp_path, good_arrays(lstm(seed=5))).read_bytes()
    (tmp_path / "truncated.npz").write_bytes(whole[: len(whole) // 2])
    with unchanged(target), pytest.raises(ValueError, match=r"'.*truncated.npz' is a damaged or truncated zip archive"):
        rnnkit.load(tmp_path / "truncated.npz", target)
    corrupted = bytearray(whole)
    data_start = whole.index(b"\x93NUMPY") + 128  # the first member's data, past its .npy header
    corrupted[data_start + 5] ^= 0xFF
    (tmp_path / "corrupted.npz").write_bytes(bytes(corrupted))
    with unchanged(target), pytest.raises(ValueError, match=r"'.*corrupted.npz': 'rnn/basic_lstm_cell/kernel' cannot "
                                                            r"be read \(BadZipFile: Bad CRC-32"):
        rnnkit.load(tmp_path / "corrupted.npz", target)


def test_a_member_shorter_than_its_header_says(tmp_path):
    arrays = good_arrays(lstm(seed=5))
    short = npy_bytes(arrays[LSTM_KERNEL])[:-100]
    path = zipped(tmp_path, {LSTM_KERNEL + ".npy": short, LSTM_BIAS + ".npy": npy_bytes(arrays[LSTM_BIAS])})
    target = lstm()
    with unchanged(target), pytest.raises(ValueError, match=r"'rnn/basic_lstm_cell/kernel' declares shape \[7, 12\] of "
                                                            r"float32 \(336 bytes of data\), but its zip member holds 236"):
        rnnkit.load(path, target)


def npy_header(shape, descr="<f4"):
    """An .npy header (magic included) declaring `shape` of `descr`."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


@pytest.mark.parametrize("built", [True, False])
def test_a_header_declaring_an_absurd_size_allocates_nothing(tmp_path, built):
    arrays = good_arrays(lstm(seed=5))
    path = zipped(tmp_path, {LSTM_KERNEL + ".npy": npy_header((10**6, 10**7)) + bytes(16),
                             LSTM_BIAS + ".npy": npy_bytes(arrays[LSTM_BIAS])})
    target = lstm() if built else rnnkit.BasicLSTMCell(3)
    message = (r"'rnn/basic_lstm_cell/kernel' declares shape \[1000000, 10000000\] of float32 \(40000000000000 bytes "
               r"of data\), but its zip member holds 16")
    with unchanged(target), pytest.raises(ValueError, match=message):
        rnnkit.load(path, target)
    assert target.built == built


def test_a_needed_member_is_checked_against_the_variable_before_it_is_read(tmp_path):
    """A header of another shape is an error from the header alone (a bomb needs no reading)."""
    arrays = good_arrays(lstm(seed=5))
    arrays[LSTM_KERNEL] = np.zeros((2000, 1000), np.float32)
    path = saved(tmp_path, arrays)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"'rnn/basic_lstm_cell/kernel' has shape \[2000, 1000\], the model's "
                                             r"variable has shape \[7, 12\]"):
            rnnkit.load(path, lstm())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20  # the 8 MB array was never read


def bomb(tmp_path, size=64 << 20):
    """A model's file plus an unused member: a deflated `size` bytes of zeros (an .npy of uint8)."""
    arrays = good_arrays(lstm(seed=5))
    path = saved(tmp_path, arrays)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as z, z.open("bomb.npy", "w", force_zip64=True) as f:
        f.write(npy_header((size,), "|u1"))
        chunk = bytes(1 << 20)
        for _ in range(size >> 20):
            f.write(chunk)
    return path, arrays


def test_an_unused_member_is_never_decompressed(tmp_path):
    path, arrays = bomb(tmp_path)
    assert path.stat().st_size < 1 << 20  # 64 MiB of zeros, deflated
    target = lstm()
    tracemalloc.start()
    try:
        rnnkit.load(path, target, strict=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20
    np.testing.assert_array_equal(target.variables["kernel"], arrays[LSTM_KERNEL])
    with unchanged(target), pytest.raises(ValueError, match=r"has variables the model does not: 'bomb'"):
        rnnkit.load(path, target)


def test_an_unused_member_is_never_opened(tmp_path):
    arrays = good_arrays(lstm(seed=5))
    path = saved(tmp_path, arrays)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("garbage.npy", b"not even a .npy header")
    target = rnnkit.load(path, lstm(), strict=False)
    np.testing.assert_array_equal(target.variables["bias"], arrays[LSTM_BIAS])


def test_a_member_that_is_not_an_npy_array_is_named(tmp_path):
    arrays = good_arrays(lstm(seed=5))
    path = zipped(tmp_path, {LSTM_KERNEL + ".npy": b"\x93NUMPY nonsense", LSTM_BIAS + ".npy": npy_bytes(arrays[LSTM_BIAS])})
    with pytest.raises(ValueError, match=r"'rnn/basic_lstm_cell/kernel' is not an .npy array"):
        rnnkit.load(path, lstm())


def test_members_compressed_other_than_by_deflate_are_refused(tmp_path):
    path = zipped(tmp_path, {k + ".npy": npy_bytes(v) for k, v in good_arrays(lstm(seed=5)).items()},
                  compression=zipfile.ZIP_BZIP2)
    with pytest.raises(ValueError, match=r"'rnn/basic_lstm_cell/kernel' is compressed with zip method 12; "
                                         r".npz members are stored or deflated"):
        rnnkit.load(path, lstm())


def test_pickles_stay_refused(tmp_path):
    arrays = good_arrays(lstm(seed=5))
    arrays[LSTM_BIAS] = np.array([object()] * 12, dtype=object)
    target = lstm()
    with unchanged(target), pytest.raises(ValueError, match=r"'rnn/basic_lstm_cell/bias' holds Python objects \(a pickle\)"):
        rnnkit.load(saved(tmp_path, arrays), target)


def test_a_file_object_is_named_by_its_name(tmp_path):
    (tmp_path / "text.npz").write_bytes(b"hello")
    with open(tmp_path / "text.npz", "rb") as f, pytest.raises(ValueError, match=r"checkpoint file '.*text.npz' is not"):
        rnnkit.load(f, lstm())
