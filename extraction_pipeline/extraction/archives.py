"""Unpacking one member of a zip container (ifcZIP, zipped STEP) without trusting its header."""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

from extraction_pipeline.extraction.errors import CorruptFile, EncryptedFile, TooLarge, UnsupportedFormat

_CHUNK = 1024 * 1024


def unpack_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, max_bytes: int, what: str
) -> None:
    """Write ``info`` of ``archive`` to ``target``, never more than ``max_bytes``.

    The declared size can lie (a zip bomb), so the bytes are counted while they are written.
    ``what`` names the member in the error messages, e.g. "the ifcZIP member 'model.ifc'".
    """
    if info.flag_bits & 0x1:
        raise EncryptedFile(f"{what} is encrypted")
    if info.file_size > max_bytes:
        raise TooLarge(f"{what} inflates to {info.file_size} bytes, more than the limit of {max_bytes}")
    written = 0
    try:
        with archive.open(info) as source, target.open("wb") as sink:
            while chunk := source.read(_CHUNK):
                written += len(chunk)
                if written > max_bytes:  # the declared size lied
                    raise TooLarge(f"{what} inflates to more than the limit of {max_bytes} bytes")
                sink.write(chunk)
    except NotImplementedError as exc:  # a compression method zipfile does not know
        raise UnsupportedFormat(f"{what} cannot be inflated: {exc}") from exc
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as exc:
        raise CorruptFile(f"{what} is damaged: {exc}") from exc
    if written == 0:
        raise CorruptFile(f"{what} is empty")
