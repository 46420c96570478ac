"""Format detection, gzip input and whole-file errors of the entry point ``iter_records``."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from nomosx.errors import IngestError, RecordError
from nomosx.ingest import ACCEPTED, Format, detect_format, iter_records
from nomosx.ingest._lines import describe_os_error
from tests.ingest.ingest_helpers import Writer, assert_positions, errors, read_all, sources

JSONL = json.dumps({"_id": "1", "title": "From JSON Lines", "text": "x"}) + "\n"
BIBTEX = "@article{k, title = {From BibTeX}, year = {2020}}\n"
RIS = "TY  - JOUR\nTI  - From RIS\nER  -\n"


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("a.jsonl", JSONL, "jsonl"),
        ("a.ndjson", JSONL, "jsonl"),
        ("a.JSON", JSONL, "jsonl"),
        ("a.bib", BIBTEX, "bibtex"),
        ("a.bibtex", BIBTEX, "bibtex"),
        ("a.ris", RIS, "ris"),
        ("a.jsonl.gz", JSONL, "jsonl"),
        ("a.bib.gz", BIBTEX, "bibtex"),
        ("a.ris.gz", RIS, "ris"),
        # no telling extension: the content decides
        ("export.txt", "\n\n" + RIS, "ris"),
        ("dump.data", "  " + JSONL, "jsonl"),
        ("refs.txt", "% comment\n" + BIBTEX, "bibtex"),
        ("refs", "\ufeff" + BIBTEX, "bibtex"),
        ("export.txt.gz", RIS, "ris"),
    ],
)
def test_detect_format(write: Writer, name: str, content: str, expected: Format) -> None:
    assert detect_format(write(name, content)) == expected


@pytest.mark.parametrize(
    ("name", "content", "title"),
    [
        ("w.jsonl.gz", JSONL, "From JSON Lines"),
        ("r.bib.gz", BIBTEX, "From BibTeX"),
        ("r.ris.gz", RIS, "From RIS"),
    ],
)
def test_gzip_input_of_every_format(write: Writer, name: str, content: str, title: str) -> None:
    path = write(name, content)
    parsed = read_all(path)
    assert [s.title for s in sources(parsed)] == [title]
    assert_positions(parsed, path)  # positions count compressed bytes, as on disk


def test_gzip_is_detected_by_content_whatever_the_name(tmp_path: Path) -> None:
    path = tmp_path / "works.jsonl"  # compressed, but not named .gz
    path.write_bytes(gzip.compress((JSONL * 3).encode()))
    parsed = read_all(path)
    assert len(sources(parsed)) == 3


def test_truncated_gzip_fails_after_the_records_it_could_read(tmp_path: Path) -> None:
    lines = "".join(
        json.dumps({"_id": str(i), "title": f"Title {i}", "text": "word " * 50}) + "\n"
        for i in range(2_000)
    )
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(gzip.compress(lines.encode())[:-200])
    records = iter_records(path)
    read = [next(records) for _ in range(1_000)]
    assert all(parsed.source is not None for parsed in read)
    with pytest.raises(IngestError, match=r"is not a valid gzip file .* after line \d+"):
        list(records)


def test_corrupt_gzip_is_an_ingest_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl.gz"
    path.write_bytes(b"\x1f\x8b" + b"\x00" * 40)
    with pytest.raises(IngestError, match="is not a valid gzip file"):
        iter_records(path)


@pytest.mark.parametrize("content", ["", "  \n\n\t\n"])
@pytest.mark.parametrize(
    "name", ["empty.jsonl", "empty.bib", "empty.ris", "empty.dat", "e.jsonl.gz"]
)
def test_empty_file_is_an_ingest_error(write: Writer, name: str, content: str) -> None:
    path = write(name, content)
    with pytest.raises(IngestError, match="is empty: there are no records to read"):
        iter_records(path)


def test_empty_file_detection(write: Writer) -> None:
    assert detect_format(write("empty.ris", "")) == "ris"  # the extension is enough
    with pytest.raises(IngestError, match="is empty"):
        detect_format(write("empty.dat", ""))


def test_unknown_format_names_the_file_and_the_accepted_formats(write: Writer) -> None:
    path = write("notes.docx", "PK\x03\x04 not a bibliography")
    for call in (detect_format, iter_records):
        with pytest.raises(IngestError) as caught:
            call(path)
        assert str(caught.value) == f"cannot tell the format of {path}: expected {ACCEPTED}"


def test_explicit_format_overrides_the_extension(write: Writer) -> None:
    path = write("refs.txt", BIBTEX)
    assert [s.title for s in sources(list(iter_records(path, "bibtex")))] == ["From BibTeX"]
    # reading BibTeX as JSON Lines reports every line, it does not crash
    parsed = list(iter_records(path, "jsonl"))
    assert sources(parsed) == []
    assert errors(parsed)[0].startswith(f"{path}:1: invalid JSON")


def test_unknown_format_name_is_refused(write: Writer) -> None:
    path = write("a.jsonl", JSONL)
    with pytest.raises(IngestError, match="unknown format 'csv'; choose one of jsonl, bibtex, ris"):
        iter_records(path, "csv")  # type: ignore[arg-type]


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="does not exist"):
        iter_records(tmp_path / "nope.jsonl")
    with pytest.raises(IngestError, match="is a directory, not a file"):
        iter_records(tmp_path)


def test_unreadable_file(write: Writer, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write("secret.jsonl", JSONL)

    def refuse(self: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "open", refuse)
    with pytest.raises(IngestError, match=r"cannot read .*secret\.jsonl: permission denied"):
        iter_records(path)


def test_file_checks_happen_before_iteration(tmp_path: Path) -> None:
    # iter_records raises at the call, so a CLI can fail fast before opening a database
    with pytest.raises(IngestError):
        iter_records(tmp_path / "missing.ris")


def test_record_error_is_an_ingest_error_with_line_and_source(write: Writer) -> None:
    path = write("bad.jsonl", "{oops}\n")
    [parsed] = read_all(path)
    assert isinstance(parsed.error, RecordError)
    assert isinstance(parsed.error, IngestError)
    assert parsed.error.line == 1
    assert parsed.error.source == str(path)
    assert parsed.error.reason.startswith("invalid JSON")


def test_describe_os_error() -> None:
    path = Path("x.bib")
    assert describe_os_error(path, IsADirectoryError(21, "Is a directory")) == (
        "x.bib is a directory, not a file"
    )
    assert describe_os_error(path, OSError(5, "Input/output error")) == (
        "cannot read x.bib: Input/output error"
    )
