"""One module per format, each with ``NAME``, ``VERSION``, a metadata model and ``extract(path, context)``.

Heavy libraries (pymupdf, ezdxf, ifcopenshell, OCP, ezdwg) are imported inside ``extract``
so that importing this package stays cheap for the Dagster code location.
Each module is named, with its version and metadata model, by its ``FormatSpec`` in
``extraction/format_table.py``.
"""
