"""Opening an IFC model with ifcopenshell: STEP physical files, ifcZIP members and ifcXML, with the parser's log."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from extraction_pipeline.extraction.archives import unpack_member
from extraction_pipeline.extraction.errors import CorruptFile, UnsupportedFormat
from extraction_pipeline.extraction.text import valid_unicode

_CHUNK = 1024 * 1024


def sniff_variant(path: Path) -> str:
    with path.open("rb") as handle:
        head = handle.read(4096)
    if head.startswith(b"PK\x03\x04"):
        return "ifczip"
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        return "ifcxml"
    return "spf"


def inflate_member(path: Path, folder: Path, max_bytes: int, warnings: list[str]) -> tuple[str, Path]:
    """Inflate the IFC model of an ifcZIP into ``folder``, never more than ``max_bytes``."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CorruptFile(f"the ifcZIP archive cannot be read: {exc}") from exc
    with archive:
        members = [
            info
            for info in archive.infolist()
            if not info.is_dir() and not _basename(info.filename).startswith("._")
        ]
        models = [i for i in members if i.filename.lower().endswith(".ifc")]
        models += [i for i in members if i.filename.lower().endswith((".ifcxml", ".xml"))]
        if not models:
            raise UnsupportedFormat("the zip archive holds no .ifc or .ifcXML model")
        info = models[0]
        if len(models) > 1:
            warnings.append(f"the ifcZIP holds {len(models)} models; only {info.filename!r} was read")
        suffix = ".ifcxml" if info.filename.lower().endswith((".ifcxml", ".xml")) else ".ifc"
        target = folder / f"model{suffix}"
        unpack_member(archive, info, target, max_bytes, f"the ifcZIP member {info.filename!r}")
    return info.filename, target


def _basename(name: str) -> str:
    return name.replace("\\", "/").rsplit("/", 1)[-1]


def _new_logger() -> Any:
    from ifcopenshell import ifcopenshell_wrapper

    factory = getattr(ifcopenshell_wrapper, "logger", None)
    if factory is None:
        return None
    logger = factory()
    logger.output_format(factory.FMT_INMEMORY)  # keep messages for log_messages(), print nothing
    return logger


def open_spf(path: Path, warnings: list[str]) -> tuple[Any, Any]:
    import ifcopenshell

    # The logger collects the parser's messages; the file keeps a pointer to it, so it must
    # outlive the file (a temporary logger makes later reads crash). Hence it is returned too.
    logger = _new_logger()
    kwargs = {"logger": logger} if logger is not None else {}
    try:
        # The format is given explicitly: uploads have arbitrary names (".bin", no extension).
        model = ifcopenshell.open(path, format=".ifc", **kwargs)
    except ifcopenshell.SchemaError as exc:
        raise UnsupportedFormat(
            valid_unicode(f"{exc} (ifcopenshell reads {', '.join(_supported_schemas())})")
        ) from exc
    except ifcopenshell.Error as exc:
        raise CorruptFile(
            valid_unicode(f"ifcopenshell cannot read the file: {exc}{_log_summary(logger)}")
        ) from exc
    except OSError as exc:
        raise CorruptFile(valid_unicode(f"ifcopenshell cannot read the file: {exc}")) from exc
    truncated = _looks_truncated(path)
    if not model.types():
        if truncated:
            raise CorruptFile(
                f"no entity instance could be read and the file ends without END-ISO-10303-21"
                f"{_log_summary(logger)}"
            )
        warnings.append("the DATA section holds no entity instances")
    elif truncated:
        warnings.append("the file ends without END-ISO-10303-21; it may be truncated")
    return model, logger


def _supported_schemas() -> list[str]:
    from ifcopenshell import ifcopenshell_wrapper

    return [name for name in ifcopenshell_wrapper.schema_names() if name.upper().startswith("IFC")]


def _looks_truncated(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - 4096))
        tail = handle.read()
    return b"END-ISO-10303-21" not in tail.upper()


def _log_summary(logger: Any) -> str:
    messages = log_messages(logger, ("ERROR",))
    return f" ({'; '.join(messages[:3])})" if messages else ""


def log_messages(logger: Any, severities: tuple[str, ...]) -> list[str]:
    if logger is None:
        return []
    found: list[str] = []
    try:
        for entry in logger.log_messages():
            info = entry.to_dict()
            if str(info.get("severity", "")).upper() not in severities:
                continue
            text = valid_unicode(str(info.get("message", ""))).strip()
            instance = valid_unicode(str(info.get("instance") or "")).strip()
            if instance:
                text = f"{text} ({instance[:200]})"
            if text and text not in found:
                found.append(text[:500])
    except Exception:  # the log is a nicety; never fail the extraction over it
        return found
    return found


def open_ifcxml(path: Path, *, inside_zip: bool) -> tuple[Any, Any]:
    """ifcXML: refuse DTDs and entities, then let ifcopenshell try (0.9.0 has no ifcXML reader)."""
    import ifcopenshell

    where = "the ifcXML model inside the ifcZIP" if inside_zip else "the ifcXML file"
    _refuse_xml_declarations(path, where)
    logger = _new_logger()
    kwargs = {"logger": logger} if logger is not None else {}
    try:
        model = ifcopenshell.open(path, format=".ifcXML", **kwargs)
    except NotImplementedError as exc:
        raise UnsupportedFormat(
            f"{where} cannot be read: ifcopenshell {ifcopenshell.version} has no ifcXML reader ({exc}); "
            "export the model as IFC-SPF (.ifc) instead"
        ) from exc
    except ifcopenshell.Error as exc:
        raise CorruptFile(valid_unicode(f"ifcopenshell cannot read {where}: {exc}")) from exc
    return model, logger


def _refuse_xml_declarations(path: Path, where: str) -> None:
    """ifcXML never needs a DTD; one with entities could expand without bound (billion laughs)."""
    overlap = b""
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            window = (overlap + chunk).upper()
            if b"<!DOCTYPE" in window or b"<!ENTITY" in window:
                raise UnsupportedFormat(f"{where} declares a DTD or entities, which are refused for safety")
            overlap = chunk[-16:]
