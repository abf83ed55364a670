"""Hostile files end as envelopes: never a traceback, within the time limit, in a memory-capped worker.

Every input is generated here (zero bytes, random bytes, each format's magic followed by garbage, real
corpus files cut in half, pathological structures, decompression and entity bombs, hostile names) and
extracted through the isolated ``WorkerPool``. A file that cannot be read must fail *permanently* with a
clear code; a file the library legitimately recovers may succeed, but then with a warning.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from extraction_pipeline.extraction.envelope import Envelope
from extraction_pipeline.extraction.errors import PERMANENT_CODES, WORKER_FAILURE_CODES
from extraction_pipeline.extraction.workers import WorkerPool, WorkerResult
from extraction_pipeline_tests.corpus import CORPUS_DIR, corpus_entries
from extraction_pipeline_tests.pdfs import pdf_bytes

TIMEOUT_S = 60.0
MEMORY_BYTES = 1536 * 1024 * 1024  # 1.5 GiB of address space per worker
# A failed extraction may only carry one of these codes (INTERFACE.md's error codes of the core).
FAILURE_CODES = set(PERMANENT_CODES) | set(WORKER_FAILURE_CODES)
GIB = 1024 * 1024 * 1024


# --------------------------------------------------------------------------------------------
# Builders: each writes one hostile file into a folder and returns its path
# --------------------------------------------------------------------------------------------


def garbage(size: int, seed: int) -> bytes:
    """Reproducible random bytes."""
    return random.Random(seed).randbytes(size)


def spf_header(schema: str) -> bytes:
    return (
        "ISO-10303-21;\nHEADER;\nFILE_DESCRIPTION(('hostile'),'2;1');\n"
        "FILE_NAME('hostile','2024-01-01T00:00:00',(''),(''),'pytest','pytest','');\n"
        f"FILE_SCHEMA(('{schema}'));\nENDSEC;\nDATA;\n"
    ).encode()


SPF_END = b"ENDSEC;\nEND-ISO-10303-21;\n"
BINARY_DXF_SENTINEL = b"AutoCAD Binary DXF\r\n\x1a\x00"
IFCXML_ROOT = b'<ifcXML xmlns="http://www.buildingsmart-tech.org/ifcXML/IFC4/final">'

# The right magic for every format (and variant), each followed by 64 KiB of random bytes.
MAGIC: dict[str, tuple[str, bytes]] = {
    "pdf": ("garbage.pdf", b"%PDF-1.7\n"),
    "dxf-ascii": ("garbage.dxf", b"  0\nSECTION\n  2\nHEADER\n"),
    "dxf-binary": ("garbage.dxf", BINARY_DXF_SENTINEL),
    "dwg": ("garbage.dwg", b"AC1032"),
    "ifc-spf": ("garbage.ifc", spf_header("IFC4")),
    "ifczip-header": ("garbage.ifczip", b"PK\x03\x04"),
    "ifcxml": ("garbage.ifcxml", b'<?xml version="1.0" encoding="UTF-8"?>\n' + IFCXML_ROOT),
    "step": ("garbage.stp", spf_header("AUTOMOTIVE_DESIGN { 1 0 10303 214 1 1 1 1 }")),
}


def magic_then_garbage(folder: Path, kind: str) -> Path:
    name, magic = MAGIC[kind]
    path = folder / name
    path.write_bytes(magic + garbage(64 * 1024, seed=len(kind)))
    return path


def ifczip_of_garbage(folder: Path) -> Path:
    """A well-formed zip whose model.ifc member is random bytes."""
    path = folder / "garbage-member.ifczip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("model.ifc", garbage(64 * 1024, seed=7))
    return path


def deeply_nested_pdf(folder: Path, depth: int = 200_000) -> Path:
    """A one-page PDF whose page /Annots and document /Title are nested ``depth`` levels deep."""
    deep_array = b"[" * depth + b"]" * depth
    deep_dict = b"<< /A " * depth + b"1" + b" >>" * depth
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Annots " + deep_array + b" >>",
        b"<< /Title " + deep_dict + b" >>",
    ]
    path = folder / "nested.pdf"
    path.write_bytes(pdf_bytes(objects, info=4))
    return path


def many_pages_pdf(folder: Path, pages: int = 20_000) -> Path:
    """A PDF of ``pages`` pages with a line of text each (one shared content stream, flat page tree)."""
    content = b"BT /F1 12 Tf 72 720 Td (A page of a very long document) Tj ET"
    first_page = 5
    kids = b" ".join(b"%d 0 R" % (first_page + i) for i in range(pages))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
    ]
    page = (
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 3 0 R >> >> /Contents 4 0 R >>"
    )
    objects += [page] * pages
    path = folder / "many-pages.pdf"
    path.write_bytes(pdf_bytes(objects))
    return path


def headerless_dxf(folder: Path, entities: int = 300_000) -> Path:
    """An ASCII DXF of only an ENTITIES section holding ``entities`` LINEs (no HEADER, no TABLES)."""
    lines = "".join(
        f"  0\nLINE\n  8\n0\n 10\n{i}.0\n 20\n0.0\n 30\n0.0\n 11\n{i}.5\n 21\n1.0\n 31\n0.0\n"
        for i in range(entities)
    )
    path = folder / "headerless.dxf"
    path.write_text("  0\nSECTION\n  2\nENTITIES\n" + lines + "  0\nENDSEC\n  0\nEOF\n", encoding="ascii")
    return path


def unclosed_parentheses_ifc(folder: Path, count: int = 50_000) -> Path:
    body = b"#1=IFCPROJECT('0YvctVUKr0kugbFTf53O9L',$,'Hostile',$,$,$,$,$,$);\n#2=IFCWALL(" + b"(" * count
    path = folder / "unclosed.ifc"
    path.write_bytes(spf_header("IFC4") + body + b"\n" + SPF_END)
    return path


def dangling_references_step(folder: Path, count: int = 200_000, *, gathered: bool = False) -> Path:
    """A STEP file of ``count`` vertices whose points do not exist.

    ``gathered``: one more entity lists all of them, and a solid refers to that (OpenCascade's reader
    slows down far more than linearly on this).
    """
    missing = 10 * count
    body = "".join(f"#{i}=VERTEX_POINT('',#{missing + i});\n" for i in range(1, count + 1))
    if gathered:
        refs = ",".join(f"#{i}" for i in range(1, count + 1))
        body += f"#{count + 1}=VERTEX_LOOP('',({refs}));\n"
        body += f"#{count + 2}=MANIFOLD_SOLID_BREP('hostile',#{count + 1});\n"
    path = folder / ("dangling-gathered.stp" if gathered else "dangling.stp")
    path.write_bytes(
        spf_header("AUTOMOTIVE_DESIGN { 1 0 10303 214 1 1 1 1 }") + body.encode("ascii") + SPF_END
    )
    return path


def zip_bomb_ifczip(folder: Path, size: int = 2 * GIB) -> Path:
    """An ifcZIP whose model.ifc inflates to ``size`` bytes of zeros (a few MB on disk)."""
    path = folder / "bomb.ifczip"
    chunk = bytes(8 * 1024 * 1024)
    with (
        zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open("model.ifc", "w", force_zip64=True) as member,
    ):
        for _ in range(size // len(chunk)):
            member.write(chunk)
    return path


def billion_laughs_ifcxml(folder: Path) -> Path:
    entities = ['  <!ENTITY lol0 "lol">']
    entities += [f'  <!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE ifcXML [\n'
        + "\n".join(entities)
        + "\n]>\n"
        + IFCXML_ROOT.decode()
        + "<IfcProject><Name>&lol9;</Name></IfcProject></ifcXML>\n"
    )
    path = folder / "laughs.ifcxml"
    path.write_text(text, encoding="utf-8")
    return path


def small_pdf(path: Path) -> Path:
    """A real one-page PDF made with PyMuPDF."""
    import pymupdf

    document = pymupdf.open()
    document.new_page(width=595, height=842).insert_text((72, 72), "An ordinary upload")
    document.save(path)
    document.close()
    return path


# --------------------------------------------------------------------------------------------
# The pool and the checks every envelope must pass
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pool() -> Iterator[WorkerPool]:
    """One isolated worker for the whole module: 60 s and 1.5 GiB of address space per file."""
    with WorkerPool(timeout_s=TIMEOUT_S, memory_bytes=MEMORY_BYTES) as workers:
        yield workers


def extract(pool: WorkerPool, path: Path, name: str | None = None, **options: Any) -> tuple[Envelope, float]:
    """Extract through the pool and check what holds for every outcome; returns (envelope, seconds).
    ``options``: ``max_text_chars`` and ``preview``, as the pipeline asks for them."""
    envelope, seconds, _ = extract_run(pool, path, name, **options)
    return envelope, seconds


def extract_run(
    pool: WorkerPool, path: Path, name: str | None = None, **options: Any
) -> tuple[Envelope, float, WorkerResult]:
    """``extract`` that also tells what became of the worker."""
    started = time.monotonic()
    result = pool.run(path, name, **options)  # an exception here fails the test: it must never raise
    seconds = time.monotonic() - started
    envelope = result.envelope
    assert isinstance(envelope, Envelope)
    # Within the time limit (plus the time to kill and report a worker that overran it).
    assert seconds < TIMEOUT_S + 15, f"{path.name} took {seconds:.1f} s"
    assert envelope.file.name == (name if name is not None else path.name)
    assert envelope.file.size_bytes == path.stat().st_size
    # Valid Unicode throughout: the envelope goes to stdout as UTF-8 JSON and into JSONB columns
    # (regression: raw bytes of a damaged IFC came back from ifcopenshell as lone surrogates).
    json.dumps(envelope.model_dump(mode="json"), ensure_ascii=False).encode("utf-8")
    if envelope.status == "failed":
        error = envelope.error
        assert error is not None
        # One attempt only: whatever went wrong is final, and said with one of the contract's codes.
        assert error.kind == "permanent", error
        assert error.code in FAILURE_CODES, error
        assert error.message.strip(), error
        assert "Traceback" not in error.message
        assert envelope.metadata == {}
    else:
        assert envelope.status == "succeeded"
        assert envelope.error is None
        assert envelope.metadata
    return envelope, seconds, result


def assert_unreadable_or_recovered(envelope: Envelope, *, worker_failure_ok: bool = False) -> None:
    """A damaged file either fails with a permanent code of the file's own, or succeeds with a warning.

    ``worker_failure_ok``: a crash, out-of-memory or timeout of the worker is accepted too (it is final
    here, with one attempt).
    """
    if envelope.status == "failed":
        allowed = FAILURE_CODES if worker_failure_ok else set(PERMANENT_CODES)
        assert envelope.error is not None and envelope.error.code in allowed, envelope.error
    else:
        assert envelope.warnings, "a damaged file read without any warning"


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------------------------------
# Nothing to read: empty, random, magic + garbage
# --------------------------------------------------------------------------------------------


def test_zero_bytes_is_unsupported(pool: WorkerPool, tmp_path: Path) -> None:
    envelope, _ = extract(pool, write(tmp_path / "empty.pdf", b""))
    assert envelope.status == "failed"
    assert envelope.error is not None and envelope.error.code == "unsupported_format"
    assert envelope.file.sha256 == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.mark.parametrize("name", ["random.bin", "random.pdf", "random.ifc"])
def test_random_bytes_are_unsupported(pool: WorkerPool, tmp_path: Path, name: str) -> None:
    envelope, _ = extract(pool, write(tmp_path / name, garbage(1024 * 1024, seed=len(name))))
    assert envelope.status == "failed"
    assert envelope.format == "unknown"
    assert envelope.error is not None and envelope.error.code == "unsupported_format"


# The format (and variant) detection must see for each magic; the ifcZIP local-file-header magic
# alone, with no archive behind it, is no ifcZIP.
MAGIC_FORMATS = {
    "pdf": ("pdf", None),
    "dxf-ascii": ("dxf", "ascii"),
    "dxf-binary": ("dxf", "binary"),
    "dwg": ("dwg", None),
    "ifc-spf": ("ifc", "spf"),
    "ifczip-header": ("unknown", None),
    "ifcxml": ("ifc", "ifcxml"),
    "step": ("step", None),
}


@pytest.mark.parametrize("kind", sorted(MAGIC))
def test_right_magic_followed_by_garbage_fails_permanently(
    pool: WorkerPool, tmp_path: Path, kind: str
) -> None:
    envelope, seconds = extract(pool, magic_then_garbage(tmp_path, kind))
    assert (envelope.format, envelope.variant) == MAGIC_FORMATS[kind]
    assert seconds < 20
    if kind == "dwg" and envelope.status == "succeeded":
        # Only the version string could be read: that is said, and no content is made up.
        assert envelope.metadata["dwg_version"] == "AC1032"
        assert envelope.metadata["content_readable"] is False
        assert envelope.metadata["entity_counts"] is None
        assert envelope.warnings
    else:
        assert envelope.status == "failed"
        assert envelope.error is not None and envelope.error.code in ("corrupt", "unsupported_format")


def test_ifczip_whose_model_is_garbage_is_corrupt(pool: WorkerPool, tmp_path: Path) -> None:
    envelope, _ = extract(pool, ifczip_of_garbage(tmp_path))
    assert (envelope.format, envelope.variant) == ("ifc", "ifczip")
    assert envelope.status == "failed"
    assert envelope.error is not None and envelope.error.code == "corrupt"


# --------------------------------------------------------------------------------------------
# Real files cut in half
# --------------------------------------------------------------------------------------------


def _corpus_ids() -> list[str]:
    return [entry["file"] for entry in corpus_entries()]


@pytest.mark.skipif(not _corpus_ids(), reason=f"no corpus at {CORPUS_DIR}")
@pytest.mark.parametrize("relative", _corpus_ids() or ["none"])
def test_corpus_file_truncated_at_half(pool: WorkerPool, tmp_path: Path, relative: str) -> None:
    source = CORPUS_DIR / relative
    data = source.read_bytes()
    path = write(tmp_path / source.name, data[: len(data) // 2])
    envelope, _ = extract(pool, path)
    assert_unreadable_or_recovered(envelope)
    if envelope.status == "succeeded":
        assert envelope.format == source.parent.name


# --------------------------------------------------------------------------------------------
# Pathological structures
# --------------------------------------------------------------------------------------------


def test_pdf_object_nested_200k_levels(pool: WorkerPool, tmp_path: Path) -> None:
    envelope, _ = extract(pool, deeply_nested_pdf(tmp_path))
    assert envelope.format == "pdf"
    assert_unreadable_or_recovered(envelope)
    if envelope.status == "succeeded":
        # Regression: MuPDF skipped the objects it could not load and the PDF "succeeded" silently.
        assert any("could not be read" in w for w in envelope.warnings), envelope.warnings


# What the pipeline asks of the worker besides the metadata: the text (capped lower here than the
# default, so that the cap is reached) and the preview.
WITH_TEXT_AND_PREVIEW: dict[str, Any] = {"max_text_chars": 100_000, "preview": True}


@pytest.mark.slow
def test_pdf_with_20000_pages(pool: WorkerPool, tmp_path: Path) -> None:
    envelope, _ = extract(pool, many_pages_pdf(tmp_path), **WITH_TEXT_AND_PREVIEW)
    assert (envelope.format, envelope.status) == ("pdf", "succeeded"), envelope.error
    assert envelope.metadata["page_count"] == 20_000
    assert envelope.metadata["page_sizes_pt"] == [{"size": [612.0, 792.0], "count": 20_000}]
    assert envelope.metadata["pages_without_text"] == 0
    # The text stops at the cap and says so; the preview is the first page.
    assert envelope.text is not None and envelope.text_truncated
    assert 90_000 < len(envelope.text) <= 100_000
    assert envelope.text.startswith("A page of a very long document")
    assert envelope.preview_png is not None


@pytest.mark.slow
def test_dxf_with_300k_entities_and_no_header(pool: WorkerPool, tmp_path: Path) -> None:
    envelope, _ = extract(pool, headerless_dxf(tmp_path), **WITH_TEXT_AND_PREVIEW)
    assert (envelope.format, envelope.variant, envelope.status) == ("dxf", "ascii", "succeeded"), (
        envelope.error
    )
    assert envelope.metadata["entity_counts"] == {"LINE": 300_000}
    # Too many entities to draw within the limits: no preview, and why; the file still succeeds.
    assert envelope.preview_png is None
    assert any(w.startswith("no preview: the modelspace has 300000 entities") for w in envelope.warnings)
    assert envelope.text is None and not envelope.text_truncated  # lines carry no text


def many_products_ifc(folder: Path, products: int = 100_000) -> Path:
    """An IFC4 model of ``products`` walls, each with a name, and no geometry."""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_$"

    def guid(number: int) -> str:
        digits = []
        for _ in range(22):
            number, digit = divmod(number, 64)
            digits.append(alphabet[digit])
        return "".join(digits)

    lines = [f"#1=IFCPROJECT('{guid(0)}',$,'Many walls',$,$,$,$,$,$);"]
    lines += [
        f"#{number + 2}=IFCWALL('{guid(number + 1)}',$,'Wall number {number}',$,$,$,$,$,$);"
        for number in range(products)
    ]
    path = folder / "many-products.ifc"
    path.write_bytes(spf_header("IFC4") + "\n".join(lines).encode() + b"\n" + SPF_END)
    return path


@pytest.mark.slow
def test_ifc_with_100k_products(pool: WorkerPool, tmp_path: Path) -> None:
    envelope, _ = extract(pool, many_products_ifc(tmp_path), **WITH_TEXT_AND_PREVIEW)
    assert (envelope.format, envelope.variant, envelope.status) == ("ifc", "spf", "succeeded"), envelope.error
    assert envelope.metadata["element_counts"] == {"IfcWall": 100_000}
    assert envelope.text is not None and envelope.text_truncated and len(envelope.text) <= 100_000
    assert "Wall number 0" in envelope.text
    assert envelope.preview_png is None
    assert any(w.startswith("no preview: the model has 100000 products") for w in envelope.warnings)


def test_ifc_with_50k_unclosed_parentheses(pool: WorkerPool, tmp_path: Path) -> None:
    envelope, _ = extract(pool, unclosed_parentheses_ifc(tmp_path))
    assert (envelope.format, envelope.variant) == ("ifc", "spf")
    assert_unreadable_or_recovered(envelope)
    if envelope.status == "succeeded":
        # What could be read is kept, and the broken instance is named in a warning.
        assert envelope.metadata["project_name"] == "Hostile"
        assert any("#2" in w for w in envelope.warnings), envelope.warnings


def test_step_with_200k_dangling_references(pool: WorkerPool, tmp_path: Path) -> None:
    envelope, _ = extract(pool, dangling_references_step(tmp_path))
    assert envelope.format == "step"
    # OpenCascade needs ~1 GiB of address space for these 7 MB: depending on what the shared worker
    # already holds it reports "corrupt", or fails to allocate (malloc failed -> "corrupt", or SIGSEGV
    # -> "crashed") under the 1.5 GiB cap.
    assert_unreadable_or_recovered(envelope, worker_failure_ok=True)
    if envelope.status == "succeeded":
        assert envelope.metadata["solid_count"] == 0


# A time limit well below what OpenCascade needs for the file below, so the test waits for the limit
# only as long as it has to (the pool's usual 60 s would add 45 s to every test run).
SHORT_TIMEOUT_S = 15.0


@pytest.mark.slow
def test_step_with_200k_dangling_references_gathered_in_one_loop(tmp_path: Path) -> None:
    """OpenCascade needs minutes for this one (50k: ~20 s); the worker is stopped at the time limit."""
    with WorkerPool(timeout_s=SHORT_TIMEOUT_S, memory_bytes=MEMORY_BYTES) as pool:
        envelope, seconds, result = extract_run(pool, dangling_references_step(tmp_path, gathered=True))
        assert envelope.format == "step"
        if envelope.status == "failed" and envelope.error is not None and envelope.error.code == "timeout":
            assert seconds >= SHORT_TIMEOUT_S
            assert result.worker_replaced is True  # the stuck worker was killed, a fresh one serves on
            assert f"{SHORT_TIMEOUT_S:g} s" in envelope.error.message
        else:
            assert_unreadable_or_recovered(envelope, worker_failure_ok=True)
        # The pool serves the next file normally.
        after, _ = extract(pool, write(tmp_path / "next.bin", b"plain text, nothing to extract\n"))
        assert after.error is not None and after.error.code == "unsupported_format"


@pytest.mark.slow
def test_ifczip_member_inflating_to_2_gib_is_refused(pool: WorkerPool, tmp_path: Path) -> None:
    path = zip_bomb_ifczip(tmp_path)
    assert path.stat().st_size < 32 * 1024 * 1024  # small on disk, 2 GiB inside
    envelope, seconds, result = extract_run(pool, path)
    assert (envelope.format, envelope.variant) == ("ifc", "ifczip")
    assert envelope.status == "failed"
    assert envelope.error is not None and envelope.error.code == "too_large"
    assert seconds < 20  # refused before inflating, not after
    assert result.worker_replaced is False  # refused by the extractor, not by killing the worker
    assert not list(tmp_path.glob("**/model.ifc"))  # nothing inflated beside the upload


def test_ifcxml_billion_laughs_is_refused(pool: WorkerPool, tmp_path: Path) -> None:
    envelope, seconds, result = extract_run(pool, billion_laughs_ifcxml(tmp_path))
    assert (envelope.format, envelope.variant) == ("ifc", "ifcxml")
    assert envelope.status == "failed"
    assert envelope.error is not None and envelope.error.code in PERMANENT_CODES
    assert "lollol" not in envelope.error.message  # never expanded
    assert seconds < 10
    assert result.worker_replaced is False


def test_worker_memory_is_capped(pool: WorkerPool, tmp_path: Path) -> None:
    extract(pool, write(tmp_path / "empty.bin", b""))
    pids = pool.worker_pids()
    assert pids and os.getpid() not in pids
    limits = Path(f"/proc/{pids[0]}/limits").read_text()
    row = next(line for line in limits.splitlines() if line.startswith("Max address space"))
    assert int(row.split()[3]) == MEMORY_BYTES  # the soft limit, in bytes


# --------------------------------------------------------------------------------------------
# Hostile file names: data, never a path
# --------------------------------------------------------------------------------------------

HOSTILE_NAMES = {
    "parent-dirs": "../../evil.pdf",
    "absolute": "/etc/cron.d/evil.pdf",
    "newlines": "first line\nsecond line\r\n.pdf",
    "html": "<script>alert('x')</script><img src=x onerror=alert(1)>.pdf",
    "300-chars": "n" * 296 + ".pdf",
    "all-at-once": "../<b>\n" + "x" * 300 + ".pdf",
}


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("key", sorted(HOSTILE_NAMES))
def test_hostile_file_name_is_kept_verbatim_and_never_used_as_a_path(
    pool: WorkerPool, tmp_path: Path, key: str
) -> None:
    name = HOSTILE_NAMES[key]
    upload = tmp_path / "uploads" / "blob"
    upload.parent.mkdir()
    small_pdf(upload)
    before_tree, before_parent, before_cwd = _tree(tmp_path), set(os.listdir(tmp_path.parent)), os.listdir()

    envelope, _ = extract(pool, upload, name)

    assert envelope.file.name == name  # verbatim: it is data
    assert envelope.status == "succeeded", envelope.error
    assert envelope.format == "pdf" and envelope.extension_matches is True
    assert envelope.metadata["page_count"] == 1
    # Nothing written anywhere the name points to, nor beside the upload.
    assert _tree(tmp_path) == before_tree
    assert set(os.listdir(tmp_path.parent)) == before_parent
    assert os.listdir() == before_cwd


# --------------------------------------------------------------------------------------------
# The command line: one JSON document, exit 0 or 1, no traceback
# --------------------------------------------------------------------------------------------


def run_cli(tmp_path: Path, *paths: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXTRACTION_")}
    env["EXTRACTION_HOME"] = str(tmp_path / "home")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "extraction_pipeline",
            "extract",
            "--json",
            "--timeout",
            "60",
            "--memory-mb",
            "1536",
            *map(str, paths),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def assert_clean_cli(result: subprocess.CompletedProcess[str]) -> object:
    assert result.returncode in (0, 1), result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return json.loads(result.stdout)  # exactly one JSON document: anything else fails to parse


def test_cli_on_one_hostile_file_prints_one_envelope(tmp_path: Path) -> None:
    path = billion_laughs_ifcxml(tmp_path)
    result = run_cli(tmp_path, path)
    document = assert_clean_cli(result)
    assert isinstance(document, dict)
    assert result.returncode == 1
    assert document["status"] == "failed" and document["error"]["kind"] == "permanent"
    assert document["file"]["name"] == path.name


def test_cli_on_many_hostile_files_prints_one_list(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    files = [
        write(folder / "empty.dwg", b""),
        write(folder / "random.bin", garbage(256 * 1024, seed=3)),
        magic_then_garbage(folder, "pdf"),
        magic_then_garbage(folder, "ifc-spf"),
        deeply_nested_pdf(folder),
        small_pdf(folder / "<b onclick=alert(1)>bold\nname.pdf"),
    ]
    before = _tree(tmp_path)
    result = run_cli(tmp_path, *files)
    documents = assert_clean_cli(result)
    assert isinstance(documents, list) and len(documents) == len(files)
    assert result.returncode == 1  # some failed
    assert [d["file"]["name"] for d in documents] == [f.name for f in files]
    for document in documents:
        if document["status"] == "failed":
            assert document["error"]["kind"] == "permanent"
            assert document["error"]["code"] in FAILURE_CODES
    assert documents[-1]["status"] == "succeeded"
    # Nothing written but (possibly) the embedded default's folder.
    assert {p for p in _tree(tmp_path) - before if p.split(os.sep)[0] != "home"} == set()
