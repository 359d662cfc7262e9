"""A weights index: an ONNX model's graph whose large tensors point at their bytes inside the original file.

ONNX Runtime copies embedded tensors out of the protobuf but maps external data straight from its file, so a
model whose weights are embedded loads faster through its index, which is a small fraction of its size.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MIN_EXTERNAL_BYTES = 1024
"""Tensors smaller than this stay in the index."""
RELEASE_BYTES = 8 * 2**20
"""How much of the model is read before its pages are let go."""

# Field numbers in onnx.proto.
MODEL_GRAPH = 7
GRAPH_NODE = 1
GRAPH_INITIALIZER = 5
NODE_ATTRIBUTE = 5
ATTRIBUTE_TENSOR = 5
ATTRIBUTE_GRAPHS = (6, 11)
TENSOR_RAW_DATA = 9
TENSOR_EXTERNAL_DATA = 13
TENSOR_DATA_LOCATION = 14
ENTRY_KEY, ENTRY_VALUE = 1, 2
EXTERNAL = 1

VARINT, FIXED64, BYTES, FIXED32 = 0, 1, 2, 5


class UnindexableModelError(ValueError):
    """The model is encoded in a way the index does not handle; it is loaded as it is."""


@dataclass(frozen=True)
class Field:
    """One protobuf field: number, wire type, and where it starts, where its payload starts, where it ends."""

    number: int
    wire: int
    start: int
    payload: int
    end: int


@dataclass(frozen=True)
class Index:
    """An index's protobuf and the files next to the model that it refers to (the model itself among them)."""

    graph: bytes
    files: frozenset[str]


def _varint(buf: mmap.mmap | bytes, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise UnindexableModelError("a truncated or overlong varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def fields(buf: mmap.mmap | bytes, start: int, end: int) -> Iterator[Field]:
    """The fields of the message in buf[start:end], each skipped over by its length."""
    pos = start
    while pos < end:
        key, payload = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if wire == VARINT:
            _, stop = _varint(buf, payload, end)
        elif wire == FIXED64:
            stop = payload + 8
        elif wire == FIXED32:
            stop = payload + 4
        elif wire == BYTES:
            length, payload = _varint(buf, payload, end)
            stop = payload + length
        else:
            raise UnindexableModelError(f"wire type {wire}, which ONNX does not use")
        if stop > end or number == 0:
            raise UnindexableModelError("a field runs past its message")
        yield Field(number, wire, pos, payload, stop)
        pos = stop


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _bytes_field(number: int, payload: bytes) -> bytes:
    return _encode_varint(number << 3 | BYTES) + _encode_varint(len(payload)) + payload


def _entry(key: str, value: str) -> bytes:
    return _bytes_field(
        TENSOR_EXTERNAL_DATA, _bytes_field(ENTRY_KEY, key.encode()) + _bytes_field(ENTRY_VALUE, value.encode())
    )


class _Writer:
    """Rewrites one model file's protobuf, read through `buf`, into its index."""

    def __init__(self, buf: mmap.mmap, name: str) -> None:
        self.buf = buf
        self.name = name
        self.files = {name}
        self._released = 0

    def _release(self, position: int) -> None:
        """Unmap the pages read so far: touched file pages count as this process's memory until then (and the
        kernel maps more around each one), which for a 650 MB model was 270 MB while the model was loaded."""
        end = position - position % mmap.PAGESIZE
        if end - self._released >= RELEASE_BYTES and hasattr(mmap, "MADV_DONTNEED"):
            self.buf.madvise(mmap.MADV_DONTNEED, self._released, end - self._released)
            self._released = end

    def model(self) -> bytes:
        out = bytearray()
        graphs = 0
        for field in fields(self.buf, 0, len(self.buf)):
            if field.number == MODEL_GRAPH and field.wire == BYTES:
                graphs += 1
                out += self._message(field, 0)
            else:
                out += self.buf[field.start : field.end]
        if graphs != 1:
            raise UnindexableModelError(f"{graphs} graphs in the model")
        return bytes(out)

    def _message(self, message: Field, level: int) -> bytes:
        """Graph (level 0) → node (1) → attribute (2) → tensor, and graph → initializer (tensor)."""
        out = bytearray()
        for field in fields(self.buf, message.payload, message.end):
            if level == 0:
                self._release(field.start)
            if field.wire != BYTES:
                out += self.buf[field.start : field.end]
            elif (level, field.number) in ((0, GRAPH_INITIALIZER), (2, ATTRIBUTE_TENSOR)):
                out += self._tensor(field)
            elif (level, field.number) in ((0, GRAPH_NODE), (1, NODE_ATTRIBUTE)):
                out += self._message(field, level + 1)
            elif level == 2 and field.number in ATTRIBUTE_GRAPHS:
                raise UnindexableModelError("the model has subgraphs")
            else:
                out += self.buf[field.start : field.end]
        return _bytes_field(message.number, bytes(out))

    def _tensor(self, tensor: Field) -> bytes:
        """The tensor with large raw data replaced by a reference into the model file."""
        raw: Field | None = None
        kept = bytearray()
        external = False
        for field in fields(self.buf, tensor.payload, tensor.end):
            if field.number == TENSOR_RAW_DATA and field.wire == BYTES:
                raw = field
                continue
            if field.number == TENSOR_DATA_LOCATION and field.wire == VARINT:
                external = _varint(self.buf, field.payload, field.end)[0] == EXTERNAL
                continue
            if field.number == TENSOR_EXTERNAL_DATA and field.wire == BYTES:
                # Such a model maps its weights already, and a hard link to its data file would make the onnx
                # package refuse it ("a potential hardlink attack").
                raise UnindexableModelError("its weights are in external data files already")
            kept += self.buf[field.start : field.end]
        if external or raw is None or raw.end - raw.payload < MIN_EXTERNAL_BYTES:
            return bytes(self.buf[tensor.start : tensor.end])
        kept += _entry("location", self.name)
        kept += _entry("offset", str(raw.payload))
        kept += _entry("length", str(raw.end - raw.payload))
        kept += _encode_varint(TENSOR_DATA_LOCATION << 3 | VARINT) + _encode_varint(EXTERNAL)
        return _bytes_field(tensor.number, bytes(kept))


def build_index(model: Path) -> Index:
    """The index of `model`: its protobuf with each embedded tensor of MIN_EXTERNAL_BYTES or more replaced by
    (location, offset, length) into the model file; raises UnindexableModelError where that is not possible."""
    with model.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        writer = _Writer(buf, model.name)
        return Index(writer.model(), frozenset(writer.files))
