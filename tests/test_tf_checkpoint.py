"""TF1 checkpoints without TensorFlow: real checkpoints written by TF1 code
(tests/fixtures/tf1/, made by make_fixtures.py there) read back with every
value, name, shape and dtype; rnnkit's own writes byte-identical to
TensorFlow's; corrupt, truncated, foreign and incomplete files are clear
errors naming the file and leave the model untouched."""

import importlib.util
import os
import shutil
import struct

import numpy as np
import pytest

import rnnkit
from rnnkit import tf_checkpoint as tfc
from helpers import assert_close

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "tf1")
_spec = importlib.util.spec_from_file_location("make_fixtures", os.path.join(FIXTURES, "make_fixtures.py"))
make_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_fixtures)
MODELS = make_fixtures.MODELS
SCOPES = {"scoped": "model"}


def prefix(name):
    return make_fixtures.prefix_of(FIXTURES, name)


def expected(name):
    with np.load(os.path.join(FIXTURES, name, "expected.npz")) as npz:
        return {k: npz[k] for k in npz.files}


def values_of(exp):
    return {k[len("value:"):]: v for k, v in exp.items() if k.startswith("value:")}


def copy_fixture(name, tmp_path):
    """The fixture's files in tmp_path; returns the copy's prefix."""
    for f in os.listdir(os.path.join(FIXTURES, name)):
        shutil.copy(os.path.join(FIXTURES, name, f), tmp_path / f)
    return str(tmp_path / "model.ckpt")


def loaded(name, **kw):
    model, run = make_fixtures.rnnkit_fixtures()[name]
    return rnnkit.load_tf_checkpoint(prefix(name), model, scope=SCOPES.get(name), **kw), run


def snapshot(model):
    return {k: v.copy() for k, v in rnnkit.checkpoint._variables(model).items()}


def assert_unchanged(model, before):
    after = rnnkit.checkpoint._variables(model)
    assert list(after) == list(before)
    for k in before:
        np.testing.assert_array_equal(after[k], before[k], err_msg=k)


def flip(path, at):
    with open(path, "r+b") as f:
        f.seek(at)
        byte = f.read(1)
        f.seek(at)
        f.write(bytes([byte[0] ^ 0x20]))


# ---- real TF1 checkpoints -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS + ["dtypes"])
def test_list_is_tf_list_variables(name):
    exp = values_of(expected(name))
    listed = rnnkit.list_tf_checkpoint(prefix(name))
    assert list(listed) == sorted(exp)
    for key, (shape, dtype) in listed.items():
        assert shape == exp[key].shape, key
        if key == "bf16":
            assert dtype == "bfloat16"
        elif key == "text":
            assert dtype == "string"
        else:
            assert dtype == exp[key].dtype, key


@pytest.mark.parametrize("name", MODELS)
def test_loads_tf1_checkpoint_and_gives_tf1_outputs(name):
    exp = expected(name)
    model, run = loaded(name)
    names = rnnkit.checkpoint._variables(model)
    outer = SCOPES[name] + "/" if name in SCOPES else ""
    tf_values = values_of(exp)
    assert {outer + k for k in names} <= set(tf_values)
    for key, array in names.items():
        np.testing.assert_array_equal(array, tf_values[outer + key], err_msg=key)
    outputs = run(model, exp["inputs"])
    tf_outputs = [exp[f"output:{k}"] for k in range(len(outputs))]
    assert len(outputs) == len([k for k in exp if k.startswith("output:")])
    for ours, theirs in zip(outputs, tf_outputs):
        assert_close(ours, theirs)


def test_every_dtype_tf1_writes_reads_back():
    exp = values_of(expected("dtypes"))
    ckpt = tfc.TFCheckpoint(prefix("dtypes"))
    for key, value in exp.items():
        got = ckpt.get_tensor(key)
        if key == "text":
            assert got.dtype == object and got.tolist() == value.tolist()
            continue
        assert got.dtype == value.dtype and got.shape == value.shape, key
        np.testing.assert_array_equal(got, value, err_msg=key)
    assert ckpt.get_tensor("i64") == -2**62 - 3
    assert ckpt.get_tensor("f16").dtype == np.float16
    assert set(exp) == {"f16", "f32", "f64", "i32", "i64", "flags", "bf16", "empty", "text"}


def test_partitioned_variable_is_listed_whole_and_refused_clearly():
    exp = values_of(expected("partitioned"))
    assert rnnkit.list_tf_checkpoint(prefix("partitioned")) == {"embedding": ((6, 2), np.float32),
                                                                "w": ((3,), np.float32)}
    ckpt = tfc.TFCheckpoint(prefix("partitioned"))
    np.testing.assert_array_equal(ckpt.get_tensor("w"), exp["w"])
    with pytest.raises(ValueError, match=r"'embedding' in '.*model\.ckpt\.index' is saved in slices"):
        ckpt.get_tensor("embedding")


def test_training_checkpoint_by_directory_ignores_slots():
    """Saver's 'checkpoint' file names the latest checkpoint; Adam's slots,
    beta powers and global_step are not the model's."""
    model, _ = make_fixtures.rnnkit_fixtures()["lstm_dense_adam"]
    rnnkit.load_tf_checkpoint(os.path.join(FIXTURES, "lstm_dense_adam"), model)
    np.testing.assert_array_equal(rnnkit.checkpoint._variables(model)["dense/kernel"],
                                  values_of(expected("lstm_dense_adam"))["dense/kernel"])
    assert rnnkit.list_tf_checkpoint(prefix("lstm_dense_adam") + ".index")["global_step"] == ((), np.int64)


@pytest.mark.parametrize("name", [n for n in MODELS if n != "lstm_dense_adam"])
def test_save_is_byte_identical_to_tensorflows(name, tmp_path):
    """TensorFlow's Saver wrote the fixture; rnnkit writes the same variables to the same bytes."""
    model, _ = loaded(name)
    out = str(tmp_path / "sub" / "model.ckpt")
    assert rnnkit.save_tf_checkpoint(out, model, scope=SCOPES.get(name)) == out
    assert sorted(os.listdir(tmp_path / "sub")) == ["model.ckpt.data-00000-of-00001", "model.ckpt.index"]
    for suffix in (".index", ".data-00000-of-00001"):
        with open(prefix(name) + suffix, "rb") as a, open(out + suffix, "rb") as b:
            assert a.read() == b.read(), suffix


def test_round_trip_float64_and_a_large_tensor(tmp_path):
    """float64 variables stay float64; a 4 MiB kernel goes through the
    vectorised CRC and back."""
    model = rnnkit.Sequential([rnnkit.RNN(rnnkit.GRUCell(7, dtype=np.float64, input_depth=3, seed=1)),
                               rnnkit.Dense(1000, input_depth=7, dtype=np.float64, seed=2)])
    big = rnnkit.Dense(1024, input_depth=1023, seed=3)
    rnnkit.save_tf_checkpoint(tmp_path / "m", model)
    rnnkit.save_tf_checkpoint(tmp_path / "big", big)
    assert rnnkit.list_tf_checkpoint(tmp_path / "m")["dense/kernel"] == ((7, 1000), np.float64)
    fresh = rnnkit.Sequential([rnnkit.RNN(rnnkit.GRUCell(7, dtype=np.float64)), rnnkit.Dense(1000, dtype=np.float64)])
    rnnkit.load_tf_checkpoint(tmp_path / "m", fresh)
    fresh_big = rnnkit.Dense(1024)
    rnnkit.load_tf_checkpoint(str(tmp_path / "big"), fresh_big)
    for a, b in ((model, fresh), (big, fresh_big)):
        for key, value in rnnkit.checkpoint._variables(a).items():
            np.testing.assert_array_equal(rnnkit.checkpoint._variables(b)[key], value)
    flip(str(tmp_path / "big.data-00000-of-00001"), 3_000_000)
    with pytest.raises(ValueError, match="checksum mismatch.*big.data-00000-of-00001.*dense/kernel"):
        rnnkit.load_tf_checkpoint(tmp_path / "big", rnnkit.Dense(1024))


# ---- scope ----------------------------------------------------------------------------------------------
def test_scope_maps_the_outer_scope_and_errors_list_both_sides():
    model, _ = make_fixtures.rnnkit_fixtures()["scoped"]
    with pytest.raises(ValueError) as info:
        rnnkit.load_tf_checkpoint(prefix("scoped"), model)
    text = str(info.value)
    assert "'rnn/multi_rnn_cell'" in text  # the model's side
    assert "'model/rnn/multi_rnn_cell/cell_0/basic_lstm_cell/kernel'" in text  # the checkpoint's side
    assert "scope='model'" in text and "model.ckpt" in text
    assert not model.cell.built  # nothing happened
    with pytest.raises(ValueError, match="no variables under the model's 'encoder/rnn/multi_rnn_cell'"):
        rnnkit.load_tf_checkpoint(prefix("scoped"), model, scope="encoder")
    with pytest.raises(ValueError, match="under 'rnn/basic_rnn_cell', without the outer scope given"):
        rnnkit.load_tf_checkpoint(prefix("basic_rnn"), rnnkit.RNN(rnnkit.BasicRNNCell(3)), scope="model")
    rnnkit.load_tf_checkpoint(prefix("scoped"), model, scope="model/")
    assert model.cell.built
    with pytest.raises(TypeError, match="scope must be a non-empty string"):
        rnnkit.load_tf_checkpoint(prefix("scoped"), model, scope=3)


def test_scope_and_scope_map_compose(tmp_path):
    dense = rnnkit.Dense(3, input_depth=4, seed=0)
    rnnkit.save_tf_checkpoint(tmp_path / "m", dense, scope="a/b", scope_map={"dense": "head"})
    assert list(rnnkit.list_tf_checkpoint(tmp_path / "m")) == ["a/b/head/bias", "a/b/head/kernel"]
    fresh = rnnkit.Dense(3)
    rnnkit.load_tf_checkpoint(tmp_path / "m", fresh, scope="a/b", scope_map={"dense": "head"})
    np.testing.assert_array_equal(fresh.variables["kernel"], dense.variables["kernel"])


def test_strict_names_a_variable_the_model_lacks():
    """A peephole LSTMCell checkpoint into a cell without peepholes."""
    model = rnnkit.RNN(rnnkit.LSTMCell(5, num_proj=2))
    with pytest.raises(ValueError, match="'rnn/lstm_cell/w_f_diag'.*strict=False"):
        rnnkit.load_tf_checkpoint(prefix("lstm_peepholes_proj"), model)
    rnnkit.load_tf_checkpoint(prefix("lstm_peepholes_proj"), model, strict=False)
    np.testing.assert_array_equal(model.cell.variables["kernel"],
                                  values_of(expected("lstm_peepholes_proj"))["rnn/lstm_cell/kernel"])


# ---- hostile files ----------------------------------------------------------------------------------------
def test_flipped_data_byte_is_a_checksum_error_naming_the_file(tmp_path):
    p = copy_fixture("multi_rnn", tmp_path)
    model, _ = loaded("multi_rnn")
    before = snapshot(model)
    flip(p + ".data-00000-of-00001", 300)  # inside the last variables read
    with pytest.raises(ValueError, match=r"checksum mismatch in '.*model\.ckpt\.data-00000-of-00001'"):
        rnnkit.load_tf_checkpoint(p, model)
    assert_unchanged(model, before)  # all or nothing


def test_every_flipped_index_byte_is_an_error_or_harmless(tmp_path):
    """Each byte of the index flipped in turn: a ValueError naming the file,
    or (footer padding, which nothing reads) the same listing."""
    p = copy_fixture("bidirectional", tmp_path)
    good = rnnkit.list_tf_checkpoint(p)
    size = os.path.getsize(p + ".index")
    harmless = 0
    for at in range(size):
        shutil.copy(prefix("bidirectional") + ".index", p + ".index")
        flip(p + ".index", at)
        try:
            listed = rnnkit.list_tf_checkpoint(p)
        except ValueError as e:
            assert "model.ckpt.index" in str(e)
            continue
        assert listed == good, at
        harmless += 1
    assert harmless < 40  # the footer's padding at most


@pytest.mark.parametrize("keep", [0, 10, 47, 48, 100, -1])
def test_truncated_index(tmp_path, keep):
    p = copy_fixture("gru", tmp_path)
    with open(prefix("gru") + ".index", "rb") as f:
        data = f.read()
    with open(p + ".index", "wb") as f:
        f.write(data[:keep])
    with pytest.raises(ValueError, match=r"'.*model\.ckpt\.index' is not a readable TensorFlow checkpoint index"):
        rnnkit.list_tf_checkpoint(p)


def test_truncated_data_file_changes_nothing(tmp_path):
    p = copy_fixture("bidirectional", tmp_path)
    model, _ = loaded("bidirectional")
    before = snapshot(model)
    os.truncate(p + ".data-00000-of-00001", 500)
    with pytest.raises(ValueError, match=r"'.*model\.ckpt\.data-00000-of-00001' is truncated: '.*' lies at bytes"):
        rnnkit.load_tf_checkpoint(p, model)
    assert_unchanged(model, before)


def test_missing_files(tmp_path):
    p = copy_fixture("basic_lstm", tmp_path)
    model, _ = loaded("basic_lstm")
    before = snapshot(model)
    os.remove(p + ".data-00000-of-00001")
    assert list(rnnkit.list_tf_checkpoint(p)) == ["rnn/basic_lstm_cell/bias", "rnn/basic_lstm_cell/kernel"]
    with pytest.raises(FileNotFoundError, match=r"lacks its data file '.*model\.ckpt\.data-00000-of-00001'"):
        rnnkit.load_tf_checkpoint(p, model)
    assert_unchanged(model, before)
    with pytest.raises(FileNotFoundError, match=r"'.*nothing\.index' does not exist"):
        rnnkit.list_tf_checkpoint(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="without a 'checkpoint' file"):
        rnnkit.list_tf_checkpoint(tmp_path)


def test_foreign_files(tmp_path):
    p = str(tmp_path / "model.ckpt")
    rnnkit.save(tmp_path / "weights.npz", rnnkit.Dense(2, input_depth=3))
    shutil.copy(tmp_path / "weights.npz", p + ".index")
    with pytest.raises(ValueError, match=r"'.*model\.ckpt\.index' is not .*no table magic number"):
        rnnkit.list_tf_checkpoint(p)
    with open(p + ".index", "wb") as f:
        f.write(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match="not a TensorFlow checkpoint index"):
        rnnkit.load_tf_checkpoint(p, rnnkit.Dense(2))


def test_missing_shard_of_two(tmp_path):
    """A two-shard checkpoint (as a sharded Saver writes) reads from both
    shards; without the second, the error names it."""
    p = str(tmp_path / "model.ckpt")
    kernel = np.arange(12, dtype=np.float32).reshape(4, 3)
    bias = np.array([1, 2, 3], np.float32)
    write_bundle(p, [{"dense/kernel": kernel}, {"dense/bias": bias}])
    dense = rnnkit.Dense(3)
    rnnkit.load_tf_checkpoint(p, dense)
    np.testing.assert_array_equal(dense.variables["kernel"], kernel)
    np.testing.assert_array_equal(dense.variables["bias"], bias)
    os.remove(p + ".data-00001-of-00002")
    with pytest.raises(FileNotFoundError, match=r"data-00001-of-00002"):
        rnnkit.load_tf_checkpoint(p, rnnkit.Dense(3))


def test_big_endian_bundle(tmp_path):
    p = str(tmp_path / "model.ckpt")
    values = {"a": np.array([[1.5, -2.0]], np.float32), "b": np.array([7, -8], np.int64), "c": np.array([True]),
              "d": np.array([1 - 2j], np.complex64), "e": np.array(0.1, np.float16)}
    write_bundle(p, [values], big_endian=True)
    ckpt = tfc.TFCheckpoint(p)
    for k, v in values.items():
        got = ckpt.get_tensor(k)
        assert got.dtype == v.dtype and got.dtype.isnative
        np.testing.assert_array_equal(got, v)


def test_newer_format_version_and_compression_byte(tmp_path):
    p = str(tmp_path / "model.ckpt")
    write_bundle(p, [{"a": np.ones(2, np.float32)}], min_consumer=2)
    with pytest.raises(ValueError, match="format version .* newer"):
        rnnkit.list_tf_checkpoint(p)
    # the index's blocks with compression byte 2 (checksums recomputed): named, not guessed at
    write_bundle(p, [{"a": np.ones(2, np.float32)}], compression=2)
    with pytest.raises(ValueError, match="compression type 2; rnnkit reads uncompressed"):
        rnnkit.list_tf_checkpoint(p)


def test_snappy_compressed_index(tmp_path):
    """TF 1.1 wrote snappy-compressed index blocks."""
    p = str(tmp_path / "model.ckpt")
    values = {"dense/bias": np.array([1, 2, 3], np.float32), "dense/kernel": np.ones((2, 3), np.float32)}
    write_bundle(p, [values], compression=1)
    assert rnnkit.list_tf_checkpoint(p) == {"dense/bias": ((3,), np.float32), "dense/kernel": ((2, 3), np.float32)}
    np.testing.assert_array_equal(tfc.TFCheckpoint(p).get_tensor("dense/bias"), values["dense/bias"])


def test_snappy_decoder_copies():
    # "abcd" literal, copy len 4 offset 4 (1-byte offset), copy len 6 offset 2 (2-byte, overlapping)
    stream = bytes([14, 3 << 2]) + b"abcd" + bytes([0b000_000_01, 4]) + bytes([(6 - 1) << 2 | 2, 2, 0])
    assert tfc._snappy_decompress(stream) == b"abcdabcdcdcdcd"
    with pytest.raises(tfc._Corrupt, match="before the start"):
        tfc._snappy_decompress(bytes([4, 0b000_000_01, 9]))


def test_crc32c():
    assert tfc.crc32c(b"123456789") == 0xE3069283
    assert tfc.crc32c(bytes(32)) == 0x8A9136AA
    assert tfc.crc32c(b"\xff" * 32) == 0x62A8AB43
    data = np.random.default_rng(1).integers(0, 256, 70001, dtype=np.uint8).tobytes()
    for n in (0, 1, 4095, 4096, 4097, 9000, 70001):
        plain = tfc._crc_loop(0xFFFFFFFF, data[:n]) ^ 0xFFFFFFFF
        assert tfc.crc32c(data[:n]) == plain, n
        assert tfc.crc32c(data[n // 3:n], tfc.crc32c(data[:n // 3])) == plain, n
    assert tfc._unmask(tfc._mask(0x12345678)) == 0x12345678


def test_writer_errors(tmp_path):
    with pytest.raises(ValueError, match="cannot save: Dense at 'dense' is not built"):
        rnnkit.save_tf_checkpoint(tmp_path / "m", rnnkit.Dense(3))
    with pytest.raises(TypeError, match="'s' has dtype <U1"):
        tfc.write_tf_checkpoint(tmp_path / "m", {"s": np.array(["x"])})
    assert not os.listdir(tmp_path)


def test_non_float_tensor_into_a_model(tmp_path):
    p = str(tmp_path / "model.ckpt")
    tfc.write_tf_checkpoint(p, {"dense/kernel": np.ones((2, 3), np.int32), "dense/bias": np.ones(3, np.float32)})
    dense = rnnkit.Dense(3, input_depth=2, seed=0)
    before = snapshot(dense)
    with pytest.raises(TypeError, match="'dense/kernel' has dtype int32"):
        rnnkit.load_tf_checkpoint(p, dense)
    assert_unchanged(dense, before)


def test_entry_whose_size_does_not_fit_its_shape(tmp_path):
    p = str(tmp_path / "model.ckpt")
    entry = tfc._Entry(b"", "")
    entry.dtype, entry.shape, entry.size = 1, (2**40, 2**40), 16
    header = tfc._put_field(1, 1) + tfc._put_field(3, tfc._put_field(1, 1))
    with open(p + ".index", "wb") as f:
        f.write(tfc._table_bytes([(b"", header), (b"huge", entry.encode())]))
    with pytest.raises(ValueError, match=r"model\.ckpt\.index.*'huge' of shape \[1099511627776, 1099511627776\] "
                                         r"and dtype float32 has 16 bytes"):
        rnnkit.list_tf_checkpoint(p)


# ---- a bundle writer with the knobs TensorFlow's own writer does not turn --------------------------------
def write_bundle(prefix, shards, big_endian=False, min_consumer=0, compression=0):
    """[{name: array}] per shard, in TensorFlow's format, with a byte order,
    a version floor and an index compression byte of choice (1: snappy, as
    literals only)."""
    entries = []
    for shard, tensors in enumerate(shards):
        data, offset = bytearray(), 0
        for name, value in sorted(tensors.items()):
            raw = np.ascontiguousarray(value, value.dtype.newbyteorder(">" if big_endian else "<")).tobytes()
            entry = tfc._Entry(b"", "")
            entry.dtype, entry.shape, entry.shard = tfc._ENUM_OF[value.dtype], value.shape, shard
            entry.offset, entry.size, entry.crc = offset, len(raw), tfc._mask(tfc.crc32c(raw))
            offset += len(raw)
            data += raw
            entries.append((name.encode(), entry.encode()))
        with open(tfc.data_filename(prefix, shard, len(shards)), "wb") as f:
            f.write(data)
    version = tfc._put_field(1, 1) + tfc._put_field(2, min_consumer)
    header = tfc._put_field(1, len(shards)) + tfc._put_field(2, int(big_endian)) + tfc._put_field(3, version)
    table = tfc._table_bytes([(b"", header)] + sorted(entries))
    if compression:
        table = recompress(table, compression)
    with open(prefix + ".index", "wb") as f:
        f.write(table)


def recompress(table, compression):
    """The table's blocks rewritten with another compression byte (snappy: literals only)."""
    footer = table[-48:]
    metaindex, pos = tfc._block_handle(footer, 0, 40)
    index, _ = tfc._block_handle(footer, pos, 40)
    index_entries = tfc._block_entries(table[index[0]:index[0] + index[1]], "index")
    out = bytearray()

    def put(contents):
        if compression == 1:
            assert 0 < len(contents) <= 256  # one literal with a one-byte length
            contents = tfc._put_varint(len(contents)) + bytes([60 << 2, len(contents) - 1]) + contents
        body = contents + bytes([compression])
        handle = tfc._put_varint(len(out)) + tfc._put_varint(len(contents))
        out.extend(body + struct.pack("<I", tfc._mask(tfc.crc32c(body))))
        return handle

    builder = tfc._BlockBuilder(1)
    for key, value in index_entries:
        (offset, size), _ = tfc._block_handle(value, 0, len(value))
        builder.add(key, put(table[offset:offset + size]))
    meta = put(table[metaindex[0]:metaindex[0] + metaindex[1]])
    idx = put(builder.finish())
    return bytes(out) + (meta + idx).ljust(40, b"\x00") + footer[40:]

