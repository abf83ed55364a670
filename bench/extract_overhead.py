"""How much slower is the project's warm, isolated extraction than calling the libraries directly?

For every format, the same files are read twice:

- project: ``WorkerPool.extract(path)``, a warm child process (hash, detection, extractor, envelope,
  pickling over the pipe and validation of the envelope in the parent included);
- raw: a minimal function in this process that opens the file with the same library and reads the
  same facts (the keys INTERFACE.md requires) the project's extractor reports.

Both sides get one untimed warm-up pass, then ``--repeat`` timed passes; each file's time is the
median of its passes, a format's time the sum over its files, its ratio project / raw. The median
of the per-format ratios is compared with the target (<= 1.15).

The warm-up pass compares the two sides file by file. A file counts when both read it. A file that
one side reads and the other does not (the project fails where the library reads it, or the other
way round) is a *failure* of the run: it is named with both sides' reasons under ``failures`` and
the script exits with 1. A file both sides reject because of the file itself (the project says
``corrupt``, ``encrypted``, ``unsupported_format`` or ``too_large`` and the raw loop raises too) is
left out and listed with both reasons under ``skipped``. Both sides failing for any other reason (an
ImportError, a crashed or timed-out worker, ...) is a failure as well: that is the installation,
not the file.

It also measures ``extract_cold_ms``: ``extraction-pipeline extract small.pdf --json`` (the console
script next to ``sys.executable``, a generated 2-page PDF) in a fresh process, median of 5 runs
after one untimed run; target <= 800 ms (``--no-cold`` leaves it out).

    python3 -m bench.extract_overhead [--quick] [--json] [--corpus DIR] [--repeat N] [--no-cold]

Exit status: 0 when it ran and every file was read alike by both sides (a missed target is reported,
not an error: this is a measurement), 1 when there are failures.

The work is done by the package's modules: ``raw`` (the raw loops), ``generate`` (the generated
files), ``overhead`` (comparison and timing), ``cold`` (the fresh-process CLI) and ``report``.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # python3 bench/extract_overhead.py: bench/ is first on sys.path,
    # and the package's modules import ``bench.*``: put the repository root there instead
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402

from bench.cold import measure_cold_extract  # noqa: E402
from bench.common import DEFAULT_CORPUS  # noqa: E402
from bench.generate import SCALES, corpus_files, generate_files  # noqa: E402
from bench.overhead import breakdown, measure  # noqa: E402
from bench.report import render_breakdown, render_overhead  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller generated files, 3 passes (< 2 min)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="corpus folder (pdf/, dxf/, ...)")
    parser.add_argument("--scale", choices=tuple(SCALES), default=None, help="size of the generated files")
    parser.add_argument("--repeat", type=int, default=None, help="timed passes (default 3 quick, 7 full)")
    parser.add_argument(
        "--stat", choices=("median", "min"), default="median", help="per-file statistic over the passes"
    )
    parser.add_argument("--no-generated", action="store_true", help="corpus files only")
    parser.add_argument("--verbose", action="store_true", help="also list every file")
    parser.add_argument(
        "--breakdown", action="store_true", help="also split the project's time into stages (ms per format)"
    )
    parser.add_argument(
        "--no-cold",
        action="store_true",
        help="leave out extract_cold_ms (the one-shot CLI in a fresh process)",
    )
    args = parser.parse_args(argv)
    repeat = args.repeat or (3 if args.quick else 7)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="extract-bench-") as tmp:
        files = corpus_files(args.corpus)
        if not files:
            log(f"no corpus at {args.corpus}; generated files only")
        if not args.no_generated:
            log("generating files ...")
            files += generate_files(Path(tmp), args.scale or ("quick" if args.quick else "full"))
        log(f"{len(files)} files, {repeat} timed passes")
        result = measure(files, repeat, log, args.stat)
        if args.breakdown:
            log("breakdown ...")
            counted = {row["file"] for row in result["files"]}
            result["breakdown_ms"] = breakdown([f for f in files if f.name in counted], repeat)
    result["extract_cold_ms"] = None
    if not args.no_cold:
        try:
            cold = measure_cold_extract(5, log)
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            result["failures"].append(f"extract_cold: {type(exc).__name__}: {exc}")
        else:
            result["extract_cold_ms"] = cold["median_ms"]
            result["extract_cold"] = cold
    if args.json:
        print(json.dumps(result))
    else:
        print(render_overhead(result, args.verbose))
        if args.breakdown:
            print("\nwhere the project's time goes (ms per format):")
            print(render_breakdown(result["breakdown_ms"]))
    if result["failures"]:
        log(f"bench FAILED: {len(result['failures'])} failure(s)")
        for note in result["failures"]:
            log(f"  {note}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
