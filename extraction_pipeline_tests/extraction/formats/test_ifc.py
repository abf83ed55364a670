"""IFC extraction: models built with ifcopenshell.api, ifcZIP and ifcXML containers, hostile files, the corpus."""

from __future__ import annotations

import shutil
import struct
import time
import zipfile
from pathlib import Path

import pytest

from extraction_pipeline.extraction.extract import extract_file
from extraction_pipeline_tests.corpus import mismatches

REQUIRED_KEYS = {
    "schema",
    "schema_identifier",
    "originating_system",
    "preprocessor_version",
    "author",
    "organization",
    "timestamp",
    "project_name",
    "sites",
    "buildings",
    "storeys",
    "element_counts",
    "property_set_count",
    "length_unit",
    "georeference",
}

SPF_HEAD = (
    "ISO-10303-21;\nHEADER;\nFILE_DESCRIPTION(('ViewDefinition [CoordinationView]'),'2;1');\n"
    "FILE_NAME('x.ifc','2024-01-02T03:04:05',('A'),('B'),'pre','sys','');\n"
    "FILE_SCHEMA(('{schema}'));\nENDSEC;\nDATA;\n"
)


def _api():
    import ifcopenshell.api.aggregate
    import ifcopenshell.api.context
    import ifcopenshell.api.georeference
    import ifcopenshell.api.project
    import ifcopenshell.api.pset
    import ifcopenshell.api.root
    import ifcopenshell.api.spatial
    import ifcopenshell.api.unit

    return ifcopenshell.api


def _build_model():
    """A project with a site, a building, storeys given out of order, walls, psets and a georeference."""
    api = _api()
    model = api.project.create_file(version="IFC4")
    project = api.root.create_entity(model, ifc_class="IfcProject", name="Fixture Project")
    api.unit.assign_unit(model, units=[api.unit.add_si_unit(model, unit_type="LENGTHUNIT", prefix="MILLI")])
    api.context.add_context(model, context_type="Model")
    site = api.root.create_entity(model, ifc_class="IfcSite", name="Fixture Site")
    building = api.root.create_entity(model, ifc_class="IfcBuilding", name="Fixture Building")
    api.aggregate.assign_object(model, products=[site], relating_object=project)
    api.aggregate.assign_object(model, products=[building], relating_object=site)
    storeys = {}
    for name, elevation in (("Level 2", 6000.0), ("Ground Floor", 0.0), ("Level 1", 3000.0)):
        storey = api.root.create_entity(model, ifc_class="IfcBuildingStorey", name=name)
        storey.Elevation = elevation
        api.aggregate.assign_object(model, products=[storey], relating_object=building)
        storeys[name] = storey
    walls = [api.root.create_entity(model, ifc_class="IfcWall", name=f"Wall {i}") for i in range(3)]
    walls.append(api.root.create_entity(model, ifc_class="IfcWallStandardCase", name="Legacy wall"))
    api.spatial.assign_container(model, products=walls, relating_structure=storeys["Ground Floor"])
    for wall, pset_name in (
        (walls[0], "Pset_WallCommon"),
        (walls[1], "Pset_WallCommon"),
        (walls[2], "Custom"),
    ):
        pset = api.pset.add_pset(model, product=wall, name=pset_name)
        api.pset.edit_pset(model, pset=pset, properties={"IsExternal": True, "Reference": "W"})
    api.georeference.add_georeferencing(model)
    api.georeference.edit_georeferencing(
        model,
        projected_crs={"Name": "EPSG:25832", "GeodeticDatum": "ETRS89"},
        coordinate_operation={"Eastings": 458000.5, "Northings": 5438000.25, "OrthogonalHeight": 110.0},
    )
    model.header.file_name.author = ("Ada Lovelace", "")
    model.header.file_name.organization = ("ACME Architects",)
    model.header.file_name.originating_system = "Fixture Writer 1.0"
    model.header.file_name.preprocessor_version = "Fixture Preprocessor 2.0"
    model.header.file_name.time_stamp = "2024-05-06T07:08:09+02:00"
    return model


EXPECTED_FIXTURE = {
    "schema": "IFC4",
    "schema_identifier": "IFC4",
    "originating_system": "Fixture Writer 1.0",
    "preprocessor_version": "Fixture Preprocessor 2.0",
    "author": "Ada Lovelace",
    "organization": "ACME Architects",
    "timestamp": {"datetime": "2024-05-06T07:08:09+02:00"},
    "project_name": "Fixture Project",
    "sites": ["Fixture Site"],
    "buildings": ["Fixture Building"],
    "storeys": ["Ground Floor", "Level 1", "Level 2"],
    "element_counts": {
        "IfcSite": 1,
        "IfcBuilding": 1,
        "IfcBuildingStorey": 3,
        "IfcWall": 3,
        "IfcWallStandardCase": 1,
    },
    "property_set_count": 3,
    "length_unit": {"unit": "mm"},
    "georeference": {
        "crs": "EPSG:25832",
        "eastings": {"approx": 458000.5, "abs": 1e-6},
        "northings": {"approx": 5438000.25, "abs": 1e-6},
        "orthogonal_height": {"approx": 110.0, "abs": 1e-6},
    },
}


@pytest.fixture(scope="module")
def fixture_ifc(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ifc") / "fixture.ifc"
    _build_model().write(str(path))
    return path


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _assert_fixture_metadata(envelope) -> None:
    assert envelope.status == "succeeded", envelope.error
    assert envelope.metadata.keys() >= REQUIRED_KEYS
    assert mismatches(envelope.metadata, EXPECTED_FIXTURE) == {}
    # Exactly these classes: no supertype (IfcElement, IfcProduct) is counted on its own.
    assert set(envelope.metadata["element_counts"]) == set(EXPECTED_FIXTURE["element_counts"])


def test_spf_model_built_with_the_api(fixture_ifc):
    envelope = extract_file(fixture_ifc)
    assert (envelope.format, envelope.variant, envelope.extension_matches) == ("ifc", "spf", True)
    _assert_fixture_metadata(envelope)
    assert envelope.metadata["storey_elevations"] == [0.0, 3000.0, 6000.0]
    assert envelope.metadata["length_unit_scale"] == pytest.approx(0.001)
    assert envelope.warnings == []


@pytest.mark.parametrize("name", ["upload.bin", "no_extension", "model.txt"])
def test_spf_with_a_wrong_or_no_extension_still_opens(fixture_ifc, tmp_path, name):
    copy = tmp_path / name
    shutil.copyfile(fixture_ifc, copy)
    envelope = extract_file(copy)
    assert (envelope.format, envelope.variant, envelope.extension_matches) == ("ifc", "spf", False)
    _assert_fixture_metadata(envelope)


@pytest.mark.parametrize("name", ["fixture.ifczip", "upload.bin"])
def test_ifczip_reads_the_ifc_member(fixture_ifc, tmp_path, name):
    archive = _zip(tmp_path / name, {"project/Fixture.IFC": fixture_ifc.read_bytes()})
    envelope = extract_file(archive)
    assert (envelope.format, envelope.variant) == ("ifc", "ifczip")
    assert envelope.extension_matches is (name == "fixture.ifczip")
    _assert_fixture_metadata(envelope)
    assert envelope.metadata["member"] == "project/Fixture.IFC"


def _padded(fixture_ifc: Path, padding: int) -> bytes:
    """The fixture with a huge (highly compressible) comment: a tiny zip that inflates to a lot."""
    text = fixture_ifc.read_bytes()
    return text.replace(b"HEADER;", b"HEADER;\n/*" + b" " * padding + b"*/", 1)


def test_ifczip_member_declared_larger_than_the_limit_is_too_large(fixture_ifc, tmp_path):
    archive = _zip(tmp_path / "bomb.ifczip", {"model.ifc": _padded(fixture_ifc, 3_000_000)})
    assert archive.stat().st_size < 100_000
    envelope = extract_file(archive, max_bytes=100_000)
    assert envelope.status == "failed"
    assert envelope.error.code == "too_large"
    assert "model.ifc" in envelope.error.message
    # The same archive under the default limit is a perfectly good model.
    _assert_fixture_metadata(extract_file(archive))


def _patch_zip(data: bytearray, *, size: int | None = None, flags: int | None = None) -> bytearray:
    """Rewrite the single member's uncompressed size and/or flag bits in both zip headers."""
    local, central = data.find(b"PK\x03\x04"), data.find(b"PK\x01\x02")
    if size is not None:
        struct.pack_into("<I", data, local + 22, size)
        struct.pack_into("<I", data, central + 24, size)
    if flags is not None:
        struct.pack_into("<H", data, local + 6, flags)
        struct.pack_into("<H", data, central + 8, flags)
    return data


def test_ifczip_member_whose_declared_size_lies_is_not_read_past_the_limit(fixture_ifc, tmp_path):
    archive = _zip(tmp_path / "liar.ifczip", {"model.ifc": _padded(fixture_ifc, 3_000_000)})
    archive.write_bytes(_patch_zip(bytearray(archive.read_bytes()), size=50_000))
    with zipfile.ZipFile(archive) as check:
        assert check.infolist()[0].file_size == 50_000
    envelope = extract_file(archive, max_bytes=100_000)
    assert envelope.status == "failed"
    assert envelope.error.code in ("too_large", "corrupt")


def test_ifczip_with_an_encrypted_member_is_encrypted(fixture_ifc, tmp_path):
    archive = _zip(tmp_path / "locked.ifczip", {"model.ifc": fixture_ifc.read_bytes()})
    archive.write_bytes(_patch_zip(bytearray(archive.read_bytes()), flags=0x1))
    envelope = extract_file(archive)
    assert (envelope.status, envelope.error.code) == ("failed", "encrypted")


IFCXML = (
    '<?xml version="1.0" encoding="UTF-8"?>\n{doctype}'
    '<ifcXML xmlns="http://www.buildingsmart-tech.org/ifcXML/IFC4/final">'
    '<IfcProject id="i1" GlobalId="0YvctVUKr0kugbFTf53O9L" Name="{name}"/></ifcXML>\n'
)


def test_ifcxml_is_detected_and_refused_with_a_reason(tmp_path):
    path = tmp_path / "model.ifcxml"
    path.write_text(IFCXML.format(doctype="", name="P"), encoding="utf-8")
    envelope = extract_file(path)
    assert (envelope.format, envelope.variant, envelope.status) == ("ifc", "ifcxml", "failed")
    assert envelope.error.code == "unsupported_format"
    assert "ifcXML" in envelope.error.message


def test_ifcxml_with_entity_declarations_is_refused_before_any_parsing(tmp_path):
    laughs = '<!DOCTYPE ifcXML [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>\n'
    path = tmp_path / "laughs.ifcxml"
    path.write_text(IFCXML.format(doctype=laughs, name="&b;"), encoding="utf-8")
    envelope = extract_file(path)
    assert (envelope.variant, envelope.status, envelope.error.code) == (
        "ifcxml",
        "failed",
        "unsupported_format",
    )
    assert "DTD" in envelope.error.message


def test_ifcxml_inside_an_ifczip_is_refused_with_a_reason(tmp_path):
    archive = _zip(tmp_path / "xml.ifczip", {"model.ifcxml": IFCXML.format(doctype="", name="P").encode()})
    envelope = extract_file(archive)
    assert (envelope.format, envelope.variant, envelope.status) == ("ifc", "ifczip", "failed")
    assert envelope.error.code == "unsupported_format"
    assert "ifcXML" in envelope.error.message


def test_storeys_without_elevation_are_ordered_by_their_world_height(tmp_path):
    api = _api()
    model = api.project.create_file(version="IFC4")
    api.root.create_entity(model, ifc_class="IfcProject", name="P")

    def placement(z, relative_to=None):
        axis = model.createIfcAxis2Placement3D(model.createIfcCartesianPoint((0.0, 0.0, z)), None, None)
        return model.createIfcLocalPlacement(relative_to, axis)

    building = api.root.create_entity(model, ifc_class="IfcBuilding", name="B")
    building.ObjectPlacement = placement(100.0)
    heights = {"Top": (5.0, True), "Bottom": (50.0, False), "Middle": (-20.0, True)}
    for name, (z, relative) in heights.items():  # file order: Top, Bottom, Middle
        storey = api.root.create_entity(model, ifc_class="IfcBuildingStorey", name=name)
        storey.ObjectPlacement = placement(z, building.ObjectPlacement if relative else None)
    with_elevation = api.root.create_entity(model, ifc_class="IfcBuildingStorey", name="Has Elevation")
    with_elevation.Elevation = 60.0
    with_elevation.ObjectPlacement = placement(-999.0)  # Elevation wins over the placement
    looping = api.root.create_entity(model, ifc_class="IfcBuildingStorey", name="Loop")
    looping.ObjectPlacement = placement(1.0)
    looping.ObjectPlacement.PlacementRelTo = looping.ObjectPlacement
    path = tmp_path / "placements.ifc"
    model.write(str(path))

    envelope = extract_file(path)
    assert envelope.status == "succeeded", envelope.error
    # World heights: Bottom 50, Has Elevation 60, Middle 100-20, Top 100+5; a cyclic placement has none.
    assert envelope.metadata["storeys"] == ["Bottom", "Has Elevation", "Middle", "Top", "Loop"]
    assert envelope.metadata["storey_elevations"] == [50.0, 60.0, 80.0, 105.0, None]


def test_ifc2x3_style_georeference_from_property_sets(tmp_path):
    api = _api()
    model = api.project.create_file(version="IFC4")
    project = api.root.create_entity(model, ifc_class="IfcProject", name="P")
    for name, values in (
        ("ePSet_MapConversion", {"Eastings": 334000.0, "Northings": 6252000.0, "Scale": 1.0}),
        ("ePSet_ProjectedCRS", {"Name": "EPSG:28356"}),
    ):
        pset = api.pset.add_pset(model, product=project, name=name)
        api.pset.edit_pset(model, pset=pset, properties=values)
    path = tmp_path / "epset.ifc"
    model.write(str(path))
    envelope = extract_file(path)
    assert envelope.status == "succeeded", envelope.error
    assert (
        mismatches(
            envelope.metadata,
            {"georeference": {"crs": "EPSG:28356", "eastings": 334000.0, "northings": 6252000.0}},
        )
        == {}
    )


def test_model_without_georeference_or_units_reports_nulls(tmp_path):
    model = _api().project.create_file(version="IFC4X3")
    _api().root.create_entity(model, ifc_class="IfcProject", name="Bare")
    path = tmp_path / "bare.ifc"
    model.write(str(path))
    envelope = extract_file(path)
    assert envelope.status == "succeeded", envelope.error
    assert envelope.metadata["schema"] == "IFC4X3"
    assert envelope.metadata["schema_identifier"] == "IFC4X3_ADD2"
    assert (envelope.metadata["georeference"], envelope.metadata["length_unit"]) == (None, None)
    assert (envelope.metadata["storeys"], envelope.metadata["element_counts"]) == ([], {})


def test_unsupported_schema_is_unsupported_format(tmp_path):
    path = tmp_path / "ifc4x1.ifc"
    path.write_text(SPF_HEAD.format(schema="IFC4X1") + "ENDSEC;\nEND-ISO-10303-21;\n")
    envelope = extract_file(path)
    assert (envelope.format, envelope.status, envelope.error.code) == ("ifc", "failed", "unsupported_format")
    assert "IFC4X1" in envelope.error.message


def test_unparseable_header_is_corrupt_with_the_reason(tmp_path):
    path = tmp_path / "broken.ifc"
    path.write_text("ISO-10303-21;\nHEADER;\nFILE_DESCRIPTION(" + "(" * 50_000)
    started = time.perf_counter()
    envelope = extract_file(path)
    assert time.perf_counter() - started < 10
    assert (envelope.format, envelope.status, envelope.error.code) == ("ifc", "failed", "corrupt")
    assert "header" in envelope.error.message.lower()


def test_fifty_thousand_unclosed_parentheses_in_data_stay_fast(tmp_path):
    path = tmp_path / "parens.ifc"
    body = "#1=IFCPROJECT('0YvctVUKr0kugbFTf53O9L',$,'Survivor',$,$,$,$,$,$);\n#2=IFCPERSON(" + "(" * 50_000
    path.write_text(SPF_HEAD.format(schema="IFC4") + body + "\n")
    started = time.perf_counter()
    envelope = extract_file(path)
    assert time.perf_counter() - started < 10
    assert envelope.status == "succeeded", envelope.error
    assert envelope.metadata["project_name"] == "Survivor"
    assert any("truncated" in warning for warning in envelope.warnings)


def test_truncated_model_keeps_what_was_read_and_warns(fixture_ifc, tmp_path):
    text = fixture_ifc.read_text()
    path = tmp_path / "truncated.ifc"
    path.write_text(text[: text.index("IFCBUILDINGSTOREY")])
    envelope = extract_file(path)
    assert envelope.status == "succeeded", envelope.error
    assert envelope.metadata["project_name"] == "Fixture Project"
    assert any("truncated" in warning for warning in envelope.warnings)


def test_header_problems_reported_by_ifcopenshell_become_warnings(tmp_path):
    path = tmp_path / "short-header.ifc"
    head = SPF_HEAD.format(schema="IFC4").replace(",'pre','sys','')", ",'pre','sys')")
    path.write_text(head + "#1=IFCPERSON($,$,$,$,$,$,$,$);\nENDSEC;\nEND-ISO-10303-21;\n")
    envelope = extract_file(path)
    assert envelope.status == "succeeded", envelope.error
    assert any("file_name" in warning for warning in envelope.warnings)
    assert envelope.metadata["originating_system"] == "sys"


# --- the real-world corpus -------------------------------------------------------------------
