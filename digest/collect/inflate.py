"""Undo Content-Encoding under our own control, counting every decompressed byte.

A 1.6 KB brotli response can expand to 1 GiB, and `gzip, gzip` multiplies the
ratio. Each layer here is asked for at most _STEP bytes at a time, so the
output is counted as it is produced and refused the moment it passes the cap:
memory never holds more than the cap plus one step.
"""

from __future__ import annotations

import zlib

import brotli

# Stacked encodings beyond this are refused: nothing legitimate needs more.
MAX_ENCODINGS = 2
SUPPORTED = "gzip, deflate, br"
_STEP = 256 * 1024


class InflateError(Exception):
    """The body cannot or may not be decompressed; the message says why."""


class _Zlib:
    def __init__(self, name: str) -> None:
        self.name = name
        self.tail = b""
        self.dec: zlib._Decompress | None = None

    def push(self, data: bytes) -> None:
        self.tail += data

    def pull(self, most: int) -> bytes:
        if not self.tail:
            return b""
        if self.dec is None:
            # "deflate" should be zlib-wrapped; some servers send it raw.
            wrapped = self.name != "deflate" or (
                self.tail[0] & 0x0F == 8 and int.from_bytes(self.tail[:2], "big") % 31 == 0
            )
            bits = 16 + zlib.MAX_WBITS if self.name != "deflate" else zlib.MAX_WBITS
            self.dec = zlib.decompressobj(bits if wrapped else -zlib.MAX_WBITS)
        try:
            out = self.dec.decompress(self.tail, most)
        except zlib.error as exc:
            raise InflateError(f"corrupt {self.name} body: {exc}") from None
        self.tail = self.dec.unconsumed_tail
        if self.dec.eof:
            # Another gzip member may follow; anything else after the end is ignored.
            rest = self.dec.unused_data
            self.dec = None
            self.tail = rest if self.name != "deflate" and rest[:2] == b"\x1f\x8b" else b""
        return out


class _Brotli:
    def __init__(self) -> None:
        self.tail = b""
        self.dec = brotli.Decompressor()

    def push(self, data: bytes) -> None:
        self.tail += data

    def pull(self, most: int) -> bytes:
        try:
            if self.dec.can_accept_more_data():
                data, self.tail = self.tail, b""
                return self.dec.process(data, output_buffer_limit=most)
            return self.dec.process(b"", output_buffer_limit=most)
        except brotli.error as exc:
            raise InflateError(f"corrupt br body: {exc}") from None


class Inflater:
    """Decodes a body chunk by chunk for its Content-Encoding header, up to `limit` bytes."""

    def __init__(self, content_encoding: str, limit: int) -> None:
        names = [n.strip().lower() for n in content_encoding.split(",") if n.strip()]
        names = [n for n in names if n != "identity"]
        if len(names) > MAX_ENCODINGS:
            raise InflateError(
                f"refused: {len(names)} stacked Content-Encodings ({', '.join(names)}); "
                f"at most {MAX_ENCODINGS} are accepted (a possible decompression bomb)"
            )
        layers: list[_Zlib | _Brotli] = []
        # Encodings are listed in the order applied, so they are undone in reverse.
        for name in reversed(names):
            if name in ("gzip", "x-gzip", "deflate"):
                layers.append(_Zlib("gzip" if name == "x-gzip" else name))
            elif name == "br":
                layers.append(_Brotli())
            else:
                raise InflateError(f"unsupported Content-Encoding {name!r}")
        self.layers = layers
        self.limit = limit
        self.size = 0

    def feed(self, chunk: bytes) -> list[bytes]:
        """Decoded pieces of `chunk`; InflateError as soon as the total passes the limit."""
        if not self.layers:
            self._count(len(chunk))
            return [chunk]
        out: list[bytes] = []
        self.layers[0].push(chunk)
        self._drain(0, out)
        return out

    def _drain(self, index: int, out: list[bytes]) -> None:
        layer = self.layers[index]
        while piece := layer.pull(_STEP):
            if index + 1 < len(self.layers):
                self.layers[index + 1].push(piece)
                self._drain(index + 1, out)
            else:
                self._count(len(piece))
                out.append(piece)

    def _count(self, size: int) -> None:
        self.size += size
        if self.size > self.limit:
            raise InflateError(
                f"larger than {self.limit} bytes once decompressed; "
                "raise DIGEST_MAX_FEED_BYTES if it is legitimate"
            )
