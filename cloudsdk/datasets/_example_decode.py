"""Parsing serialised ``tf.train.Example`` protobufs into Arrow columns, without TensorFlow.

:func:`_decode_fast` walks all the records at once with numpy when they are laid out alike (as
cloudsdk writes them) and raises :class:`_Fallback` when they are not; then
:func:`_parse_example` parses them one by one. The public entry point (``decode_examples``)
is in :mod:`cloudsdk.datasets.tfrecord`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cloudsdk.datasets._arrow_compat import dictionary_array, float_to_half
from cloudsdk.datasets._feature_spec import _KIND_TAG, _Spec
from cloudsdk.errors import StorageError


def _varint_at(buf: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _skip(buf: bytes, pos: int, wire: int) -> int:
    if wire == 0:
        return _varint_at(buf, pos)[1]
    if wire == 1:
        return pos + 8
    if wire == 5:
        return pos + 4
    if wire == 2:
        length, pos = _varint_at(buf, pos)
        return pos + length
    raise ValueError(f"unsupported wire type {wire}")


def _parse_list(buf: bytes, start: int, end: int, kind: int) -> Any:
    """The values of a BytesList / FloatList / Int64List: list of bytes or raw packed bytes."""
    if kind == 1:
        values: list[bytes] = []
        pos = start
        while pos < end:
            tag = buf[pos]
            pos += 1
            length, pos = _varint_at(buf, pos)
            if tag == 0x0A:
                values.append(buf[pos:pos + length])
            pos += length
        return values
    chunks: list[bytes] = []
    pos = start
    while pos < end:
        tag, pos = _varint_at(buf, pos)
        field, wire = tag >> 3, tag & 7
        if field == 1 and wire == 2:
            length, pos = _varint_at(buf, pos)
            chunks.append(buf[pos:pos + length])
            pos += length
        elif field == 1 and wire == 5 and kind == 2:
            chunks.append(buf[pos:pos + 4])
            pos += 4
        elif field == 1 and wire == 0 and kind == 3:
            _, nxt = _varint_at(buf, pos)
            chunks.append(buf[pos:nxt])
            pos = nxt
        else:
            pos = _skip(buf, pos, wire)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _parse_example(rec: bytes, wanted: dict[bytes, int], out: list[Any]) -> None:
    """Fill ``out[col]`` with (kind, values) for each wanted feature present in ``rec``."""
    pos, end = 0, len(rec)
    while pos < end:
        tag, pos = _varint_at(rec, pos)
        if tag != 0x0A:
            pos = _skip(rec, pos, tag & 7)
            continue
        flen, pos = _varint_at(rec, pos)
        fend = pos + flen
        while pos < fend:
            tag, pos = _varint_at(rec, pos)
            elen, pos = _varint_at(rec, pos)
            eend = pos + elen
            if tag != 0x0A:
                pos = eend
                continue
            key = None
            value: Any = None
            while pos < eend:
                tag = rec[pos]
                pos += 1
                length, pos = _varint_at(rec, pos)
                if tag == 0x0A:
                    key = rec[pos:pos + length]
                elif tag == 0x12:
                    value = (pos, pos + length)
                pos += length
            col = wanted.get(key) if key is not None else None
            if col is None:
                continue
            if value is None or value[0] == value[1]:
                out[col] = (0, None)
                continue
            vpos = value[0]
            ktag = rec[vpos]
            llen, vpos = _varint_at(rec, vpos + 1)
            kind = ktag >> 3
            out[col] = (kind, _parse_list(rec, vpos, vpos + llen, kind))


def _decode_varints(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All varints in ``data`` (int64) and a 0/1 array marking each value's last byte."""
    last = data < 0x80
    ends = np.flatnonzero(last)
    if len(ends) == 0:
        return np.empty(0, dtype=np.int64), last
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    pos = np.arange(len(data), dtype=np.int64) - np.repeat(starts, ends - starts + 1)
    contrib = (data & 0x7F).astype(np.uint64) << (pos.astype(np.uint64) * np.uint64(7))
    return np.add.reduceat(contrib, starts).view(np.int64), last


def _to_logical(values: pa.Array, spec: _Spec) -> pa.Array:
    t = spec.scalar_type
    if pa.types.is_dictionary(t):
        return dictionary_array(_to_logical(values, replace(spec, scalar_type=t.value_type)), t)
    if pa.types.is_boolean(t):
        return pc.not_equal(values, 0)
    if pa.types.is_timestamp(t):
        return values.cast(pa.timestamp("us", tz=t.tz)).cast(t, safe=False)
    if pa.types.is_date(t):
        return values.cast(pa.int32()).cast(pa.date32()).cast(t)
    if pa.types.is_uint64(t):
        return pa.array(values.to_numpy(zero_copy_only=False).view(np.uint64), type=t)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return values.cast(pa.large_binary()).cast(pa.large_string()).cast(t)
    if pa.types.is_float16(t):
        return float_to_half(values)
    return values.cast(t, safe=False)


def _gather_python(spec: _Spec, found: list[Any], path: str) -> tuple[np.ndarray, np.ndarray, pa.Array]:
    """(rows that have the feature, their value counts, the values) from parsed records."""
    n = len(found)
    valid = np.fromiter((f is not None for f in found), dtype=bool, count=n)
    present = [f for f in found if f is not None]
    expected = {"string": 1, "float32": 2, "int64": 3}[spec.dtype]
    for kind, _ in present:
        if kind not in (0, expected):
            raise StorageError(f"feature {spec.name!r} has the wrong list kind{path}", column=spec.name)
    if spec.dtype == "string":
        lists = [v if k else [] for k, v in present]
        counts_p = np.fromiter((len(v) for v in lists), dtype=np.int64, count=len(lists))
        flat_values = pa.array([x for v in lists for x in v], type=pa.large_binary())
    elif spec.dtype == "float32":
        blobs = [v if k else b"" for k, v in present]
        counts_p = np.fromiter((len(b) // 4 for b in blobs), dtype=np.int64, count=len(blobs))
        flat_values = pa.array(np.frombuffer(b"".join(blobs), dtype="<f4"))
    else:
        blobs = [v if k else b"" for k, v in present]
        data = np.frombuffer(b"".join(blobs), dtype=np.uint8)
        blens = np.fromiter((len(b) for b in blobs), dtype=np.int64, count=len(blobs))
        flat_values, counts_p = _int_payloads(data, blens)
    return valid, counts_p, flat_values


def _int_payloads(data: np.ndarray, blens: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    """Decode consecutive packed-varint payloads of ``blens`` bytes: values and count per payload."""
    ints, last = _decode_varints(data)
    cs = np.zeros(len(data) + 1, dtype=np.int64)
    np.cumsum(last, out=cs[1:])
    ends = np.cumsum(blens)
    return pa.array(ints, type=pa.int64()), cs[ends] - cs[ends - blens]


def _finish_column(spec: _Spec, valid: np.ndarray, counts_p: np.ndarray, flat_values: pa.Array,
                   path: str) -> pa.Array:
    n = len(valid)
    counts = np.zeros(n, dtype=np.int64)
    counts[valid] = counts_p
    values = _to_logical(flat_values, spec)
    if not spec.shape:
        if bool((counts_p != 1).any()):
            raise StorageError(f"feature {spec.name!r} holds a list where one value was expected{path}",
                               column=spec.name)
        return _spread(values, valid)
    if spec.fixed and bool((counts_p != spec.size).any()):
        raise StorageError(f"feature {spec.name!r} does not hold {spec.size} values per row{path}",
                           column=spec.name)
    if not spec.fixed and bool((counts_p % spec.size).any()):
        raise StorageError(f"feature {spec.name!r} does not hold a multiple of {spec.size} values{path}",
                           column=spec.name)
    return _nest(values, spec, counts, valid)


class _Fallback(Exception):
    """The records are not laid out alike: parse them one by one."""


_TEN = np.arange(10, dtype=np.int64)
_SHIFTS = (_TEN * 7).astype(np.uint64)


def _vvarint(data: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The varints at ``pos`` (one per row) and the positions after them."""
    first = data[pos]
    if bool((first < 0x80).all()):
        return first.astype(np.int64), pos + 1
    b = data[pos[:, None] + _TEN]
    more = b >= 0x80
    size = np.argmin(more, axis=1) + 1
    if bool(more[np.arange(len(pos)), size - 1].any()):
        raise _Fallback
    parts = (b & 0x7F).astype(np.uint64) << _SHIFTS
    parts[size[:, None] <= _TEN] = 0
    return np.bitwise_or.reduce(parts, axis=1).view(np.int64), pos + size


def _expect(data: np.ndarray, pos: np.ndarray, byte: int) -> None:
    if bool((data[pos] != byte).any()):
        raise _Fallback


def _ragged(data: np.ndarray, starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    total = int(lens.sum())
    if not total:
        return data[:0]
    prefix = np.cumsum(lens) - lens
    return data[np.repeat(starts - prefix, lens) + np.arange(total, dtype=np.int64)]


def _key_order(rec: bytes) -> list[bytes]:
    """The feature names of one serialised Example, in the order they are written."""
    pos = 0
    keys: list[bytes] = []
    while pos < len(rec):
        tag, pos = _varint_at(rec, pos)
        if tag != 0x0A:
            raise _Fallback
        flen, pos = _varint_at(rec, pos)
        end = pos + flen
        while pos < end:
            tag, pos = _varint_at(rec, pos)
            elen, pos = _varint_at(rec, pos)
            if tag != 0x0A or rec[pos] != 0x0A:
                raise _Fallback
            klen, kpos = _varint_at(rec, pos + 1)
            keys.append(rec[kpos:kpos + klen])
            pos += elen
    return keys


def _decode_fast(records: Sequence[bytes], specs: Sequence[_Spec]) -> list[tuple[np.ndarray, np.ndarray, pa.Array]]:
    """Parse all records at once, walking their features in lockstep (raises _Fallback)."""
    n = len(records)
    lens = np.fromiter(map(len, records), dtype=np.int64, count=n)
    ends = np.cumsum(lens)
    pos = ends - lens
    data = np.frombuffer(b"".join(records) + bytes(16), dtype=np.uint8)
    template = _key_order(records[int(np.argmax(lens))])
    if len(set(template)) != len(template):
        raise _Fallback
    live = np.flatnonzero(lens > 0)
    _expect(data, pos[live], 0x0A)
    flen, after = _vvarint(data, pos[live] + 1)
    if bool((after + flen != ends[live]).any()):
        raise _Fallback
    pos[live] = after
    wanted = {s.name.encode(): i for i, s in enumerate(specs)}
    out: list[Any] = [None] * len(specs)
    for key in template:
        rows = np.flatnonzero(pos < ends)
        p = pos[rows]
        _expect(data, p, 0x0A)
        elen, p1 = _vvarint(data, p + 1)
        _expect(data, p1, 0x0A)
        klen, p2 = _vvarint(data, p1 + 1)
        kb = np.frombuffer(key, dtype=np.uint8)
        match = klen == len(kb)
        if len(kb):
            match &= (data[p2[:, None] + np.arange(len(kb))] == kb).all(axis=1)
        rows, p1, p2, elen = rows[match], p1[match], p2[match] + len(kb), elen[match]
        _expect(data, p2, 0x12)
        vlen, p3 = _vvarint(data, p2 + 1)
        if bool((p3 + vlen != p1 + elen).any()):
            raise _Fallback
        pos[rows] = p1 + elen
        col = wanted.get(key)
        if col is not None:
            out[col] = _fast_feature(data, specs[col], n, rows, p3, vlen)
    if bool((pos != ends).any()):
        raise _Fallback
    for i, spec in enumerate(specs):
        if out[i] is None:  # in no record
            empty = pa.array([], type={"string": pa.large_binary(), "float32": pa.float32(),
                                       "int64": pa.int64()}[spec.dtype])
            out[i] = (np.zeros(n, dtype=bool), np.zeros(0, dtype=np.int64), empty)
    return out


def _fast_feature(data: np.ndarray, spec: _Spec, n: int, rows: np.ndarray, p3: np.ndarray,
                  vlen: np.ndarray) -> tuple[np.ndarray, np.ndarray, pa.Array]:
    valid = np.zeros(n, dtype=bool)
    valid[rows] = True
    m = len(rows)
    counts = np.zeros(m, dtype=np.int64)
    has = np.flatnonzero(vlen > 0)  # a Feature with no list at all holds no values
    q = p3[has]
    _expect(data, q, _KIND_TAG[spec.dtype])
    llen, q = _vvarint(data, q + 1)
    if spec.dtype == "string":
        cur, lend = q, q + llen
        found_rows, found_k, found_start, found_len = [], [], [], []
        k = 0
        idx = np.arange(len(q))
        while True:
            act = np.flatnonzero(cur[idx] < lend[idx]) if len(idx) else idx
            idx = idx[act]
            if not len(idx):
                break
            c = cur[idx]
            _expect(data, c, 0x0A)
            blen, c = _vvarint(data, c + 1)
            found_rows.append(idx)
            found_k.append(np.full(len(idx), k))
            found_start.append(c)
            found_len.append(blen)
            cur[idx] = c + blen
            k += 1
        if bool((cur != lend).any()):
            raise _Fallback
        if found_rows:
            r = np.concatenate(found_rows)
            order = np.lexsort((np.concatenate(found_k), r))
            starts = np.concatenate(found_start)[order]
            blens = np.concatenate(found_len)[order]
            counts[has] = np.bincount(r, minlength=len(q))
        else:
            starts = blens = np.zeros(0, dtype=np.int64)
        blob = _ragged(data, starts, blens)
        offsets = np.zeros(len(blens) + 1, dtype=np.int64)
        np.cumsum(blens, out=offsets[1:])
        values = pa.LargeBinaryArray.from_buffers(pa.large_binary(), len(blens),
                                                  [None, pa.py_buffer(offsets), pa.py_buffer(blob.tobytes())])
        return valid, counts, values
    nonempty = llen > 0
    q2 = q[nonempty]
    _expect(data, q2, 0x0A)
    plen, q2 = _vvarint(data, q2 + 1)
    if bool((q2 + plen != q[nonempty] + llen[nonempty]).any()):
        raise _Fallback
    payload_lens = np.zeros(len(q), dtype=np.int64)
    payload_lens[nonempty] = plen
    starts = np.zeros(len(q), dtype=np.int64)
    starts[nonempty] = q2
    blob = _ragged(data, starts, payload_lens)
    if spec.dtype == "float32":
        if bool((payload_lens % 4).any()):
            raise _Fallback
        counts[has] = payload_lens // 4
        return valid, counts, pa.array(blob.view("<f4"), type=pa.float32())
    values, per_row = _int_payloads(blob, payload_lens)
    counts[has] = per_row
    return valid, counts, values


def _spread(values: pa.Array, valid: np.ndarray) -> pa.Array:
    """The values of the valid rows placed at their rows, nulls elsewhere."""
    if bool(valid.all()):
        return values
    idx = np.cumsum(valid) - 1
    return values.take(pa.array(np.where(valid, idx, 0), type=pa.int64(), mask=~valid))


def _nest(values: pa.Array, spec: _Spec, counts: np.ndarray, valid: np.ndarray) -> pa.Array:
    """Wrap flat values into the (fixed-size / variable) list type of ``spec``; nulls as invalid."""
    n = len(counts)
    # build the fixed-size levels from the inside out
    types: list[pa.DataType] = []
    t = spec.arrow_type
    if not spec.fixed:
        t = t.value_type
    while pa.types.is_fixed_size_list(t):
        types.append(t)
        t = t.value_type
    arr = values
    for level_type in reversed(types):
        arr = pa.FixedSizeListArray.from_arrays(arr, level_type.list_size).cast(level_type)
    if spec.fixed:
        return _spread(arr, valid)
    outer = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts // spec.size, out=outer[1:])
    off_type = pa.int64() if pa.types.is_large_list(spec.arrow_type) else pa.int32()
    offsets = pa.array(outer, type=off_type)
    if not bool(valid.all()):
        offsets = pa.array(outer, type=off_type, mask=np.concatenate([~valid, [False]]))
    cls = pa.LargeListArray if pa.types.is_large_list(spec.arrow_type) else pa.ListArray
    return cls.from_arrays(offsets, arr).cast(spec.arrow_type)
