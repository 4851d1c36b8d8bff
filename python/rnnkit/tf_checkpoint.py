"""TensorFlow's V2 checkpoint format (what tf.train.Saver writes), read and
written with numpy alone.

A checkpoint `prefix` is two or more files:

    prefix.index                   a table (LevelDB's SSTable format): key = tensor
                                   name, value = a BundleEntryProto; the key "" holds
                                   the BundleHeaderProto (shard count, byte order,
                                   format version)
    prefix.data-00000-of-00001     the tensors' bytes, back to back, one file per
                                   shard; each entry gives its shard, offset, size
                                   and the masked CRC32C of its bytes

The table is data blocks of prefix-compressed keys with restart points, an
empty metaindex block, an index block (key >= every key of a data block ->
that block's handle) and a 48-byte footer (the metaindex and index handles,
padding, the magic number). Every block is followed by a trailer: one
compression byte and the masked CRC32C of the block and that byte.

`TFCheckpoint(prefix)` reads one (`list_tf_checkpoint` lists it);
`write_tf_checkpoint(prefix, tensors)` writes one as TensorFlow's
BundleWriter does, byte for byte. Mapping a checkpoint onto a model's
variables lives in checkpoint.py.
"""

from __future__ import annotations

import math
import os
import re
import struct
import tempfile
from typing import Any, Literal, Mapping, Union

import numpy as np

from ._checks import contiguous, shape_str

__all__ = ["TFCheckpoint", "list_tf_checkpoint", "write_tf_checkpoint", "crc32c"]


# ---- CRC32C (Castagnoli), as TensorFlow's crc32c::Value / Extend / Mask ------------------
_POLY = 0x82F63B78  # reflected Castagnoli polynomial
_MASK_DELTA = 0xA282EAD8


def _byte_table():
    t = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        t = np.where(t & 1, (t >> 1) ^ np.uint32(_POLY), t >> 1).astype(np.uint32)
    return t


_TABLE = _byte_table()
_TABLE_LIST = [int(v) for v in _TABLE]
_SMALL = 4096  # below this many bytes a plain loop is faster than the lanes


def _crc_loop(register, data):
    table = _TABLE_LIST
    for byte in data:
        register = table[(register ^ byte) & 0xFF] ^ (register >> 8)
    return register


# A CRC register is a vector over GF(2): appending zero bytes and XOR-ing words
# into it are linear maps. A map is held as its 32 columns (op[j] = the image of
# bit j) and applied through tables, one per byte of the register.
def _apply(op, x):
    """op applied to the array x, bit by bit."""
    bits = (x[..., None] >> np.arange(32, dtype=np.uint32)) & 1
    return np.bitwise_xor.reduce(np.where(bits.astype(bool), op, np.uint32(0)), axis=-1).astype(np.uint32)


def _zeros_operator(nbytes):
    """register -> the register after `nbytes` zero bytes, by repeated squaring."""
    basis = np.left_shift(np.uint32(1), np.arange(32, dtype=np.uint32))
    step = (basis >> 8) ^ _TABLE[basis & 0xFF]  # one zero byte
    result = basis.copy()  # identity
    while nbytes:
        if nbytes & 1:
            result = _apply(step, result)
        step = _apply(step, step)
        nbytes >>= 1
    return result


def _inverse(op):
    """The inverse of an invertible map, by Gauss-Jordan elimination over GF(2)."""
    cols = [int(c) for c in op]
    rows = [(sum(((cols[j] >> r) & 1) << j for j in range(32)), 1 << r) for r in range(32)]
    for c in range(32):
        p = next(k for k in range(c, 32) if rows[k][0] >> c & 1)
        rows[c], rows[p] = rows[p], rows[c]
        for k in range(32):
            if k != c and rows[k][0] >> c & 1:
                rows[k] = (rows[k][0] ^ rows[c][0], rows[k][1] ^ rows[c][1])
    return np.array([sum(((rows[r][1] >> j) & 1) << r for r in range(32)) for j in range(32)], np.uint32)


def _byte_tables(op):
    values = np.arange(256, dtype=np.uint32)
    return [_apply(op, values << np.uint32(8 * k)) for k in range(4)]


def _apply_byte_tables(tables, x):
    t0, t1, t2, t3 = tables
    return t0[x & 0xFF] ^ t1[(x >> 8) & 0xFF] ^ t2[(x >> 16) & 0xFF] ^ t3[x >> 24]


def _crc_lanes(register, data):
    """CRC of a long buffer, vectorised across lanes.

    The buffer is read as rows of `lanes` little-endian words; lane i holds
    word i of every row. Each lane folds its words in as the register does
    (XOR in, then advance by one row's bytes: one 16-bit table lookup per
    half), so after the last row lane i holds its words' share of the
    register advanced 4*i bytes too far. A tree joins the lanes, advancing
    each by the bytes of the lanes after it (4*(lanes-1-i)), and the inverse
    of a 4*(lanes-1) byte advance takes the common excess off. The leading rows are the buffer's
    first bytes padded at the front with zeros (which leave a zero register
    unchanged) and with the start register XOR-ed into the first four bytes."""
    n = data.size
    lanes = 1 << int(np.clip(np.floor(np.log2(n / 256)), 4, 18))
    row = 4 * lanes
    head = n % row if n % row >= 4 else n % row + row
    first = np.zeros(-(-head // row) * row, np.uint8)
    first[first.size - head:] = data[:head]
    start = first.size - head
    first[start:start + 4] ^= np.frombuffer(struct.pack("<I", register), np.uint8)
    t0, t1, t2, t3 = _byte_tables(_zeros_operator(row))
    halves = np.arange(65536, dtype=np.uint32)
    low = (t0[halves & 0xFF] ^ t1[halves >> 8]).astype(np.int64)
    high = (t2[halves & 0xFF] ^ t3[halves >> 8]).astype(np.int64)
    regs = np.zeros(lanes, np.int64)
    for words in (first.view("<u4").reshape(-1, lanes), data[head:].view("<u4").reshape(-1, lanes)):
        for word in words:
            regs ^= word
            regs = low[regs & 0xFFFF] ^ high[regs >> 16]
    regs = regs.astype(np.uint32)
    span = 4
    while regs.size > 1:
        regs = _apply_byte_tables(_byte_tables(_zeros_operator(span)), regs[0::2]) ^ regs[1::2]
        span *= 2
    return int(_apply_byte_tables(_byte_tables(_inverse(_zeros_operator(4 * (lanes - 1)))), regs)[0])


def crc32c(data: Union[bytes, bytearray, memoryview], crc: int = 0) -> int:
    """CRC32C of `data` (bytes-like), extending `crc` (TensorFlow's crc32c::Extend)."""
    buf = np.frombuffer(memoryview(data).cast("B"), np.uint8)
    register = (crc ^ 0xFFFFFFFF) & 0xFFFFFFFF
    if buf.size < _SMALL:
        register = _crc_loop(register, buf.tobytes())
    else:
        register = _crc_lanes(register, buf)
    return register ^ 0xFFFFFFFF


def _mask(crc):
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def _unmask(masked):
    rot = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


# ---- protobuf wire format ---------------------------------------------------------------
class _Corrupt(Exception):
    """A malformed structure; the caller adds the file name."""


def _varint(buf, pos, end):
    result = shift = 0
    while True:
        if pos >= end:
            raise _Corrupt("a varint runs past the end of its record")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise _Corrupt("a varint is longer than 10 bytes")


def _signed(value):
    """A varint's int32/int64 value (negative numbers are 10-byte two's complement)."""
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value


def _put_varint(value):
    value &= (1 << 64) - 1
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _fields(buf, what):
    """(field number, wire type, value) of each field of a message: an int for
    varint / fixed fields, bytes for length-delimited ones."""
    pos, end = 0, len(buf)
    while pos < end:
        tag, pos = _varint(buf, pos, end)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise _Corrupt(f"{what} has a field numbered 0")
        if wire == 0:
            value, pos = _varint(buf, pos, end)
        elif wire == 1 or wire == 5:
            size = 8 if wire == 1 else 4
            if pos + size > end:
                raise _Corrupt(f"{what} ends inside a fixed-width field")
            value = int.from_bytes(buf[pos:pos + size], "little")
            pos += size
        elif wire == 2:
            size, pos = _varint(buf, pos, end)
            if pos + size > end:
                raise _Corrupt(f"{what} has a field of {size} bytes past its end")
            value = bytes(buf[pos:pos + size])
            pos += size
        else:
            raise _Corrupt(f"{what} has a field of wire type {wire}")
        yield number, wire, value


def _expect(wire, want, number, what):
    if wire != want:
        raise _Corrupt(f"{what} field {number} has wire type {wire}, expected {want}")


def _put_field(number, value):
    """A field of a message; None and proto3 defaults (0, empty scalars) are left out."""
    if value is None:
        return b""
    if isinstance(value, bytes):
        return _put_varint(number << 3 | 2) + _put_varint(len(value)) + value
    if value == 0:
        return b""
    return _put_varint(number << 3) + _put_varint(value)


# TensorFlow's DataType enum (types.proto) -> numpy dtype, or None where numpy has none.
_DTYPES = {
    1: ("float32", np.float32), 2: ("float64", np.float64), 3: ("int32", np.int32), 4: ("uint8", np.uint8),
    5: ("int16", np.int16), 6: ("int8", np.int8), 7: ("string", None), 8: ("complex64", np.complex64),
    9: ("int64", np.int64), 10: ("bool", np.bool_), 11: ("qint8", None), 12: ("quint8", None),
    13: ("qint32", None), 14: ("bfloat16", None), 15: ("qint16", None), 16: ("quint16", None),
    17: ("uint16", np.uint16), 18: ("complex128", np.complex128), 19: ("float16", np.float16),
    20: ("resource", None), 21: ("variant", None), 22: ("uint32", np.uint32), 23: ("uint64", np.uint64),
}
_DT_STRING, _DT_BFLOAT16 = 7, 14
_ENUM_OF = {np.dtype(t): code for code, (_, t) in _DTYPES.items() if t is not None}


def _parse_shape(buf, what):
    dims = []
    for number, wire, value in _fields(buf, what):
        if number == 2:
            _expect(wire, 2, number, what)
            size = None
            for n, w, v in _fields(value, what):
                if n == 1:
                    _expect(w, 0, n, what)
                    size = _signed(v)
            dims.append(0 if size is None else size)
        elif number == 3:
            _expect(wire, 0, number, what)
            if value:
                raise _Corrupt(f"{what} has an unknown rank")
    if any(d < 0 for d in dims):
        raise _Corrupt(f"{what} has unknown dimensions {dims}")
    return tuple(dims)


class _Entry:
    """A BundleEntryProto: where a tensor's bytes lie and what they are."""
    __slots__ = ("dtype", "shape", "shard", "offset", "size", "crc", "sliced")

    def __init__(self, buf, what):
        self.dtype, self.shape, self.shard, self.offset, self.size, self.crc = 0, (), 0, 0, 0, 0
        self.sliced = False
        for number, wire, value in _fields(buf, what):
            if number == 1:
                _expect(wire, 0, number, what)
                self.dtype = value
            elif number == 2:
                _expect(wire, 2, number, what)
                self.shape = _parse_shape(value, what)
            elif number in (3, 4, 5):
                _expect(wire, 0, number, what)
                value = _signed(value)
                if value < 0:
                    raise _Corrupt(f"{what} has a negative {('shard', 'offset', 'size')[number - 3]} ({value})")
                if number == 3:
                    self.shard = value
                elif number == 4:
                    self.offset = value
                else:
                    self.size = value
            elif number == 6:
                _expect(wire, 5, number, what)
                self.crc = value
            elif number == 7:
                self.sliced = True

    def encode(self):
        shape = b"".join(_put_field(2, _put_field(1, int(d))) for d in self.shape)
        crc = _put_varint(6 << 3 | 5) + struct.pack("<I", self.crc) if self.crc else b""
        return (_put_field(1, self.dtype) + _put_field(2, shape) + _put_field(3, self.shard)
                + _put_field(4, self.offset) + _put_field(5, self.size) + crc)


# ---- the table (LevelDB SSTable) ------------------------------------------------------------
_MAGIC = 0xDB4775248B80FB57
_FOOTER = 48  # two block handles padded to 40 bytes, then the magic number
_TRAILER = 5  # compression byte, masked CRC32C
_BLOCK_SIZE = 262144  # TensorFlow's table::Options defaults
_RESTART_INTERVAL = 16


def _block_handle(buf, pos, end):
    offset, pos = _varint(buf, pos, end)
    size, pos = _varint(buf, pos, end)
    return (offset, size), pos


def _snappy_decompress(data):
    """Snappy's raw format: a varint length, then literals and back-references."""
    out_len, pos = _varint(data, 0, len(data))
    out = bytearray()
    end = len(data)
    while pos < end:
        tag = data[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:
            length = tag >> 2
            if length >= 60:
                extra = length - 59
                length = int.from_bytes(data[pos:pos + extra], "little")
                pos += extra
            length += 1
            if pos + length > end:
                raise _Corrupt("a snappy literal runs past the block")
            out += data[pos:pos + length]
            pos += length
            continue
        if kind == 1:
            length = 4 + ((tag >> 2) & 7)
            offset = ((tag >> 5) << 8) | data[pos]
            pos += 1
        else:
            size = 2 if kind == 2 else 4
            length = 1 + (tag >> 2)
            offset = int.from_bytes(data[pos:pos + size], "little")
            pos += size
        if pos > end or offset == 0 or offset > len(out):
            raise _Corrupt("a snappy copy reaches before the start of the block")
        for _ in range(length):  # copies may overlap their own output
            out.append(out[-offset])
    if len(out) != out_len:
        raise _Corrupt(f"a snappy block decompressed to {len(out)} bytes, its header says {out_len}")
    return bytes(out)


def _read_block(blob, handle, what, limit):
    offset, size = handle
    if offset + size + _TRAILER > limit:
        raise _Corrupt(f"the {what} block [{offset}, {offset + size + _TRAILER}) runs past the table's end ({limit})")
    contents = blob[offset:offset + size + 1]
    stored = _unmask(int.from_bytes(blob[offset + size + 1:offset + size + _TRAILER], "little"))
    actual = crc32c(contents)
    if stored != actual:
        raise _Corrupt(f"checksum mismatch in the {what} block at offset {offset} "
                       f"(stored {stored:08x}, computed {actual:08x})")
    compression = contents[-1]
    if compression == 0:
        return contents[:-1]
    if compression == 1:
        return _snappy_decompress(contents[:-1])
    raise _Corrupt(f"the {what} block has compression type {compression}; rnnkit reads uncompressed (0) "
                   f"and snappy (1) blocks")


def _block_entries(block, what):
    """[(key, value)] of a block: entries (varint shared, non-shared and value
    lengths, the key's new bytes, the value), then the restart offsets and their count."""
    if len(block) < 4:
        raise _Corrupt(f"the {what} block has {len(block)} bytes, too few for its restart count")
    count = int.from_bytes(block[-4:], "little")
    restarts_at = len(block) - 4 - 4 * count
    if count < 1 or restarts_at < 0:
        raise _Corrupt(f"the {what} block claims {count} restart points in {len(block)} bytes")
    restarts = np.frombuffer(block[restarts_at:len(block) - 4], "<u4")
    entries, starts, key, pos = [], {}, b"", 0
    while pos < restarts_at:
        start = pos
        shared, pos = _varint(block, pos, restarts_at)
        fresh, pos = _varint(block, pos, restarts_at)
        vlen, pos = _varint(block, pos, restarts_at)
        if shared > len(key) or pos + fresh + vlen > restarts_at:
            raise _Corrupt(f"an entry of the {what} block at offset {start} is malformed")
        key = key[:shared] + block[pos:pos + fresh]
        pos += fresh
        entries.append((key, block[pos:pos + vlen]))
        pos += vlen
        starts[start] = shared
    if any(starts.get(int(r), 1) != 0 for r in restarts) and entries:
        raise _Corrupt(f"the {what} block's restart points do not start whole keys")
    return entries


def _table_entries(blob):
    """[(key, value)] of every data block of a table, in order, checked."""
    if len(blob) < _FOOTER:
        raise _Corrupt(f"{len(blob)} bytes is too short for a table footer ({_FOOTER} bytes)")
    footer_at = len(blob) - _FOOTER
    footer = blob[footer_at:]
    if int.from_bytes(footer[40:], "little") != _MAGIC:
        raise _Corrupt("no table magic number at its end: not a TensorFlow checkpoint index")
    metaindex, pos = _block_handle(footer, 0, 40)
    index, _ = _block_handle(footer, pos, 40)
    _read_block(blob, metaindex, "metaindex", footer_at)
    entries = []
    for bound, value in _block_entries(_read_block(blob, index, "index", footer_at), "index"):
        handle, used = _block_handle(value, 0, len(value))
        if used != len(value):
            raise _Corrupt("an index entry is not a block handle")
        block = _block_entries(_read_block(blob, handle, "data", footer_at), "data")
        if block and block[-1][0] > bound:
            raise _Corrupt("a data block holds keys past its index entry")
        entries.extend(block)
    for (a, _), (b, _) in zip(entries, entries[1:]):
        if a >= b:
            raise _Corrupt(f"keys out of order ({a!r} then {b!r})")
    return entries


def _shortest_separator(start, limit):
    """A short key >= start and < limit (LevelDB's bytewise comparator)."""
    n = min(len(start), len(limit))
    i = 0
    while i < n and start[i] == limit[i]:
        i += 1
    if i < n and start[i] < 0xFF and start[i] + 1 < limit[i]:
        return start[:i] + bytes([start[i] + 1])
    return start


def _short_successor(key):
    for i, byte in enumerate(key):
        if byte != 0xFF:
            return key[:i] + bytes([byte + 1])
    return key


class _BlockBuilder:
    def __init__(self, restart_interval):
        self.interval = restart_interval
        self.reset()

    def reset(self):
        self.buf, self.restarts, self.counter, self.last = bytearray(), [0], 0, b""

    def empty(self):
        return not self.buf

    def size_estimate(self):
        return len(self.buf) + 4 * len(self.restarts) + 4

    def add(self, key, value):
        shared = 0
        if self.counter < self.interval:
            n = min(len(key), len(self.last))
            while shared < n and key[shared] == self.last[shared]:
                shared += 1
        else:
            self.restarts.append(len(self.buf))
            self.counter = 0
        self.buf += _put_varint(shared) + _put_varint(len(key) - shared) + _put_varint(len(value))
        self.buf += key[shared:] + value
        self.last = key
        self.counter += 1

    def finish(self):
        out = bytes(self.buf) + b"".join(struct.pack("<I", r) for r in self.restarts)
        return out + struct.pack("<I", len(self.restarts))


def _table_bytes(entries):
    """A table of sorted (key, value) pairs, laid out as TensorFlow's TableBuilder
    lays it out without compression."""
    out = bytearray()

    def write_block(builder):
        contents = builder.finish() + b"\x00"
        handle = _put_varint(len(out)) + _put_varint(len(contents) - 1)
        out.extend(contents + struct.pack("<I", _mask(crc32c(contents))))
        builder.reset()
        return handle

    data, index = _BlockBuilder(_RESTART_INTERVAL), _BlockBuilder(1)
    pending, last = None, b""
    for key, value in entries:
        if not data.empty() and len(key) + len(value) >= 2 * _BLOCK_SIZE:
            pending = write_block(data)
        if pending is not None:
            index.add(_shortest_separator(last, key), pending)
            pending = None
        last = key
        data.add(key, value)
        if data.size_estimate() >= _BLOCK_SIZE:
            pending = write_block(data)
    if not data.empty():
        pending = write_block(data)
    metaindex = write_block(_BlockBuilder(_RESTART_INTERVAL))
    if pending is not None:
        index.add(_short_successor(last), pending)
    index_handle = write_block(index)
    footer = (metaindex + index_handle).ljust(40, b"\x00") + struct.pack("<Q", _MAGIC)
    return bytes(out + footer)


# ---- the bundle ----------------------------------------------------------------------------
_TENSOR_BUNDLE_VERSION = 1  # what this reader and writer implement (TensorFlow's kTensorBundleVersion)


def data_filename(prefix: str, shard: int, num_shards: int) -> str:
    return f"{prefix}.data-{shard:05d}-of-{num_shards:05d}"


def _resolve_prefix(prefix):
    """The checkpoint prefix a user meant: a directory means the latest
    checkpoint its `checkpoint` file names; 'x.index' means 'x'."""
    prefix = os.fspath(prefix)
    if os.path.isdir(prefix):
        state = os.path.join(prefix, "checkpoint")
        try:
            with open(state, encoding="utf-8") as f:
                text = f.read()
        except OSError:
            raise FileNotFoundError(f"{prefix!r} is a directory without a 'checkpoint' file naming its latest "
                                    f"checkpoint; pass the checkpoint's prefix (e.g. 'model.ckpt-1000')") from None
        match = re.search(r'^model_checkpoint_path:\s*"((?:[^"\\]|\\.)*)"', text, re.M)
        if not match:
            raise ValueError(f"{state!r} names no model_checkpoint_path")
        path = match.group(1).encode("utf-8").decode("unicode_escape")
        return path if os.path.isabs(path) else os.path.join(prefix, path)
    if prefix.endswith(".index") and not os.path.exists(prefix + ".index") and os.path.exists(prefix):
        return prefix[:-len(".index")]
    return prefix


class TFCheckpoint:
    """A TensorFlow V2 checkpoint opened for reading, with the methods of
    TensorFlow's CheckpointReader that rnnkit uses.

    Opening parses and checks the whole index (every block's checksum, the
    header, every entry); a tensor's bytes are read and checked against their
    CRC32C when it is asked for.

    Args:
      prefix: the checkpoint's prefix ('model.ckpt-1000'), its '.index' file,
        or a directory whose 'checkpoint' file names the latest checkpoint.
    Raises:
      FileNotFoundError: no such index file.
      ValueError naming the file: a corrupt, truncated or foreign index.
    """

    def __init__(self, prefix: Union[str, os.PathLike[str]]) -> None:
        self.prefix: str = _resolve_prefix(prefix)
        self.index_file = self.prefix + ".index"
        if not os.path.isfile(self.index_file):
            near = [p for p in (self.prefix + ".meta", self.prefix) if os.path.isfile(p)]
            hint = (f" ({near[0]!r} exists: is this a TF V1 checkpoint, which rnnkit does not read?)"
                    if near and near[0] == self.prefix else "")
            raise FileNotFoundError(f"no TensorFlow checkpoint at {self.prefix!r}: {self.index_file!r} does not "
                                    f"exist{hint}")
        with open(self.index_file, "rb") as f:
            blob = f.read()
        try:
            self._parse(blob)
        except _Corrupt as e:
            raise ValueError(f"{self.index_file!r} is not a readable TensorFlow checkpoint index: {e}") from None
        self._checked_shards: set[int] = set()

    def _parse(self, blob):
        entries = _table_entries(blob)
        if not entries or entries[0][0] != b"":
            raise _Corrupt("it has no header entry (the key '')")
        self.num_shards, self.big_endian = 0, False
        for number, wire, value in _fields(entries[0][1], "the header"):
            if number == 1:
                _expect(wire, 0, number, "the header")
                self.num_shards = _signed(value)
            elif number == 2:
                _expect(wire, 0, number, "the header")
                if value not in (0, 1):
                    raise _Corrupt(f"the header gives an unknown byte order ({value})")
                self.big_endian = value == 1
            elif number == 3:
                _expect(wire, 2, number, "the header")
                self._check_version(value)
        if self.num_shards < 1:
            raise _Corrupt(f"the header gives {self.num_shards} data shards")
        self._entries = {}
        for key, value in entries[1:]:
            name = key.decode("utf-8", "surrogateescape")
            entry = _Entry(value, f"the entry of '{name}'")
            if entry.dtype not in _DTYPES:
                raise _Corrupt(f"'{name}' has an unknown dtype (enum {entry.dtype})")
            if not entry.sliced and entry.shard >= self.num_shards:
                raise _Corrupt(f"'{name}' lies in shard {entry.shard} of {self.num_shards}")
            expected = _itemsize(entry.dtype) * math.prod(entry.shape)  # Python ints: no overflow
            if not entry.sliced and _itemsize(entry.dtype) and entry.size != expected:
                raise _Corrupt(f"'{name}' of shape {shape_str(entry.shape)} and dtype {_DTYPES[entry.dtype][0]} "
                               f"has {entry.size} bytes, expected {expected}")
            self._entries[name] = entry

    @staticmethod
    def _check_version(buf):
        producer, min_consumer, bad = 0, 0, []
        for number, wire, value in _fields(buf, "the header's version"):
            if number == 1 and wire == 0:
                producer = _signed(value)
            elif number == 2 and wire == 0:
                min_consumer = _signed(value)
            elif number == 3 and wire == 0:
                bad.append(_signed(value))
            elif number == 3 and wire == 2:  # packed
                pos = 0
                while pos < len(value):
                    v, pos = _varint(value, pos, len(value))
                    bad.append(_signed(v))
        if producer < 0 or min_consumer > _TENSOR_BUNDLE_VERSION or _TENSOR_BUNDLE_VERSION in bad:
            raise _Corrupt(f"its format version (producer {producer}, min_consumer {min_consumer}) is newer "
                           f"than the one rnnkit reads ({_TENSOR_BUNDLE_VERSION})")

    # -- what is in it
    def names(self) -> list[str]:
        """The tensors' names, sorted; a partitioned variable's slices (keys
        TensorFlow encodes with a leading 0 byte) are left out, as
        tf.train.list_variables leaves them out."""
        return sorted(name for name in self._entries if not name.startswith("\x00"))

    def get_variable_to_shape_map(self) -> dict[str, list[int]]:
        return {name: list(self._entries[name].shape) for name in self.names()}

    def get_variable_to_dtype_map(self) -> dict[str, Union[np.dtype[Any], str]]:
        """{name: numpy dtype}, or TensorFlow's dtype name where numpy has none ('bfloat16', 'string', ...)."""
        return {name: _dtype_of(self._entries[name].dtype) for name in self.names()}

    def has_tensor(self, name: str) -> bool:
        return name in self._entries

    # -- reading
    def _data_file(self, shard):
        path = data_filename(self.prefix, shard, self.num_shards)
        if shard not in self._checked_shards:
            if not os.path.isfile(path):
                raise FileNotFoundError(f"TensorFlow checkpoint {self.prefix!r} lacks its data file {path!r}")
            size = os.path.getsize(path)
            for name, e in self._entries.items():
                if not e.sliced and e.shard == shard and e.offset + e.size > size:
                    raise ValueError(f"{path!r} is truncated: '{name}' lies at bytes [{e.offset}, "
                                     f"{e.offset + e.size}) and the file has {size} bytes")
            self._checked_shards.add(shard)
        return path

    def get_tensor(self, name: str) -> np.ndarray[Any, Any]:
        """The tensor `name` as a new numpy array (bfloat16 as float32, strings as an object array of bytes).

        Raises:
          KeyError: no such tensor.
          ValueError naming the data file: a checksum that does not match, a truncated file.
        """
        entry = self._entries.get(name)
        if entry is None:
            raise KeyError(f"TensorFlow checkpoint {self.prefix!r} has no tensor '{name}'")
        kind, numpy_dtype = _DTYPES[entry.dtype]
        if entry.sliced:
            raise ValueError(f"'{name}' in {self.index_file!r} is saved in slices (a partitioned variable), "
                             f"which rnnkit does not read")
        if numpy_dtype is None and entry.dtype not in (_DT_STRING, _DT_BFLOAT16):
            raise TypeError(f"'{name}' in {self.index_file!r} has dtype {kind}, which rnnkit does not read")
        path = self._data_file(entry.shard)
        buf = bytearray(entry.size)
        with open(path, "rb") as f:
            f.seek(entry.offset)
            got = f.readinto(buf)
        if got != entry.size:
            raise ValueError(f"{path!r} is truncated: '{name}' needs {entry.size} bytes at offset {entry.offset}, "
                             f"read {got}")
        if entry.dtype == _DT_STRING:
            array, actual = self._strings(buf, entry, name, path)
        else:
            actual = crc32c(buf)
            order: Literal[">", "<"] = ">" if self.big_endian else "<"
            if entry.dtype == _DT_BFLOAT16:  # the upper half of a float32
                halves = np.frombuffer(buf, order + "u2").astype(np.uint32) << 16
                array = halves.view(np.float32)
            else:
                array = np.frombuffer(buf, np.dtype(numpy_dtype).newbyteorder(order))
                array = array.astype(np.dtype(numpy_dtype).newbyteorder("="), copy=self.big_endian)
            array = array.reshape(entry.shape)
        stored = _unmask(entry.crc)
        if actual != stored:
            raise ValueError(f"checksum mismatch in {path!r} for '{name}' (bytes [{entry.offset}, "
                             f"{entry.offset + entry.size}): stored {stored:08x}, computed {actual:08x}): "
                             f"the file is corrupt")
        return array

    def _strings(self, buf, entry, name, path):
        """A string tensor: varint lengths, a masked CRC32C of the lengths, the bytes."""
        count = math.prod(entry.shape)
        order = ">" if self.big_endian else "<"
        try:
            lengths, pos, crc = [], 0, 0
            for _ in range(count):
                length, pos = _varint(buf, pos, len(buf))
                lengths.append(length)
                crc = crc32c(struct.pack(order + ("I" if length <= 0xFFFFFFFF else "Q"), length), crc)
            if pos + 4 + sum(lengths) != len(buf):
                raise _Corrupt("its string lengths do not add up to its size")
        except _Corrupt as e:
            raise ValueError(f"{path!r}: string tensor '{name}' is malformed: {e}") from None
        raw = bytes(buf[pos:pos + 4])
        if _unmask(int.from_bytes(raw, "big" if self.big_endian else "little")) != crc:
            raise ValueError(f"checksum mismatch in {path!r} for the string lengths of '{name}': the file is corrupt")
        crc = crc32c(raw, crc)
        pos += 4
        out = np.empty(count, object)
        for i, length in enumerate(lengths):
            out[i] = bytes(buf[pos:pos + length])
            pos += length
        return out.reshape(entry.shape), crc32c(buf[pos - sum(lengths):pos], crc)


def _itemsize(enum):
    """Bytes per element of a fixed-width dtype; 0 for strings and other variable-width kinds."""
    if enum == _DT_BFLOAT16:
        return 2
    numpy_dtype = _DTYPES[enum][1]
    return np.dtype(numpy_dtype).itemsize if numpy_dtype is not None else 0


def _dtype_of(enum):
    kind, numpy_dtype = _DTYPES[enum]
    return np.dtype(numpy_dtype) if numpy_dtype is not None else kind


def list_tf_checkpoint(prefix: Union[str, os.PathLike[str]]
                       ) -> dict[str, tuple[tuple[int, ...], Union[np.dtype[Any], str]]]:
    """{name: (shape, dtype)} of every tensor in a TensorFlow checkpoint, sorted
    by name, like tf.train.list_variables. Reads only the index file.

    Args:
      prefix: the checkpoint's prefix ('model.ckpt-1000'), its '.index' file,
        or a directory whose 'checkpoint' file names the latest checkpoint.
    Returns:
      shape is a tuple of ints; dtype a numpy dtype, or TensorFlow's name
      ('bfloat16', 'string', ...) for dtypes numpy does not have.
    """
    ckpt = TFCheckpoint(prefix)
    return {name: (ckpt._entries[name].shape, _dtype_of(ckpt._entries[name].dtype)) for name in ckpt.names()}


def write_tf_checkpoint(prefix: Union[str, os.PathLike[str]], tensors: Mapping[str, Any]) -> str:
    """Writes {name: array} as a one-shard TensorFlow checkpoint: `prefix.index`
    and `prefix.data-00000-of-00001`, laid out as TensorFlow's BundleWriter
    lays them out. The data file is written first and the index last, each
    through a temporary file renamed into place.

    Returns:
      the prefix.
    """
    prefix = os.fspath(prefix)
    arrays: dict[bytes, np.ndarray[Any, Any]] = {}
    for name, value in tensors.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"tensor names must be non-empty strings, got {name!r}")
        array = np.asarray(value)
        if array.dtype not in _ENUM_OF:
            raise TypeError(f"'{name}' has dtype {array.dtype}; TensorFlow checkpoints hold numbers and booleans")
        arrays[name.encode("utf-8")] = contiguous(array, array.dtype.newbyteorder("<"))
    data: list[bytes] = []
    entries: list[tuple[bytes, bytes]] = []
    offset = 0
    for key in sorted(arrays):
        array = arrays[key]
        raw = array.tobytes()
        entry = _Entry(b"", "")
        entry.dtype, entry.shape = _ENUM_OF[array.dtype.newbyteorder("=")], array.shape
        entry.offset, entry.size, entry.crc = offset, len(raw), _mask(crc32c(raw))
        offset += len(raw)
        data.append(raw)
        entries.append((key, entry.encode()))
    header = _put_field(1, 1) + _put_field(3, _put_field(1, _TENSOR_BUNDLE_VERSION))
    index = _table_bytes([(b"", header)] + entries)
    directory = os.path.dirname(os.path.abspath(prefix))
    os.makedirs(directory, exist_ok=True)
    _write_atomically(data_filename(prefix, 0, 1), data, directory)
    _write_atomically(prefix + ".index", [index], directory)
    return prefix


def _write_atomically(path, chunks, directory):
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
