"""The byte layout of a skinr stream: a fixed preamble, a header of small integers and
floats, and a range-coded payload, with a CRC-32 over everything after the preamble.

Every read is bounded by the bytes that are there: a truncated or altered stream is
one :class:`StreamError` ("corrupt or not a skinr stream: <reason>"), raised before
anything its header claims is allocated.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

__all__ = [
    "CODEC_VERSION",
    "LATENT_KIND",
    "MAGIC",
    "MODEL_KIND",
    "Reader",
    "StreamError",
    "Writer",
    "seal",
    "unseal",
]

MAGIC = b"SKNC"
#: The stream version this skinr writes (and the newest it reads). 2: streams of any
#: fitted estimator (kind 2) besides LatentCodec's (kind 1, unchanged since version 1).
CODEC_VERSION = 2
# The kinds of stream: 1, a LatentCodec; 2, any other fitted estimator.
LATENT_KIND, MODEL_KIND = 1, 2
# The preamble: magic, stream version, kind, CRC-32 of the rest.
_PREAMBLE = struct.Struct("<4sBBI")


class StreamError(ValueError):
    """A stream skinr refuses to decode (truncated, altered, or not one of skinr's)."""


def refuse(reason: str):
    raise StreamError(f"corrupt or not a skinr stream: {reason}") from None


def seal(version: int, kind: int, body: bytes) -> bytes:
    """Preamble (with the body's CRC-32) + body."""
    return _PREAMBLE.pack(MAGIC, version, kind, zlib.crc32(body)) + body


def unseal(data: bytes, max_version: int) -> tuple[int, int, bytes]:
    """The version, kind and body of a sealed stream, its CRC checked."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"decode takes bytes; got {type(data).__name__}.")
    data = bytes(data)
    if len(data) < _PREAMBLE.size:
        refuse(f"{len(data)} bytes is shorter than the {_PREAMBLE.size}-byte preamble")
    magic, version, kind, crc = _PREAMBLE.unpack_from(data)
    if magic != MAGIC:
        refuse("it does not start with skinr's magic bytes")
    if version == 0 or version > max_version:
        raise StreamError(
            f"the stream was written by codec version {version}; this skinr reads versions "
            f"1 to {max_version}. Upgrade skinr to decode it."
        )
    body = data[_PREAMBLE.size :]
    if zlib.crc32(body) != crc:
        refuse("its checksum does not match (the stream was truncated or altered)")
    return version, kind, body


class Writer:
    """Appends unsigned varints, zig-zag signed ints, float32s and raw bytes."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def uint(self, value: int) -> None:
        value = int(value)
        if value < 0:
            raise ValueError(f"uint field {value} is negative")
        out = bytearray()
        while True:
            byte, value = value & 0x7F, value >> 7
            out.append(byte | (0x80 if value else 0))
            if not value:
                break
        self.parts.append(bytes(out))

    def int(self, value: int) -> None:
        value = int(value)
        self.uint(2 * value if value >= 0 else -2 * value - 1)

    def float32(self, value: float) -> None:
        self.parts.append(struct.pack("<f", float(value)))

    def raw(self, data: bytes) -> None:
        self.uint(len(data))
        self.parts.append(bytes(data))

    def words(self, words: np.ndarray) -> None:
        self.raw(np.asarray(words, dtype="<u4").tobytes())

    def getvalue(self) -> bytes:
        return b"".join(self.parts)


class Reader:
    """Reads what :class:`Writer` wrote; each field checked against its bounds."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def uint(self, name: str, high: int, low: int = 0) -> int:
        value, shift = 0, 0
        while True:
            if self.at >= len(self.data):
                refuse(f"it ends inside the field {name!r}")
            byte = self.data[self.at]
            self.at += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
            if shift > 63:
                refuse(f"the field {name!r} is not a small integer")
        if not low <= value <= high:
            refuse(f"{name}={value} is outside [{low}, {high}]")
        return value

    def int(self, name: str, low: int, high: int) -> int:
        raw = self.uint(name, 2 * max(abs(low), abs(high)) + 1)
        value = raw // 2 if raw % 2 == 0 else -(raw + 1) // 2
        if not low <= value <= high:
            refuse(f"{name}={value} is outside [{low}, {high}]")
        return value

    def float32(self, name: str, finite: bool = True) -> float:
        if self.at + 4 > len(self.data):
            refuse(f"it ends inside the field {name!r}")
        (value,) = struct.unpack_from("<f", self.data, self.at)
        self.at += 4
        if finite and not np.isfinite(value):
            refuse(f"{name}={value} is not a finite number")
        return float(value)

    def raw(self, name: str, high: int) -> bytes:
        size = self.uint(f"{name} length", min(high, len(self.data) - self.at))
        out = self.data[self.at : self.at + size]
        self.at += size
        return out

    def words(self, name: str) -> np.ndarray:
        data = self.raw(name, len(self.data))
        if len(data) % 4:
            refuse(f"the {name} is not whole 32-bit words")
        return np.frombuffer(data, dtype="<u4").astype(np.uint32)

    def end(self) -> None:
        if self.at != len(self.data):
            refuse(f"{len(self.data) - self.at} bytes follow the payload")
