"""Feast's byte formats, computed a column at a time with numpy and pyarrow (no protobuf per cell).

Used by the bulk writers of the packed SQLite store (``online_store.py``) and of the Redis store
(``redis_online_store.py``) to write whole Arrow batches:

- ``encode_entity_keys``: Feast's entity key serialization version 3, byte for byte
  (``<u32 n_keys>``, per key ``<u32 STRING><u32 len>name``, then per value
  ``<u32 value_type><u32 len><bytes>``; keys sorted by name; little-endian, int64 as ``<q``).
- ``encode_rows``: one serialized ``feast.types.RepeatedValue`` per row, its ``val`` the row's
  features in schema order, each element exactly what ``Value.SerializeToString()`` gives
  (double ``0x29`` + 8 bytes, float ``0x35`` + 4, bool ``0x38`` + ``00|01``, int64 ``0x20`` +
  varint, int32 ``0x18`` + varint; a null is an empty ``Value``). Nulls follow Feast's
  conversion: an Arrow null or a NaN is a null value.
- ``encode_values``: the same ``Value`` bytes one column at a time, unwrapped (Redis keeps one
  hash field per feature).
- ``epoch_seconds``: event times as whole epoch seconds, what the stock SQLite store keeps;
  ``encode_timestamps``: serialized ``google.protobuf.Timestamp`` (``0x08`` + varint seconds,
  ``0x10`` + varint nanos, zeros left out), what the stock Redis store keeps in ``_ts:<view>``.

Value types without a vectorised encoder (strings, lists, timestamps, ...) go through Feast's own
per-value conversion, so every type Feast supports is written, only more slowly. Feast is
imported only on that path.
"""

from __future__ import annotations

import struct

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# feast.types.ValueType numbers (the entity key carries them) and Value's field numbers.
VALUE_TYPE_NUMBERS = {"BYTES": 1, "STRING": 2, "INT32": 3, "INT64": 4, "UNIX_TIMESTAMP": 8}
_FIXED_KEY_FORMATS = {"INT32": ("<i4", 4), "INT64": ("<i8", 8), "UNIX_TIMESTAMP": ("<i8", 8)}
_VARINT_TAGS = {"INT32": 0x18, "INT64": 0x20}  # field << 3 | wire type 0
_FIXED_TAGS = {"DOUBLE": (0x29, "<f8"), "FLOAT": (0x35, "<f4")}  # wire types 1 and 5
_BOOL_TAG = 0x38
_REPEATED_VAL_TAG = 0x0A  # RepeatedValue.val = 1, length-delimited
_EMPTY = pa.scalar(b"", pa.binary())

VECTORISED_VALUE_TYPES = frozenset({"INT32", "INT64", "DOUBLE", "FLOAT", "BOOL"})


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _binary_from_matrix(matrix: np.ndarray, lengths: np.ndarray) -> pa.Array:
    """A binary array whose row i is the first ``lengths[i]`` bytes of ``matrix[i]``."""
    rows, width = matrix.shape
    offsets = np.zeros(rows + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if offsets[-1] >= 2**31:
        raise ValueError("batch too large for one binary array; write smaller batches")
    data = np.ascontiguousarray(matrix[np.arange(width) < lengths[:, None]])
    return pa.Array.from_buffers(
        pa.binary(),
        rows,
        [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)],
    )


def _nulls(array: pa.Array) -> np.ndarray:
    mask = np.asarray(array.is_null(nan_is_null=pa.types.is_floating(array.type)))
    return mask.astype(bool, copy=False)


def _filled(array: pa.Array) -> np.ndarray:
    """The values as numpy, nulls and NaNs replaced by zero (their cells are written as nulls)."""
    zero = pa.scalar(False if pa.types.is_boolean(array.type) else 0, array.type)
    if pa.types.is_floating(array.type):
        array = pc.if_else(pc.is_nan(array), zero, array)
    return np.asarray(pc.fill_null(array, zero).to_numpy(zero_copy_only=False))


def _varint_groups(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Protobuf varints of unsigned 64-bit values: (10 bytes per row, zero padded; byte counts)."""
    nbytes = np.ones(len(u), dtype=np.int64)
    for k in range(1, 10):
        nbytes += u >= np.uint64(1 << (7 * k))
    shifts = np.arange(10, dtype=np.uint64) * np.uint64(7)
    groups = ((u[:, None] >> shifts) & np.uint64(0x7F)).astype(np.uint8)
    groups[np.arange(10) < (nbytes - 1)[:, None]] |= 0x80
    return groups, nbytes


def _varint_cells(values: np.ndarray, tag: int, nulls: np.ndarray, wrap: bool) -> pa.Array:
    """``<tag> <varint>`` per row (protobuf varint of the two's complement); with ``wrap`` as a
    RepeatedValue element, ``0x0A <len>`` in front. A null is an empty Value."""
    groups, nbytes = _varint_groups(values.astype(np.int64).view(np.uint64))
    head = 2 if wrap else 0
    matrix = np.empty((len(values), head + 11), dtype=np.uint8)
    if wrap:
        matrix[:, 0] = _REPEATED_VAL_TAG
        matrix[:, 1] = np.where(nulls, 0, 1 + nbytes)
    matrix[:, head] = tag
    matrix[:, head + 1 :] = groups
    return _binary_from_matrix(matrix, np.where(nulls, head, head + 1 + nbytes))


def _fixed_cells(payload: np.ndarray, tag: int, nulls: np.ndarray, wrap: bool) -> pa.Array:
    """``<tag> <payload bytes>`` per row, for fixed-width payloads (``wrap``: see _varint_cells)."""
    rows = len(payload)
    raw = np.ascontiguousarray(payload).view(np.uint8).reshape(rows, -1)
    width = raw.shape[1]
    head = 2 if wrap else 0
    matrix = np.empty((rows, head + 1 + width), dtype=np.uint8)
    if wrap:
        matrix[:, 0] = _REPEATED_VAL_TAG
        matrix[:, 1] = np.where(nulls, 0, 1 + width)
    matrix[:, head] = tag
    matrix[:, head + 1 :] = raw
    return _binary_from_matrix(matrix, np.where(nulls, head, head + 1 + width))


def _feast_cells(array: pa.Array, value_type: str, wrap: bool) -> pa.Array:
    """Any other type: Feast's own conversion (``wrap``: each Value as a RepeatedValue element)."""
    from feast.type_map import python_values_to_proto_values
    from feast.value_type import ValueType

    values = python_values_to_proto_values(
        array.to_numpy(zero_copy_only=False), ValueType[value_type]
    )
    cells = [value.SerializeToString() for value in values]
    if wrap:
        cells = [bytes([_REPEATED_VAL_TAG]) + _varint(len(raw)) + raw for raw in cells]
    return pa.array(cells, pa.binary())


def encode_cells(array: pa.Array, value_type: str, wrap: bool = True) -> pa.Array:
    """One RepeatedValue element (``0x0A <len> <Value>``) per row of ``array``; with
    ``wrap=False`` the serialized ``Value`` itself (what Redis keeps per hash field)."""
    if value_type not in VECTORISED_VALUE_TYPES or not (
        pa.types.is_integer(array.type)
        or pa.types.is_floating(array.type)
        or pa.types.is_boolean(array.type)
        or pa.types.is_null(array.type)
    ):
        return _feast_cells(array, value_type, wrap)
    if pa.types.is_null(array.type):
        array = pa.nulls(len(array), pa.float64())
    nulls = _nulls(array)
    values = _filled(array)
    if value_type in _VARINT_TAGS:
        if value_type == "INT32":
            values = values.astype(np.int32)  # what int32_val holds, sign-extended on the wire
        return _varint_cells(values.astype(np.int64), _VARINT_TAGS[value_type], nulls, wrap)
    if value_type == "BOOL":
        return _fixed_cells((values != 0).astype(np.uint8), _BOOL_TAG, nulls, wrap)
    tag, dtype = _FIXED_TAGS[value_type]
    return _fixed_cells(values.astype(np.float64).astype(dtype), tag, nulls, wrap)


def encode_values(array: pa.Array, value_type: str) -> pa.Array:
    """``Value.SerializeToString()`` per row of ``array`` (a null is empty bytes)."""
    return encode_cells(array, value_type, wrap=False)


def encode_rows(columns: list[tuple[pa.Array, str]]) -> pa.Array:
    """Serialized ``RepeatedValue`` per row: the given (array, value type name) in that order."""
    if not columns:
        raise ValueError("a feature view row needs at least one feature")
    cells = [encode_cells(array, value_type) for array, value_type in columns]
    return pc.binary_join_element_wise(*cells, _EMPTY)


def _key_value_piece(array: pa.Array, value_type: str) -> list[pa.Array | pa.Scalar]:
    if array.null_count:
        raise ValueError("entity key columns may not contain nulls")
    type_number = VALUE_TYPE_NUMBERS.get(value_type)
    if value_type in _FIXED_KEY_FORMATS:
        dtype, width = _FIXED_KEY_FORMATS[value_type]
        values = np.asarray(array.to_numpy(zero_copy_only=False)).astype(dtype)
        raw = np.ascontiguousarray(values).view(np.uint8).reshape(len(values), width)
        return [
            pa.scalar(struct.pack("<II", type_number, width), pa.binary()),
            _binary_from_matrix(raw, np.full(len(values), width)),
        ]
    if value_type in ("STRING", "BYTES"):
        if value_type == "STRING":
            array = pc.cast(pc.cast(array, pa.string()), pa.binary())
        lengths = np.asarray(pc.binary_length(array).to_numpy(zero_copy_only=False))
        prefix = np.empty((len(array), 2), dtype="<u4")
        prefix[:, 0] = type_number
        prefix[:, 1] = lengths
        raw = prefix.view(np.uint8).reshape(len(array), 8)
        return [_binary_from_matrix(raw, np.full(len(array), 8)), pc.cast(array, pa.binary())]
    raise ValueError(f"entity keys of type {value_type} are not supported")


def encode_entity_keys(keys: list[tuple[str, pa.Array, str]]) -> pa.Array:
    """Serialized entity keys (version 3) of (join key, array, value type name) per row."""
    ordered = sorted(keys, key=lambda key: key[0]) if len(keys) > 1 else keys
    header = [struct.pack("<I", len(ordered))]
    for name, _, _ in ordered:
        encoded = name.encode("utf8")
        header.append(struct.pack("<II", VALUE_TYPE_NUMBERS["STRING"], len(encoded)) + encoded)
    pieces: list[pa.Array | pa.Scalar] = [pa.scalar(b"".join(header), pa.binary())]
    for _, array, value_type in ordered:
        pieces.extend(_key_value_piece(array, value_type))
    if not any(isinstance(piece, pa.Array) for piece in pieces):
        raise ValueError("an entity key needs at least one join key column")
    return pc.binary_join_element_wise(*pieces, _EMPTY)


def key_order(keys: pa.Array) -> pa.Array:
    """``pc.sort_indices(keys)``: the stable ascending byte order of binary keys.

    When every key has one length and they differ only within 8 bytes (Feast's key of one
    integer join key: a shared header, then the value), those bytes are read big-endian into a
    uint64 and argsorted: the same order, 10M keys in 3.8 s instead of 8.0 s.
    """
    count = len(keys)
    if count < 2 or keys.null_count:
        return pc.sort_indices(keys)
    bounds = pc.min_max(pc.binary_length(keys)).as_py()
    width = bounds["min"]
    if width != bounds["max"] or not width:
        return pc.sort_indices(keys)
    offset_type = np.int64 if pa.types.is_large_binary(keys.type) else np.int32
    start = int(np.frombuffer(keys.buffers()[1], offset_type)[keys.offset])
    data = np.frombuffer(keys.buffers()[2], np.uint8)[start : start + count * width]
    matrix = data.reshape(count, width)
    varying = [j for j in range(width) if (matrix[:, j] != matrix[0, j]).any()]
    if varying and varying[-1] - varying[0] >= 8:
        return pc.sort_indices(keys)
    packed = np.zeros((count, 8), dtype=np.uint8)
    if varying:
        packed[:, : varying[-1] + 1 - varying[0]] = matrix[:, varying[0] : varying[-1] + 1]
    return pa.array(np.argsort(packed.view(">u8").ravel(), kind="stable"), pa.uint64())


def epoch_micros(array: pa.Array) -> np.ndarray:
    """Microseconds since the epoch (UTC) as int64; a timestamp without a zone is UTC."""
    if array.null_count:
        raise ValueError("event timestamps may not be null")
    # A timestamp's stored integer is UTC (the zone only labels it); naive ones are taken as UTC.
    zone = array.type.tz if pa.types.is_timestamp(array.type) else None
    micros_type = pa.timestamp("us", tz=zone)
    return np.asarray(
        pc.cast(pc.cast(array, micros_type, safe=False), pa.int64()).to_numpy(zero_copy_only=False)
    )


def _varint_field(values: np.ndarray, tag: int) -> pa.Array:
    """``<tag> <varint>`` per row, empty where the value is zero (proto3 leaves defaults out)."""
    groups, nbytes = _varint_groups(values.view(np.uint64))
    matrix = np.empty((len(values), 11), dtype=np.uint8)
    matrix[:, 0] = tag
    matrix[:, 1:] = groups
    return _binary_from_matrix(matrix, np.where(values == 0, 0, 1 + nbytes))


def encode_timestamps(micros: np.ndarray) -> pa.Array:
    """``google.protobuf.Timestamp.SerializeToString()`` per row, what ``Timestamp.FromDatetime``
    gives for the microsecond datetimes Feast turns event times into: ``0x08 <varint seconds>``
    (floored) then ``0x10 <varint nanos>``, each left out when zero."""
    micros = np.asarray(micros, dtype=np.int64)
    seconds = np.floor_divide(micros, 1_000_000)
    nanos = (micros - seconds * 1_000_000) * 1000
    return pc.binary_join_element_wise(
        _varint_field(seconds, 0x08), _varint_field(nanos, 0x10), _EMPTY
    )


def epoch_seconds(array: pa.Array) -> np.ndarray:
    """Whole seconds since the epoch (UTC), truncated like ``int(datetime.timestamp())``.

    A timestamp without a time zone is read as UTC (Feast's ``to_naive_utc`` convention).
    """
    micros = epoch_micros(array)
    return np.sign(micros) * (np.abs(micros) // 1_000_000)
