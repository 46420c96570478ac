"""Reading an input file as numbered byte lines: gzip-transparent, never the whole file at once.

``Line.position`` counts bytes of the file *on disk* (compressed bytes for a gzip file), so
it can be compared with ``path.stat().st_size`` for a progress bar.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from nomosx.errors import IngestError, RecordError

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
MAX_LINE_BYTES = 64 * 1024 * 1024  # a longer line is reported, not loaded
_CHUNK = 1 << 20
_HEAD_CHUNK = 1 << 16
_WHITESPACE = b" \t\r\n\x0b\x0c"
_READ_ERRORS = (OSError, EOFError, zlib.error)


@dataclass(frozen=True, slots=True)
class Line:
    number: int  # 1-based
    data: bytes  # the line with its ending; empty when ``oversize``
    position: int  # bytes of the file consumed after this line
    oversize: int = 0  # the line's length in bytes when it exceeded MAX_LINE_BYTES


def describe_os_error(path: Path, exc: BaseException) -> str:
    """A one-line reason a file could not be read."""
    if isinstance(exc, gzip.BadGzipFile | EOFError | zlib.error):
        return f"{path} is not a valid gzip file ({exc})"
    if isinstance(exc, PermissionError):
        return f"cannot read {path}: permission denied"
    if isinstance(exc, IsADirectoryError):
        return f"{path} is a directory, not a file"
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return f"cannot read {path}: {reason}"


@contextmanager
def open_input(path: Path) -> Iterator[tuple[io.BufferedIOBase, Callable[[], int]]]:
    """The decompressed byte stream of ``path`` and a function giving the on-disk offset."""
    try:
        raw = path.open("rb")
    except OSError as exc:
        raise IngestError(describe_os_error(path, exc)) from exc
    with raw:
        try:
            magic = raw.peek(2)[:2]
        except OSError as exc:
            raise IngestError(describe_os_error(path, exc)) from exc
        if magic == GZIP_MAGIC:
            with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
                yield unzipped, raw.tell
        else:
            yield raw, raw.tell


def iter_lines(path: Path) -> Iterator[Line]:
    """Every line of ``path`` (decompressed), numbered from 1."""
    number = 0
    with open_input(path) as (stream, tell):
        try:
            while data := stream.readline(MAX_LINE_BYTES + 1):
                number += 1
                if len(data) <= MAX_LINE_BYTES or data.endswith(b"\n"):
                    yield Line(number, data, tell())
                    continue
                length = len(data)
                while data and not data.endswith(b"\n"):
                    data = stream.readline(_CHUNK)
                    length += len(data)
                yield Line(number, b"", tell(), oversize=length)
        except _READ_ERRORS as exc:
            raise IngestError(f"{describe_os_error(path, exc)} after line {number}") from exc


def decode_line(line: Line, path: Path) -> str:
    """The text of one line without its ending; ``RecordError`` if it is not UTF-8 or too long."""
    if line.oversize:
        raise RecordError(
            f"line is {line.oversize:,} bytes; the limit is {MAX_LINE_BYTES:,}",
            line=line.number,
            source=str(path),
        )
    data = line.data.removeprefix(UTF8_BOM) if line.number == 1 else line.data
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError(
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at byte {exc.start + 1} of the line); "
            "save the file as UTF-8",
            line=line.number,
            source=str(path),
        ) from None
    return text.rstrip("\r\n")


def head(path: Path, size: int = 64) -> bytes:
    """The first ``size`` bytes after any BOM and leading whitespace; ``b""`` if there are none."""
    start = b""
    with open_input(path) as (stream, _):
        try:
            first = True
            while len(start) < size:
                chunk = stream.read(_HEAD_CHUNK)
                if not chunk:
                    break
                if first:
                    chunk = chunk.removeprefix(UTF8_BOM)
                    first = False
                start = (start + chunk).lstrip(_WHITESPACE) if not start else start + chunk
        except _READ_ERRORS as exc:
            raise IngestError(describe_os_error(path, exc)) from exc
    return start[:size]
