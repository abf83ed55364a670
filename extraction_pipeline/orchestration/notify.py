"""Announce permanent failures: a structured log line always, a webhook POST when configured."""

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
    body = json.dumps(event, ensure_ascii=False, default=str, sort_keys=True)
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
