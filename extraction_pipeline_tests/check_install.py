"""Extract the whole public corpus with the installed `extraction-pipeline` command and check it.

`.ci/run` runs this in a fresh virtual environment built exactly as the README's install says (no
extras, so no pytest either), before the test suite: what users install is what is checked. Every
file of ../shared/corpus must reach the result expected.json gives (the corpus README's rules,
the same `check_envelope` the conformance tests use). Exit 0 when all do, 1 otherwise (each
mismatch on its own line), 2 when the corpus or the command is missing.

    python3 -m extraction_pipeline_tests.check_install
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from extraction_pipeline_tests.corpus import CORPUS_DIR, check_envelope, corpus_entries


def main() -> int:
    entries = corpus_entries()
    if not entries:
        print(f"error: no corpus at {CORPUS_DIR}", file=sys.stderr)
        return 2
    command = shutil.which("extraction-pipeline", path=str(Path(sys.executable).parent))
    if command is None:
        print(f"error: no extraction-pipeline command beside {sys.executable}", file=sys.stderr)
        return 2
    paths = [str(CORPUS_DIR / entry["file"]) for entry in entries]
    completed = subprocess.run(
        [command, "extract", *paths, "--json"], capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    if completed.returncode not in (0, 1):
        print(f"error: `extraction-pipeline extract` exited {completed.returncode}:", file=sys.stderr)
        print(completed.stderr[-4000:], file=sys.stderr)
        return 1
    envelopes = json.loads(completed.stdout)
    failures = 0
    for entry, envelope in zip(entries, envelopes, strict=True):
        try:
            check_envelope(envelope, entry)
        except AssertionError as exc:
            failures += 1
            error = envelope.get("error") or {}
            print(
                f"MISMATCH {entry['file']}: {exc or 'unexpected result'}; got {envelope['format']} "
                f"{envelope['status']} {error.get('code', '')} {error.get('message', '')}"[:2000]
            )
        else:
            print(f"ok       {entry['file']}: {envelope['format']} {envelope['status']}")
    print(f"{len(entries) - failures} of {len(entries)} corpus files as expected")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
