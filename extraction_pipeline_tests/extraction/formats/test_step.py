"""STEP extraction: assemblies built with OCP (XCAF) with known geometry, hand-edited headers, broken files, corpus."""

from __future__ import annotations

import math
import shutil
import zipfile
from pathlib import Path

import pytest

from extraction_pipeline.extraction.extract import extract_file
from extraction_pipeline.extraction.formats.step import decode_step_string, normalize_length_unit

# The "cart" fixture: a 10 x 20 x 30 box (red) and two axles of two r=5, h=10 cylinders (blue).
BOX_VOLUME = 10 * 20 * 30
BOX_AREA = 2 * (10 * 20 + 10 * 30 + 20 * 30)
CYLINDER_VOLUME = math.pi * 5**2 * 10
CYLINDER_AREA = 2 * math.pi * 5**2 + 2 * math.pi * 5 * 10
CART_VOLUME = BOX_VOLUME + 4 * CYLINDER_VOLUME
CART_AREA = BOX_AREA + 4 * CYLINDER_AREA
CART_BBOX = {"min": [-5.0, -5.0, 0.0], "max": [25.0, 55.0, 105.0]}


def _cart_document(with_assembly: bool = True):
    """An XCAF document holding the cart (or, without assembly, the bare box), in millimetres.

    The cart is an assembly of the box ``body`` (red) and two copies of an axle sub-assembly,
    ``front_axle`` at z=100 and ``rear_axle`` at (0, 50, 100): each copy is its own definition (as a
    copied sub-assembly is) placing one shared r=5, h=10 cylinder (blue), centred on the origin on
    the z axis, twice: ``wheel_left`` at the origin and ``wheel_right`` at x+20.
    """
    from OCP.BRepPrimAPI import BRepPrimAPI_MakeBox, BRepPrimAPI_MakeCylinder
    from OCP.gp import gp_Ax2, gp_Dir, gp_Pnt, gp_Trsf, gp_Vec
    from OCP.Quantity import Quantity_Color, Quantity_TypeOfColor
    from OCP.TCollection import TCollection_ExtendedString
    from OCP.TDataStd import TDataStd_Name
    from OCP.TDocStd import TDocStd_Document
    from OCP.TopLoc import TopLoc_Location
    from OCP.UnitsMethods import UnitsMethods_LengthUnit
    from OCP.XCAFApp import XCAFApp_Application
    from OCP.XCAFDoc import XCAFDoc_ColorType, XCAFDoc_DocumentTool

    document = TDocStd_Document(TCollection_ExtendedString("MDTV-XCAF"))
    XCAFApp_Application.GetApplication_s().InitDocument(document)
    XCAFDoc_DocumentTool.SetLengthUnit_s(
        document, 1.0, UnitsMethods_LengthUnit.UnitsMethods_LengthUnit_Millimeter
    )
    shapes = XCAFDoc_DocumentTool.ShapeTool_s(document.Main())
    colors = XCAFDoc_DocumentTool.ColorTool_s(document.Main())

    def name(label, text: str):
        TDataStd_Name.Set_s(label, TCollection_ExtendedString(text))
        return label

    def color(label, red: float, green: float, blue: float) -> None:
        rgb = Quantity_Color(red, green, blue, Quantity_TypeOfColor.Quantity_TOC_RGB)
        colors.SetColor(label, rgb, XCAFDoc_ColorType.XCAFDoc_ColorSurf)

    def at(x: float, y: float, z: float) -> TopLoc_Location:
        move = gp_Trsf()
        move.SetTranslation(gp_Vec(x, y, z))
        return TopLoc_Location(move)

    box = shapes.AddShape(BRepPrimAPI_MakeBox(10.0, 20.0, 30.0).Shape(), False)
    if not with_assembly:
        return document
    name(box, "body")
    color(box, 1.0, 0.0, 0.0)
    # Height 10 along z from z=-5: centred on the origin.
    axis = gp_Ax2(gp_Pnt(0.0, 0.0, -5.0), gp_Dir(0.0, 0.0, 1.0))
    wheel = name(shapes.AddShape(BRepPrimAPI_MakeCylinder(axis, 5.0, 10.0).Shape(), False), "wheel")
    color(wheel, 0.0, 0.0, 1.0)

    cart = name(shapes.NewShape(), "cart")
    name(shapes.AddComponent(cart, box, TopLoc_Location()), "body")
    for axle_name, placement in (("front_axle", at(0, 0, 100)), ("rear_axle", at(0, 50, 100))):
        axle = name(shapes.NewShape(), axle_name)
        name(shapes.AddComponent(axle, wheel, TopLoc_Location()), "wheel_left")
        name(shapes.AddComponent(axle, wheel, at(20, 0, 0)), "wheel_right")
        name(shapes.AddComponent(cart, axle, placement), axle_name)
    shapes.UpdateAssemblies()
    return document


def _write_step(document, path: Path, schema: str = "AP214IS", unit: str = "MM") -> Path:
    """Write the document with OpenCascade's STEP writer in that schema and output length unit."""
    from OCP.IFSelect import IFSelect_ReturnStatus
    from OCP.Interface import Interface_Static
    from OCP.STEPCAFControl import STEPCAFControl_Controller, STEPCAFControl_Writer
    from OCP.STEPControl import STEPControl_StepModelType

    STEPCAFControl_Controller.Init_s()  # registers the write.step.* parameters
    settings = {"write.step.schema": schema, "write.step.unit": unit}
    previous = {key: Interface_Static.CVal_s(key) for key in settings}
    try:
        for key, value in settings.items():
            assert Interface_Static.SetCVal_s(key, value), (key, value)
        writer = STEPCAFControl_Writer()  # after the settings: its model takes the schema
        writer.SetColorMode(True)
        writer.SetNameMode(True)
        assert writer.Transfer(document, STEPControl_StepModelType.STEPControl_AsIs)
        assert writer.Write(str(path)) == IFSelect_ReturnStatus.IFSelect_RetDone
    finally:
        for key, value in previous.items():
            Interface_Static.SetCVal_s(key, value)
    return path


@pytest.fixture(scope="module")
def step_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The cart assembly exported once per schema and output unit, and a single box."""
    folder = tmp_path_factory.mktemp("step")
    cart = _cart_document()
    files = {
        key: _write_step(cart, folder / f"cart_{key}.step", schema=schema)
        for key, schema in (("ap214", "AP214IS"), ("ap203", "AP203"), ("ap242", "AP242DIS"))
    }
    files["inch"] = _write_step(cart, folder / "cart_inch.step", unit="INCH")
    files["metre"] = _write_step(cart, folder / "cart_metre.step", unit="M")
    files["single"] = _write_step(_cart_document(with_assembly=False), folder / "single_box.step")
    return files


def _succeeded(path: Path, filename: str | None = None) -> dict:
    envelope = extract_file(path, filename)
    assert envelope.status == "succeeded", envelope.error
    assert envelope.format == "step"
    return envelope.metadata


def _approx_bbox(bbox: dict, expected: dict) -> None:
    assert bbox["min"] == pytest.approx(expected["min"], abs=1e-4)
    assert bbox["max"] == pytest.approx(expected["max"], abs=1e-4)


@pytest.mark.parametrize(
    ("key", "schema", "protocol"),
    [
        ("ap214", "AUTOMOTIVE_DESIGN { 1 0 10303 214 1 1 1 1 }", "AP214"),
        ("ap203", ["CONFIG_CONTROL_DESIGN", "SHAPE_APPEARANCE_LAYER_MIM"], "AP203"),
        ("ap242", "AP242_MANAGED_MODEL_BASED_3D_ENGINEERING_MIM_LF {1 0 10303 442 1 1 4 }", "AP242"),
    ],
)
def test_assembly_geometry_and_schema_per_protocol(step_files, key, schema, protocol):
    metadata = _succeeded(step_files[key])
    assert metadata["file_schema"] == schema
    assert metadata["application_protocol"] == protocol
    assert metadata["originating_system"].startswith("Open CASCADE")
    assert metadata["author"] == ["Author"]
    assert metadata["organization"] == ["Open CASCADE"]
    assert metadata["length_unit"] == "mm"
    # Placed solids: the box once, the cylinder twice in each of the two axles.
    assert metadata["solid_count"] == 5
    assert metadata["definition_solid_count"] == 2
    assert metadata["face_count"] == 6 + 4 * 3
    assert metadata["edge_count"] == 12 + 4 * 3
    assert metadata["volume_mm3"] == pytest.approx(CART_VOLUME, rel=1e-6)
    assert metadata["surface_area_mm2"] == pytest.approx(CART_AREA, rel=1e-6)
    _approx_bbox(metadata["bbox_mm"], CART_BBOX)


def test_parts_tree_has_names_nesting_instances_and_colours(step_files):
    parts = _succeeded(step_files["ap214"])["parts"]
    assert len(parts) == 1
    cart = parts[0]
    assert (cart["name"], cart["kind"], cart["instances"]) == ("cart", "assembly", 1)
    children = {child["name"]: child for child in cart["children"]}
    assert set(children) == {"body", "front_axle", "rear_axle"}
    body = children["body"]
    assert (body["kind"], body["instances"], body["color"], body["children"]) == ("part", 1, "#ff0000", [])
    for axle in ("front_axle", "rear_axle"):
        assert children[axle]["kind"] == "assembly"
        [wheel] = children[axle]["children"]  # one cylinder definition placed twice
        assert wheel["instances"] == 2
        assert wheel["color"] == "#0000ff"
        assert len(wheel["instance_names"]) == 2
    # OCCT's writer names all placements of the first copy of the axle only (the other's unnamed get ids).
    assert children["front_axle"]["children"][0]["instance_names"] == ["wheel_left", "wheel_right"]


@pytest.mark.parametrize(("key", "unit"), [("inch", "in"), ("metre", "m")])
def test_other_units_are_reported_and_geometry_converted_to_mm(step_files, key, unit):
    metadata = _succeeded(step_files[key])
    assert metadata["length_unit"] == unit
    assert metadata["volume_mm3"] == pytest.approx(CART_VOLUME, rel=1e-6)
    assert metadata["surface_area_mm2"] == pytest.approx(CART_AREA, rel=1e-6)
    _approx_bbox(metadata["bbox_mm"], CART_BBOX)


def test_geometry_stays_in_mm_whatever_the_process_wide_cascade_unit(step_files):
    from OCP.Interface import Interface_Static

    previous = Interface_Static.CVal_s("xstep.cascade.unit")
    Interface_Static.SetCVal_s("xstep.cascade.unit", "INCH")  # e.g. left behind by another OCP user
    try:
        metadata = _succeeded(step_files["inch"])
    finally:
        Interface_Static.SetCVal_s("xstep.cascade.unit", previous)
    assert metadata["volume_mm3"] == pytest.approx(CART_VOLUME, rel=1e-6)
    _approx_bbox(metadata["bbox_mm"], CART_BBOX)


def test_single_part_file(step_files):
    metadata = _succeeded(step_files["single"])
    assert metadata["solid_count"] == 1
    assert metadata["face_count"] == 6
    assert metadata["volume_mm3"] == pytest.approx(BOX_VOLUME, rel=1e-9)
    assert metadata["surface_area_mm2"] == pytest.approx(BOX_AREA, rel=1e-9)
    _approx_bbox(metadata["bbox_mm"], {"min": [0, 0, 0], "max": [10, 20, 30]})
    assert len(metadata["parts"]) == 1
    assert metadata["parts"][0]["kind"] == "part"


_AWKWARD_HEADER = r"""ISO-10303-21;
HEADER;
/* a comment with a fake ENDSEC; and FILE_NAME('nope','x',(''),(''),'','','') */
FILE_SCHEMA
  (( 'AUTOMOTIVE_DESIGN { 1 0 10303 214 1 1 1 1 }' ));
FILE_NAME(
/* name */ 'Caf\X2\00E9\X0\ ''Bistro'' ; (v2)',
/* time_stamp */ '2021-06-01T12:30:00+02:00',
/* author */ ('J\X\FCrgen', '', 'Ann /* not a comment */'),
/* organization */ ('ACME \S\) GmbH'),
/* preprocessor_version */ 'Writer 1.0',
/* originating_system */
  'CAD\X2\00AE\X0\ 2021',
/* authorisation */ '');
FILE_DESCRIPTION(('a', 'b'), '2;1');
ENDSEC;
"""


def _with_header(source: Path, header: str, target: Path) -> Path:
    text = source.read_text(encoding="latin-1")
    data = text[text.index("DATA;") :]
    target.write_text(header + data, encoding="latin-1")
    return target


def test_header_with_comments_any_order_escapes_and_quotes(step_files, tmp_path):
    path = _with_header(step_files["ap214"], _AWKWARD_HEADER, tmp_path / "awkward.stp")
    metadata = _succeeded(path)
    assert metadata["file_name"] == "Café 'Bistro' ; (v2)"
    assert metadata["timestamp"] == "2021-06-01T12:30:00+02:00"
    assert metadata["author"] == ["Jürgen", "Ann /* not a comment */"]
    assert metadata["organization"] == ["ACME © GmbH"]
    assert metadata["preprocessor_version"] == "Writer 1.0"
    assert metadata["originating_system"] == "CAD® 2021"
    assert metadata["description"] == ["a", "b"]
    assert metadata["file_schema"] == "AUTOMOTIVE_DESIGN { 1 0 10303 214 1 1 1 1 }"
    assert metadata["application_protocol"] == "AP214"
    assert metadata["volume_mm3"] == pytest.approx(CART_VOLUME, rel=1e-6)


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (rb"it''s", "it's"),
        (rb"\X2\03A903B1\X0\ ok", "Ωα ok"),
        (rb"\X4\0001F600\X0\!", "\U0001f600!"),
        (rb"back\\slash", "back\\slash"),
        (rb"\PB\\S\#", "Ł"),  # ISO 8859-2 page: 0x23 | 0x80 = 0xA3
        ("déjà".encode(), "déjà"),  # raw UTF-8, as many writers do
    ],
)
def test_step_string_decoding(raw, text):
    assert decode_step_string(raw) == text


@pytest.mark.parametrize(
    ("name", "unit"),
    [("millimetre", "mm"), ("METRE", "m"), ("INCH", "in"), ("centimetre", "cm"), ("FOOT", "ft"), ("", None)],
)
def test_length_unit_names(name, unit):
    assert normalize_length_unit(name) == unit


_MINIMAL_HEADER = """ISO-10303-21;
HEADER;
FILE_DESCRIPTION((''),'2;1');
FILE_NAME('broken','2020-01-01T00:00:00',(''),(''),'','','');
FILE_SCHEMA(('AUTOMOTIVE_DESIGN { 1 0 10303 214 1 1 1 1 }'));
ENDSEC;
"""


def test_empty_data_section_succeeds_with_zero_counts_and_a_warning(tmp_path):
    path = tmp_path / "empty.stp"
    path.write_text(_MINIMAL_HEADER + "DATA;\nENDSEC;\nEND-ISO-10303-21;\n")
    envelope = extract_file(path)
    assert envelope.status == "succeeded"
    metadata = envelope.metadata
    assert metadata["file_name"] == "broken"
    assert (metadata["solid_count"], metadata["face_count"], metadata["edge_count"]) == (0, 0, 0)
    assert metadata["volume_mm3"] is None and metadata["bbox_mm"] is None and metadata["parts"] == []
    assert any("no shapes" in warning for warning in envelope.warnings)


def test_syntax_error_is_corrupt_with_the_reason_and_nothing_on_stdout(tmp_path, capfd):
    path = tmp_path / "garbage.stp"
    path.write_text(_MINIMAL_HEADER + "DATA;\n#1=FOO(((((;\n#2 = bar baz\nENDSEC;\nEND-ISO-10303-21;\n")
    envelope = extract_file(path)
    assert envelope.status == "failed"
    assert envelope.error.code == "corrupt"
    assert "Incorrect syntax" in envelope.error.message
    # OpenCascade prints its messages on stdout by default: the CLI's JSON must stay alone there.
    assert capfd.readouterr().out == ""


def test_truncated_file_is_corrupt(step_files, tmp_path):
    data = step_files["ap214"].read_bytes()
    path = tmp_path / "truncated.stp"
    path.write_bytes(data[: len(data) // 2])
    envelope = extract_file(path)
    assert envelope.status == "failed"
    assert envelope.error.code == "corrupt"


def test_dangling_references_fail_fast_as_corrupt(tmp_path):
    path = tmp_path / "dangling.stp"
    lines = "".join(
        f"#{i}=SHAPE_REPRESENTATION('',(#{i + 300000}),#{i + 600000});\n" for i in range(1, 20001)
    )
    path.write_text(_MINIMAL_HEADER + "DATA;\n" + lines + "ENDSEC;\nEND-ISO-10303-21;\n")
    envelope = extract_file(path)
    assert envelope.status == "failed"
    assert envelope.error.code == "corrupt"
    assert "Unresolved Reference" in envelope.error.message
    assert envelope.duration_ms < 20_000


def test_step_inside_a_zip_archive(step_files, tmp_path):
    archive = tmp_path / "cart.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as handle:
        handle.write(step_files["ap214"], "models/cart.step")
    metadata = _succeeded(archive)
    assert metadata["container"] == "zip"
    assert metadata["volume_mm3"] == pytest.approx(CART_VOLUME, rel=1e-6)


def test_a_zip_holding_a_p21_model_is_step(step_files, tmp_path):
    """Every STEP file name the detector knows (.p21 too) counts inside a zip archive as well."""
    archive = tmp_path / "cart.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as handle:
        handle.write(step_files["ap214"], "cart.p21")
    assert _succeeded(archive)["container"] == "zip"


def test_a_damaged_or_empty_zipped_step_member_fails_as_corrupt(step_files, tmp_path):
    """The zip checks are the ifcZIP's (extraction/archives.py): a broken stream is not a crash."""
    damaged = tmp_path / "damaged.zip"
    with zipfile.ZipFile(damaged, "w", zipfile.ZIP_DEFLATED) as handle:
        handle.write(step_files["ap214"], "cart.step")
    data = bytearray(damaged.read_bytes())
    start = data.index(b"cart.step") + len(b"cart.step")  # the compressed stream follows its name
    data[start + 100 : start + 400] = bytes(300)
    damaged.write_bytes(bytes(data))
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as handle:
        handle.writestr("cart.step", b"")
    for archive, words in ((damaged, "is damaged"), (empty, "is empty")):
        envelope = extract_file(archive)
        assert (envelope.format, envelope.status, envelope.error.code) == ("step", "failed", "corrupt"), (
            archive.name,
            envelope.error,
        )
        assert f"the zipped STEP file 'cart.step' {words}" in envelope.error.message


def test_renamed_fixture_keeps_format_and_status(step_files, tmp_path):
    for name in ("cart", "cart.txt"):
        copy = tmp_path / name
        shutil.copyfile(step_files["ap242"], copy)
        envelope = extract_file(copy)
        assert (envelope.format, envelope.status) == ("step", "succeeded")
        assert envelope.extension_matches is False
        assert envelope.metadata["application_protocol"] == "AP242"


def test_an_opencascade_allocation_failure_is_out_of_memory_not_corrupt() -> None:
    """Near the worker's memory cap OpenCascade logs a failed malloc: that is no fault of the file."""
    from extraction_pipeline.extraction.formats import step_geometry as step

    failure = step._unreadable("cannot read", ["Standard_MMgrRaw::Allocate(): malloc failed"])
    assert isinstance(failure, MemoryError)
    assert not isinstance(
        step._unreadable("cannot read", ["ERR StepReaderData : Unresolved Reference"]), MemoryError
    )
