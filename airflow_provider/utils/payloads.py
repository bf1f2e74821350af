"""Streaming request bodies for presigned uploads.

``requests`` sends an iterable that has ``__len__`` with an exact ``Content-Length`` and pulls it
chunk by chunk, so a 500 MB file goes out with about one chunk in memory. The body also checks on
the fly that the source still has the size we announced and, for JSON, that it at least looks
like one JSON document (first and last non-blank bytes), so an obviously wrong file fails before
the run is created.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from airflow_provider.exceptions import InvalidInputError

_WHITESPACE = b" \t\r\n"


class JsonShapeCheck:
    """Cheap, streaming "is this plausibly one JSON object/array" check (O(1) memory)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.first: int | None = None
        self.last: int | None = None

    def feed(self, chunk: bytes) -> None:
        if self.first is None:
            stripped = chunk.lstrip(_WHITESPACE)
            if stripped:
                self.first = stripped[0]
                if self.first == 0xEF and stripped.startswith(b"\xef\xbb\xbf"):  # UTF-8 BOM
                    self.first = stripped[3] if len(stripped) > 3 else None
                if self.first is not None and self.first not in b"{[":
                    raise InvalidInputError(
                        f"{self.what} is not JSON: it starts with {bytes([self.first])!r}, "
                        "expected '{' or '['. Check the file, or set input_format='text'."
                    )
        tail = chunk.rstrip(_WHITESPACE)
        if tail:
            self.last = tail[-1]

    def finish(self) -> None:
        if self.first is None:
            raise InvalidInputError(f"{self.what} is empty; expected a JSON document.")
        if self.last not in b"}]":
            raise InvalidInputError(
                f"{self.what} is not complete JSON: it ends with {bytes([self.last or 0])!r} "
                "(truncated file?)."
            )


class StreamingBody:
    """An iterable upload body of exactly ``size`` bytes, with optional per-chunk checks.

    :param chunks: the source, in chunks (e.g. ``InputSource.chunks()``).
    :param size: bytes announced as Content-Length.
    :param on_chunk: called with each chunk before it is sent (raise to abort the upload).
    """

    def __init__(
        self, chunks: Iterable[bytes], size: int, what: str, on_chunk: Callable[[bytes], None] | None = None
    ):
        self._chunks = chunks
        self.size = size
        self.what = what
        self._on_chunk = on_chunk
        self.sent = 0

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            if not chunk:
                continue
            self.sent += len(chunk)
            if self.sent > self.size:
                raise InvalidInputError(
                    f"{self.what} grew while it was being uploaded ({self.sent:,} > {self.size:,} bytes)."
                )
            if self._on_chunk is not None:
                self._on_chunk(chunk)
            yield chunk
        if self.sent != self.size:
            raise InvalidInputError(
                f"{self.what} shrank while it was being uploaded ({self.sent:,} of {self.size:,} bytes)."
            )


class FileBody(StreamingBody):
    """A :class:`StreamingBody` of a local file that can be sent again: every iteration starts at
    the first byte (a retried POST re-reads the file), and ``sent`` tells afterwards whether the
    last attempt got through the whole body (a reset mid-upload provably delivered nothing usable)."""

    def __init__(self, path: str, size: int, what: str, chunk_size: int = 1024 * 1024) -> None:
        super().__init__((), size, what)
        self.path = path
        self.chunk_size = chunk_size

    def _read(self) -> Iterator[bytes]:
        with open(self.path, "rb") as f:
            while chunk := f.read(self.chunk_size):
                yield chunk

    def __iter__(self) -> Iterator[bytes]:
        self.sent = 0
        self._chunks = self._read()
        return super().__iter__()

    @property
    def complete(self) -> bool:
        """Whether the last attempt handed every byte to the connection."""
        return self.sent >= self.size
