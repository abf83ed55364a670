"""Announce permanent failures: a structured log line always, a webhook POST when configured.

Each failed file of an alert carries its error (``kind``, ``code``, ``message``) as the extraction
recorded it. A failure that is not the file's fault gets a ``hint`` saying whose fault it is and
what to do: ``extractor_error`` (the installation or the extractor's own code failed: an
ImportError, a library symbol that is missing) says to check the installation with
``extraction-pipeline doctor``. The other codes (``unsupported_format``, ``corrupt``, ... ) blame
the file and keep their message as it is.
"""

from __future__ import annotations

import base64
import json
import logging
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

log = logging.getLogger("extraction_pipeline.notify")

WEBHOOK_TIMEOUT_S = 10.0

# Failure codes whose cause is not the file, and what a person should be told about them.
FAULT_HINTS: dict[str, str] = {
    "extractor_error": (
        "the installation or the extractor failed, not the file: run `extraction-pipeline doctor`, "
        "fix what it reports, then `extraction-pipeline retry --failed`"
    ),
}


def failure_hint(code: str | None, message: str | None = None) -> str | None:
    """Whose fault a failure with ``code`` is and what to do, when it is not the file's; else None.

    For text shown next to ``message``: None too when the message already says to run the doctor
    (the extraction core writes that itself), so a line does not say it twice.
    """
    hint = FAULT_HINTS.get(code or "")
    if hint is None or (message and "extraction-pipeline doctor" in message):
        return None
    return hint


def with_hints(event: dict[str, Any]) -> dict[str, Any]:
    """``event`` with a ``hint`` on each file whose failure is not the file's fault (a copy).

    With such a file, the event gets a top-level ``hint`` too, naming those files (a webhook
    consumer that shows one line shows that one). Other events are returned unchanged.
    """
    files = event.get("files")
    if not isinstance(files, list):
        return event
    hinted: list[Any] = []
    by_code: dict[str, list[Any]] = {}
    for item in files:
        error = item.get("error") if isinstance(item, dict) else None
        code = error.get("code") if isinstance(error, dict) else None
        if isinstance(code, str) and code in FAULT_HINTS:
            item = {**item, "hint": FAULT_HINTS[code]}
            by_code.setdefault(code, []).append(item.get("id"))
        hinted.append(item)
    if not by_code:
        return event
    summary = "; ".join(
        f"{code} for file(s) {', '.join(map(str, ids))}: {FAULT_HINTS[code]}" for code, ids in by_code.items()
    )
    return {**event, "files": hinted, "hint": summary}


def redact_webhook_url(url: str) -> str:
    """The URL without user, password, query string or fragment (tokens often live there)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, "", ""))
    except ValueError:
        return "<webhook url>"


def notify(event: dict[str, Any], webhook_url: str | None, *, timeout_s: float = WEBHOOK_TIMEOUT_S) -> bool:
    """Log ``event`` as one JSON line; POST it to ``webhook_url`` if set. True if delivered (or no URL).

    Never raises: an alert that cannot be delivered is logged, not allowed to fail the sensor.
    """
    body = json.dumps(with_hints(event), ensure_ascii=False, default=str, sort_keys=True)
    log.warning("extraction alert %s", body)
    if not webhook_url:
        return True
    target = redact_webhook_url(webhook_url)
    headers = {"Content-Type": "application/json", "User-Agent": "extraction-pipeline"}
    try:
        parts = urlsplit(webhook_url)
        url = webhook_url
        if parts.username is not None:  # user:password@host: sent as HTTP basic auth, not in the URL
            credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode("ascii")
            host = parts.hostname or ""
            if ":" in host:
                host = f"[{host}]"
            if parts.port:
                host = f"{host}:{parts.port}"
            url = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
        request = urllib.request.Request(url, data=body.encode("utf-8"), method="POST", headers=headers)
    except ValueError:
        log.error("webhook URL %s is not valid", target)
        return False
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - URL from settings
            status = response.status
    except urllib.error.HTTPError as exc:
        log.error("webhook %s answered HTTP %s", target, exc.code)
        return False
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        log.error("webhook %s could not be reached: %s", target, type(reason).__name__)
        return False
    if not 200 <= status < 300:
        log.error("webhook %s answered HTTP %s", target, status)
        return False
    return True
