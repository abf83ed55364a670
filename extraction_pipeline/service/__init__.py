"""The use cases behind both front doors, the CLI and the HTTP API: no click, no FastAPI here.

A command or a route parses its input, calls one function of this package and maps its result or
its error (``service.errors``) to output and an exit code or an HTTP status, so that ``status 7
--json`` and ``GET /v1/files/7`` print the same document.
"""
