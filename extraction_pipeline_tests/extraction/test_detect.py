"""Content-based format detection on bytes written by the tests themselves."""

from __future__ import annotations

import random
import zipfile
from pathlib import Path

import pytest

from extraction_pipeline.extraction.detect import Format, application_protocol, detect_format


def write(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def spf(schema: str | None, *, comment: str = "") -> bytes:
    """A minimal ISO 10303-21 file whose header names ``schema`` (or has no FILE_SCHEMA)."""
    lines = [
        "ISO-10303-21;",
        "HEADER;",
        comment,
        "FILE_DESCRIPTION(('ViewDefinition [CoordinationView]'),'2;1');",
        "FILE_NAME('model','2024-01-02T03:04:05',('someone'),('some office'),'pre','tool','');",
    ]
    if schema is not None:
        lines.append(f"FILE_SCHEMA(('{schema}'));")
    lines += ["ENDSEC;", "DATA;", "#1=CARTESIAN_POINT('',(0.,0.,0.));", "ENDSEC;", "END-ISO-10303-21;", ""]
    return "\r\n".join(lines).encode("ascii")


ASCII_DXF = (
    b"  0\r\nSECTION\r\n  2\r\nHEADER\r\n  9\r\n$ACADVER\r\n  1\r\nAC1015\r\n  0\r\nENDSEC\r\n  0\r\nEOF\r\n"
)


# -- PDF ------------------------------------------------------------------------------------


def test_pdf_header_at_start(tmp_path: Path) -> None:
    detection = detect_format(write(tmp_path, "a.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n"))
    assert detection.format is Format.PDF
    assert detection.extension_matches
    assert detection.warnings == ()


def test_pdf_with_junk_before_the_header_within_1_kib(tmp_path: Path) -> None:
    junk = b"\x00garbage from a mail gateway\r\n" * 30  # 930 bytes
    detection = detect_format(write(tmp_path, "a.pdf", junk + b"%PDF-1.4\n1 0 obj\n"))
    assert detection.format is Format.PDF


def test_pdf_header_beyond_1_kib_is_not_a_pdf(tmp_path: Path) -> None:
    detection = detect_format(write(tmp_path, "a.pdf", b"x" * 2000 + b"%PDF-1.4\n"))
    assert detection.format is Format.UNKNOWN
    assert detection.extension_matches is False


# -- DXF ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(ASCII_DXF, id="crlf"),
        pytest.param(ASCII_DXF.replace(b"\r\n", b"\n"), id="lf"),
        pytest.param(b"\r\n\r\n   \r\n" + ASCII_DXF, id="leading-blank-lines"),
        pytest.param(b"999\r\nwritten by a tool\r\n999\r\nsecond comment\r\n" + ASCII_DXF, id="999-comments"),
        pytest.param(b"\xef\xbb\xbf0\nSECTION\n2\nENTITIES\n0\nENDSEC\n0\nEOF\n", id="bom-unpadded"),
    ],
)
def test_ascii_dxf(tmp_path: Path, content: bytes) -> None:
    detection = detect_format(write(tmp_path, "plan.dxf", content))
    assert (detection.format, detection.variant) == (Format.DXF, "ascii")
    assert detection.extension_matches


def test_text_that_only_resembles_dxf_is_unknown(tmp_path: Path) -> None:
    detection = detect_format(write(tmp_path, "plan.dxf", b"  0\nSECTIONS ARE HERE\n"))
    assert detection.format is Format.UNKNOWN


def test_binary_dxf_sentinel(tmp_path: Path) -> None:
    content = b"AutoCAD Binary DXF\r\n\x1a\x00" + b"\x00\x00SECTION\x00\x02\x00HEADER\x00"
    detection = detect_format(write(tmp_path, "plan.dxf", content))
    assert (detection.format, detection.variant) == (Format.DXF, "binary")


# -- DWG ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "version",
    [
        "AC1.2",
        "AC1.40",
        "AC1.50",
        "AC2.10",
        "AC1001",
        "AC1002",
        "AC1003",
        "AC1004",
        "AC1006",
        "AC1009",
        "AC1012",
        "AC1014",
        "AC1015",
        "AC1018",
        "AC1021",
        "AC1024",
        "AC1027",
        "AC1032",
    ],
)
def test_dwg_versions(tmp_path: Path, version: str) -> None:
    content = version.encode("ascii") + b"\x00" * 7 + bytes(range(256)) * 4
    detection = detect_format(write(tmp_path, "house.dwg", content))
    assert detection.format is Format.DWG
    assert detection.extension_matches
    assert detection.details["version"] == version


def test_text_starting_with_ac_is_not_dwg(tmp_path: Path) -> None:
    detection = detect_format(write(tmp_path, "notes.dwg", b"ACME drawing register\n"))
    assert detection.format is Format.UNKNOWN


# -- IFC and STEP (ISO 10303-21) --------------------------------------------------------------


@pytest.mark.parametrize("schema", ["IFC2X3", "IFC4", "IFC4X3_ADD2"])
def test_ifc_spf(tmp_path: Path, schema: str) -> None:
    detection = detect_format(write(tmp_path, "model.ifc", spf(schema)))
    assert (detection.format, detection.variant) == (Format.IFC, "spf")
    assert detection.details["schema"] == schema
    assert detection.extension_matches


def test_ifc_with_comments_before_file_schema(tmp_path: Path) -> None:
    # A comment that mentions a STEP schema must not decide the format.
    comment = "/* exported by a tool; FILE_SCHEMA(('CONFIG_CONTROL_DESIGN')); was the old schema */"
    content = b"\r\n  " + spf("IFC4", comment=comment)
    detection = detect_format(write(tmp_path, "model.ifc", content))
    assert (detection.format, detection.variant) == (Format.IFC, "spf")
    assert detection.details["schema"] == "IFC4"


@pytest.mark.parametrize(
    ("schema", "protocol"),
    [
        ("CONFIG_CONTROL_DESIGN", "AP203"),
        ("AP203_CONFIGURATION_CONTROLLED_3D_DESIGN_OF_MECHANICAL_PARTS_AND_ASSEMBLIES_MIM_LF", "AP203"),
        ("AUTOMOTIVE_DESIGN { 1 0 10303 214 1 1 1 1 }", "AP214"),
        ("AUTOMOTIVE_DESIGN_CC2", "AP214"),
        ("AP242_MANAGED_MODEL_BASED_3D_ENGINEERING_MIM_LF { 1 0 10303 442 1 1 4 }", "AP242"),
        ("STRUCTURAL_FRAME_SCHEMA", None),
    ],
)
def test_step_application_protocols(tmp_path: Path, schema: str, protocol: str | None) -> None:
    detection = detect_format(write(tmp_path, "part.stp", spf(schema)))
    assert detection.format is Format.STEP
    assert detection.variant is None
    assert detection.details["schema"] == schema
    assert detection.details["application_protocol"] == protocol
    assert application_protocol(schema) == protocol


def test_step_schema_with_escaped_quote(tmp_path: Path) -> None:
    content = spf("AUTOMOTIVE_DESIGN").replace(b"'AUTOMOTIVE_DESIGN'", b"'AUTOMOTIVE_DESIGN','X''Y'")
    detection = detect_format(write(tmp_path, "part.step", content))
    assert detection.format is Format.STEP
    assert detection.details["schema"] == "AUTOMOTIVE_DESIGN"


@pytest.mark.parametrize(("name", "expected"), [("model.ifc", Format.IFC), ("part.stp", Format.STEP)])
def test_unreadable_file_schema_is_decided_by_the_extension(
    tmp_path: Path, name: str, expected: Format
) -> None:
    detection = detect_format(write(tmp_path, name, spf(None)))
    assert detection.format is expected
    assert detection.extension_matches
    assert any("FILE_SCHEMA" in w for w in detection.warnings)


def test_unreadable_file_schema_without_extension_is_step(tmp_path: Path) -> None:
    detection = detect_format(write(tmp_path, "model", spf(None)))
    assert detection.format is Format.STEP
    assert detection.extension_matches is False


# -- containers and XML ---------------------------------------------------------------------


def make_zip(tmp_path: Path, name: str, members: dict[str, bytes]) -> Path:
    path = tmp_path / name
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    return path


def test_ifczip(tmp_path: Path) -> None:
    path = make_zip(tmp_path, "model.ifczip", {"folder/Model.IFC": spf("IFC4")})
    detection = detect_format(path)
    assert (detection.format, detection.variant) == (Format.IFC, "ifczip")
    assert detection.extension_matches


def test_ifczip_holding_ifcxml(tmp_path: Path) -> None:
    path = make_zip(tmp_path, "model.ifczip", {"model.ifcXML": b"<ifcXML/>"})
    detection = detect_format(path)
    assert (detection.format, detection.variant) == (Format.IFC, "ifczip")
    assert detection.details["member_variant"] == "ifcxml"


def test_plain_zip_is_unknown(tmp_path: Path) -> None:
    path = make_zip(tmp_path, "model.ifczip", {"readme.txt": b"hello", "data/points.csv": b"1,2,3"})
    detection = detect_format(path)
    assert detection.format is Format.UNKNOWN
    assert detection.extension_matches is False


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(
            b'<?xml version="1.0" encoding="UTF-8"?>\n<!-- exported -->\n'
            b'<ifcXML xmlns="http://www.buildingsmart-tech.org/ifcXML/IFC4/final" '
            b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><header/></ifcXML>',
            id="ifc4",
        ),
        pytest.param(
            b'<?xml version="1.0"?>\r\n<ex:iso_10303_28 xmlns:ex="urn:iso.org:standard:10303:part(28)"'
            b' xmlns="http://www.iai-tech.org/ifcXML/IFC2x3/FINAL"><ex:iso_10303_28_header/></ex:iso_10303_28>',
            id="ifc2x3-iai-namespace",
        ),
        pytest.param(
            b'<?xml version="1.0"?>\r\n<ex:iso_10303_28 xmlns:ex="urn:iso.org:standard:10303:part(28)">'
            b"<ex:iso_10303_28_header/></ex:iso_10303_28>",
            id="iso-10303-28-root-only",
        ),
    ],
)
def test_ifcxml_root(tmp_path: Path, content: bytes) -> None:
    detection = detect_format(write(tmp_path, "model.ifcxml", content))
    assert (detection.format, detection.variant) == (Format.IFC, "ifcxml")
    assert detection.extension_matches


def test_other_xml_is_unknown(tmp_path: Path) -> None:
    content = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>'
    assert detect_format(write(tmp_path, "model.ifcxml", content)).format is Format.UNKNOWN


# -- nothing recognisable -------------------------------------------------------------------


def test_random_bytes_are_unknown(tmp_path: Path) -> None:
    content = random.Random(1234).randbytes(64 * 1024)
    detection = detect_format(write(tmp_path, "noise.pdf", content))
    assert detection.format is Format.UNKNOWN
    assert detection.extension_matches is False
    assert detection.warnings == ()


def test_empty_file_is_unknown(tmp_path: Path) -> None:
    detection = detect_format(write(tmp_path, "empty.dxf", b""))
    assert detection.format is Format.UNKNOWN
    assert detection.extension_matches is False


# -- the extension: ties and agreement ------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "matches"),
    [
        ("a.pdf", True),
        ("A.PDF", True),
        ("a.txt", False),
        ("a", False),
        ("a.pdf.bak", False),
        ("a.dxf", False),
    ],
)
def test_extension_matches_and_warning(tmp_path: Path, name: str, matches: bool) -> None:
    detection = detect_format(write(tmp_path, name, b"%PDF-1.5\n"))
    assert detection.format is Format.PDF
    assert detection.extension_matches is matches
    mismatch_warnings = [w for w in detection.warnings if "extension" in w]
    assert bool(mismatch_warnings) is not matches
    if not matches:
        assert "pdf" in mismatch_warnings[0]


@pytest.mark.parametrize("name", ["part.stp", "part.step", "part.p21", "PART.STEP"])
def test_every_step_extension_matches(tmp_path: Path, name: str) -> None:
    detection = detect_format(write(tmp_path, name, spf("AUTOMOTIVE_DESIGN")))
    assert detection.format is Format.STEP
    assert detection.extension_matches


def test_content_wins_over_a_wrong_extension(tmp_path: Path) -> None:
    detection = detect_format(write(tmp_path, "model.stp", spf("IFC2X3")))
    assert detection.format is Format.IFC
    assert detection.extension_matches is False
    assert any("stp" in w and "ifc" in w for w in detection.warnings)


def test_the_given_filename_is_used_instead_of_the_path(tmp_path: Path) -> None:
    path = write(tmp_path, "blob-0001", ASCII_DXF)
    assert detect_format(path).extension_matches is False
    detection = detect_format(path, "Floor Plan.DXF")
    assert detection.format is Format.DXF
    assert detection.extension_matches


def test_truncated_ifczip_is_still_an_ifczip(tmp_path: Path) -> None:
    """A zip cut short has no central directory; the first local header still names the member."""
    import zipfile

    whole = tmp_path / "model.ifczip"
    with zipfile.ZipFile(whole, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("model.ifc", "ISO-10303-21;\nHEADER;\nFILE_SCHEMA(('IFC4'));\nENDSEC;\n" * 200)
    data = whole.read_bytes()
    cut = write(tmp_path, "cut.ifczip", data[: len(data) // 2])
    detection = detect_format(cut)
    assert (detection.format, detection.variant) == (Format.IFC, "ifczip")
