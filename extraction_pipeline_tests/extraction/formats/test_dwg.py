"""DWG extraction: the real-world corpus, renamed copies, and hostile or hand-modified copies of it."""

from __future__ import annotations

import random
import struct
import time
from pathlib import Path

import pytest

from extraction_pipeline.extraction.extract import extract_file
from extraction_pipeline_tests.corpus import CORPUS_DIR

DWG_DIR = CORPUS_DIR / "dwg"
needs_corpus = pytest.mark.skipif(not DWG_DIR.is_dir(), reason=f"no corpus at {CORPUS_DIR}")

REQUIRED_KEYS = {
    "dwg_version",
    "release",
    "codepage",
    "title",
    "subject",
    "author",
    "keywords",
    "comments",
    "last_saved_by",
    "hyperlink_base",
    "custom_properties",
    "layer_names",
    "entity_counts",
    "content_readable",
}


def _corpus_bytes(name: str) -> bytes:
    return (DWG_DIR / name).read_bytes()


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@needs_corpus
def test_r13_placeholder_layer_names_are_not_reported():
    envelope = extract_file(DWG_DIR / "example_r13.dwg")
    assert envelope.status == "succeeded"
    assert envelope.metadata["layer_names"] is None  # ezdwg only has placeholders (LAYER_10 ...)
    assert "POLYLINE_2D" not in envelope.metadata["entity_counts"]
    assert "ATTRIB" not in envelope.metadata["entity_counts"]  # attributes belong to their INSERT


@needs_corpus
def test_pre_r13_file_succeeds_without_content(tmp_path):
    envelope = extract_file(DWG_DIR / "r11_entities-2d.dwg")
    assert envelope.status == "succeeded"
    assert envelope.metadata["content_readable"] is False
    assert envelope.metadata["layer_names"] is None and envelope.metadata["entity_counts"] is None
    assert envelope.metadata["custom_properties"] == {}
    assert any("AC1009" in w for w in envelope.warnings)


# --------------------------------------------------------------------------- constructed headers


def _r2004_header(version: bytes, codepage: int, summary_address: int = 0, security: int = 0) -> bytes:
    head = bytearray(0x100)
    head[0:6] = version
    head[0x0B] = 7  # maintenance release
    head[0x0C] = 3
    struct.pack_into("<H", head, 0x13, codepage)
    struct.pack_into("<I", head, 0x18, security)
    struct.pack_into("<I", head, 0x20, summary_address)
    struct.pack_into("<I", head, 0x28, 0x80)
    return bytes(head)


def test_header_only_r2018_file_reports_version_and_codepage(tmp_path):
    path = _write(tmp_path, "header_only.dwg", _r2004_header(b"AC1032", 29))
    envelope = extract_file(path)
    assert envelope.status == "succeeded", envelope.error
    meta = envelope.metadata
    assert (meta["dwg_version"], meta["release"]) == ("AC1032", "R2018")
    assert (meta["codepage"], meta["codepage_number"], meta["maintenance_release"]) == ("ANSI_1251", 29, 7)
    assert meta["content_readable"] is False
    assert meta["title"] is None and meta["custom_properties"] == {}
    assert any("could not be read" in w for w in envelope.warnings)


def test_header_only_r2000_file_reports_version_and_codepage(tmp_path):
    head = bytearray(0x19)
    head[0:6] = b"AC1015"
    head[0x0B] = 15
    struct.pack_into("<H", head, 0x13, 30)
    envelope = extract_file(_write(tmp_path, "r2000_header.dwg", bytes(head)))
    assert envelope.status == "succeeded", envelope.error
    assert envelope.metadata["release"] == "R2000"
    assert envelope.metadata["codepage"] == "ANSI_1252"
    assert envelope.metadata["content_readable"] is False


@pytest.mark.parametrize("data", [b"AC1032", b"AC1015\x00\x00\x00\x00", b"AC1018" + bytes(0x40)])
def test_file_cut_inside_its_header_is_corrupt(data, tmp_path):
    envelope = extract_file(_write(tmp_path, "cut.dwg", data))
    assert envelope.status == "failed"
    assert envelope.format == "dwg"
    assert envelope.error.code == "corrupt"
    assert "truncated" in envelope.error.message


def test_password_protected_r2004_file_is_reported_encrypted(tmp_path):
    path = _write(tmp_path, "locked.dwg", _r2004_header(b"AC1018", 30, security=0x3))
    envelope = extract_file(path)
    assert envelope.status == "failed"
    assert envelope.error.code == "encrypted"


def test_extractor_rejects_bytes_that_are_not_dwg(tmp_path):
    from extraction_pipeline.extraction.context import ExtractionContext
    from extraction_pipeline.extraction.detect import Detection, Format
    from extraction_pipeline.extraction.errors import CorruptFile
    from extraction_pipeline.extraction.formats import dwg

    path = _write(tmp_path, "fake.dwg", b"NOT A DRAWING" + bytes(200))
    context = ExtractionContext(detection=Detection(Format.DWG), filename="fake.dwg")
    with pytest.raises(CorruptFile):
        dwg.extract(path, context)


# --------------------------------------------------------------------------- modified corpus copies


@needs_corpus
@pytest.mark.parametrize("name", ["sample_2018.dwg", "testDWG2004.dwg", "sample_2000.dwg", "example_r13.dwg"])
def test_truncated_copy_keeps_header_and_loses_content(name, tmp_path):
    data = _corpus_bytes(name)
    path = _write(tmp_path, "truncated.dwg", data[: len(data) // 3])
    envelope = extract_file(path)
    assert envelope.status == "succeeded", envelope.error
    full = extract_file(DWG_DIR / name).metadata
    assert envelope.metadata["dwg_version"] == full["dwg_version"]
    assert envelope.metadata["codepage"] == full["codepage"]
    assert envelope.metadata["content_readable"] is False
    assert envelope.metadata["entity_counts"] is None
    assert any("content" in w for w in envelope.warnings)


@needs_corpus
@pytest.mark.parametrize(
    "name", ["sample_2018.dwg", "testDWG2004.dwg", "sample_2000.dwg", "r11_entities-2d.dwg"]
)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_bytes_after_the_magic_never_raise(name, seed, tmp_path):
    rng = random.Random(seed)
    data = _corpus_bytes(name)[:6] + rng.randbytes(200_000)
    path = _write(tmp_path, "garbage.dwg", data)
    started = time.perf_counter()
    envelope = extract_file(path)
    assert time.perf_counter() - started < 10
    assert envelope.format == "dwg"
    if envelope.status == "failed":
        assert envelope.error.code == "corrupt"
    else:
        assert envelope.metadata["content_readable"] is False
        assert envelope.metadata["dwg_version"] == data[:6].decode()


@needs_corpus
def test_summary_address_pointing_past_the_end_is_survived(tmp_path):
    data = bytearray(_corpus_bytes("testDWG2004.dwg"))
    struct.pack_into("<I", data, 0x20, 0xFFFFFFF0)
    envelope = extract_file(_write(tmp_path, "bad_address.dwg", bytes(data)))
    assert envelope.status == "succeeded", envelope.error
    assert envelope.metadata["title"] is None
    assert envelope.metadata["content_readable"] is True
    assert any("SummaryInfo" in w for w in envelope.warnings)


def _summary_info(strings: list[str], custom: dict[str, str], unicode: bool) -> bytes:
    def encode(text: str) -> bytes:
        if unicode:
            return struct.pack("<H", len(text) + 1) + text.encode("utf-16-le") + b"\x00\x00"
        raw = text.encode("cp1252")
        return struct.pack("<H", len(raw) + 1) + raw + b"\x00"

    out = b"".join(encode(s) for s in strings)
    out += struct.pack("<IIIIII", 0, 60_000, 2_460_000, 3_600_000, 2_460_001, 7_200_000)
    out += struct.pack("<H", len(custom))
    for key, value in custom.items():
        out += encode(key) + encode(value)
    return out + bytes(8)


@needs_corpus
@pytest.mark.parametrize(("name", "unicode"), [("sample_2018.dwg", True), ("testDWG2004.dwg", False)])
def test_summary_info_with_custom_properties(name, unicode, tmp_path):
    data = bytearray(_corpus_bytes(name))
    strings = ["Façade plan", "Subject", "Ada", "kw1, kw2", "Note", "Bob", "3", "https://example.org/"]
    custom = {"Client": "ACME Bâtiment", "Project No": "42"}
    address = len(data)
    data += _summary_info(strings, custom, unicode)
    struct.pack_into("<I", data, 0x20, address)
    envelope = extract_file(_write(tmp_path, "props.dwg", bytes(data)))
    assert envelope.status == "succeeded", envelope.error
    meta = envelope.metadata
    assert meta["title"] == "Façade plan"
    assert meta["author"] == "Ada"
    assert meta["keywords"] == "kw1, kw2"
    assert meta["comments"] == "Note"
    assert meta["last_saved_by"] == "Bob"
    assert meta["hyperlink_base"] == "https://example.org/"
    assert meta["custom_properties"] == custom
    assert meta["created_at"] == "2023-02-24T01:00:00"
    assert meta["content_readable"] is True  # the drawing itself is untouched


def _dwgprops_record(title: str, custom: dict[str, str]) -> bytes:
    def text(code: int, value: str) -> bytes:
        raw = value.encode("cp1252")
        return struct.pack("<HHB", code, len(raw), 30) + raw

    out = text(1, "DWGPROPS COOKIE") + text(2, title) + text(3, "") + text(4, "Eve") + text(6, "")
    out += text(7, "") + text(8, "Mallory") + text(9, "")
    pairs = [f"{k}={v}" for k, v in custom.items()]
    for index in range(10):
        out += text(300 + index, pairs[index] if index < len(pairs) else "=")
    out += (
        struct.pack("<Hd", 40, 0.5)
        + struct.pack("<Hd", 41, 2_460_000.25)
        + struct.pack("<Hd", 42, 2_460_000.5)
    )
    out += text(1, "http://hyper.example/") + struct.pack("<Hi", 90, 0)
    return out


def _shift_right(data: bytes, bits: int) -> bytes:
    """``data`` placed ``bits`` bits into a bit stream, padded with ones on both ends."""
    width = 8 * (len(data) + 2)
    number = (int.from_bytes(b"\xff" + data + b"\xff", "big") >> bits) | (((1 << bits) - 1) << (width - bits))
    return number.to_bytes(len(data) + 2, "big")


@needs_corpus
@pytest.mark.parametrize("bits", [0, 3, 7])
def test_dwgprops_record_found_at_any_bit_offset(bits, tmp_path):
    data = _corpus_bytes("sample_2000.dwg") + _shift_right(
        _dwgprops_record("Site plan", {"Client": "ACME", "Phase": "2"}), bits
    )
    envelope = extract_file(_write(tmp_path, "props.dwg", data))
    assert envelope.status == "succeeded", envelope.error
    meta = envelope.metadata
    assert (meta["title"], meta["author"], meta["last_saved_by"]) == ("Site plan", "Eve", "Mallory")
    assert meta["hyperlink_base"] == "http://hyper.example/"
    assert meta["custom_properties"] == {"Client": "ACME", "Phase": "2"}
    assert meta["created_at"] == "2023-02-24T06:00:00"
    assert meta["layer_names"] == ["0", "Tavolo 1"]


@needs_corpus
def test_real_r13_dwgprops_record_shifted_by_five_bits(tmp_path):
    r13 = _corpus_bytes("example_r13.dwg")
    start = r13.index(b"DWGPROPS COOKIE") - 5
    data = _corpus_bytes("sample_2000.dwg") + _shift_right(r13[start : start + 300], 5)
    envelope = extract_file(_write(tmp_path, "r13props.dwg", data))
    assert envelope.status == "succeeded", envelope.error
    assert envelope.metadata["last_saved_by"] == "rurban"


@needs_corpus
def test_damaged_dwgprops_record_does_not_fail_the_file(tmp_path):
    record = _dwgprops_record("Cut", {})
    # The cookie with nothing decodable after it: a string length running past the end of the file.
    data = _corpus_bytes("sample_2000.dwg") + record[:20] + b"\x02\x00\xff\xff\x1e" + b"x" * 10
    envelope = extract_file(_write(tmp_path, "cut_props.dwg", data))
    assert envelope.status == "succeeded", envelope.error
    assert envelope.metadata["title"] is None
    assert envelope.metadata["entity_counts"] == {"CIRCLE": 1, "LINE": 3, "LWPOLYLINE": 1, "TEXT": 1}
