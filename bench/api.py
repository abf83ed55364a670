"""The HTTP API under load: a real ``extraction-pipeline serve`` on a free port, talked to with httpx.

    python3 -m bench.api [--quick | --scale tiny|quick|full] [--json] [--corpus DIR]

(on the embedded SQLite default; ``python3 -m bench.run --only api`` measures the same on the
deployment's PostgreSQL, as in production). Three figures (see bench/README.md):

- ``api_overhead_ratio``: the corpus files (``<corpus>/<fmt>/*``) uploaded one after the other over
  HTTP (one client, keep-alive, to a running server), divided by the same files through
  ``extraction-pipeline upload FILE...`` as one fresh process (its start included). Medians of
  ``repeat`` alternating passes after an untimed one. The in-process upload (``upload_stream``, the
  CLI's own function, warm in this process) is timed beside them and reported in the details;
- ``api_upload_files_per_s``: 16 clients (threads, one httpx client and connection each) uploading
  corpus files without pause for ``load_s`` seconds;
- ``api_status_p95_ms``: 16 clients doing ``GET /v1/files/{id}`` on random uploaded ids for
  ``load_s`` seconds; the 95th percentile of the request times seen by the clients.

Every answer is checked (201 with an id and the file's sha256, 200 with that id): anything else is
a failure, listed under ``failures``, and the run exits 1.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # python3 bench/api.py: put the repository root first, as bench/run.py does
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse  # noqa: E402
import contextlib  # noqa: E402
import hashlib  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import secrets  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

from bench.common import DEFAULT_CORPUS, FORMATS, REPO, load_average, log, short  # noqa: E402

TARGET_API_RATIO = 2.0
CLIENTS = 16
# (untimed + timed passes of the 29 files per side, seconds of each load phase) per scale.
SCALES = {"tiny": (1, 1.0), "quick": (3, 5.0), "full": (5, 15.0)}


def corpus_files(corpus: Path | None) -> list[Path]:
    """The public corpus's files, ``<corpus>/<fmt>/*`` (the JSON and Markdown beside them left out)."""
    if corpus is None:
        return []
    return [path for fmt in FORMATS for path in sorted((corpus / fmt).glob("*")) if path.is_file()]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def sqlite_env(folder: Path) -> dict[str, str]:
    """The embedded default in ``folder``: SQLite under ``EXTRACTION_HOME``, ``file://`` blobs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EXTRACTION_", "DAGSTER_"))}
    env.update(EXTRACTION_HOME=str(folder / "home"), EXTRACTION_STORAGE_URL=(folder / "blobs").as_uri())
    return env


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], pct: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


@dataclass
class Server:
    """A running ``python -m extraction_pipeline serve`` and what it needs to be talked to."""

    process: subprocess.Popen[bytes]
    url: str
    token: str
    log_path: Path
    env: dict[str, str]
    started_s: float = 0.0

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""

    def check(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"serve exited ({self.process.returncode}):\n{self.tail()}")


@contextlib.contextmanager
def running_server(env: dict[str, str], folder: Path, timeout_s: float = 60) -> Iterator[Server]:
    """``serve`` on a free loopback port with a fresh token, once ``/healthz`` answers 200; stopped after."""
    import httpx

    token = secrets.token_urlsafe(24)
    port = free_port()
    log_path = folder / "serve.log"
    server_env = {**env, "EXTRACTION_API_TOKEN": token}
    started = time.perf_counter()
    with log_path.open("ab") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "extraction_pipeline",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=REPO,
            env=server_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(process, f"http://127.0.0.1:{port}", token, log_path, server_env)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            server.check()
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"serve did not answer /healthz with 200 within {timeout_s:.0f} s:\n{server.tail()}"
                )
            time.sleep(0.1)
        server.started_s = time.perf_counter() - started
        yield server
    finally:
        stop_server(process)


def stop_server(process: subprocess.Popen[bytes], timeout_s: float = 15) -> None:
    """SIGTERM (uvicorn shuts down gracefully), then SIGKILL to what is left of its process group."""
    if process.poll() is None:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=timeout_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@dataclass
class Load:
    """What the clients of one load phase saw."""

    latencies_s: list[float] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    client_cpu_s: float = 0.0
    server_cpu_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def summary(self, clients: int, what: str) -> dict[str, Any]:
        n = len(self.latencies_s)
        ms = sorted(t * 1000 for t in self.latencies_s) or [0.0]
        return {
            "clients": clients,
            what: n,
            "wall_s": round(self.wall_s, 2),
            "per_s": round(n / self.wall_s, 1) if self.wall_s else 0.0,
            "p50_ms": round(percentile(ms, 50), 1),
            "p95_ms": round(percentile(ms, 95), 1),
            "p99_ms": round(percentile(ms, 99), 1),
            "max_ms": round(ms[-1], 1),
            "failed": len(self.failures),
            "client_cpu_s": round(self.client_cpu_s, 2),
            "server_cpu_s": round(self.server_cpu_s, 2),
        }


def run_clients(
    server: Server, clients: int, duration_s: float, request: Callable[[Any], tuple[bool, str, int | None]]
) -> Load:
    """``clients`` threads, each with its own httpx client (one keep-alive connection), calling
    ``request(client)`` without pause until ``duration_s`` has passed since they all started.

    ``request`` returns (ok, what went wrong, an uploaded id or None). The wall time runs from the
    common start to the end of the last request (a request under way at the deadline is finished
    and counted).
    """
    import httpx

    load = Load()
    barrier = threading.Barrier(clients + 1)
    deadline = [0.0]

    def client_loop() -> None:
        with httpx.Client(base_url=server.url, headers=server.headers, timeout=60) as client:
            barrier.wait()
            while time.perf_counter() < deadline[0]:
                started = time.perf_counter()
                try:
                    ok, problem, new_id = request(client)
                except httpx.HTTPError as exc:
                    ok, problem, new_id = False, f"{type(exc).__name__}: {exc}", None
                elapsed = time.perf_counter() - started
                with load.lock:
                    if ok:
                        load.latencies_s.append(elapsed)
                        if new_id is not None:
                            load.ids.append(new_id)
                    elif len(load.failures) < 20:
                        load.failures.append(problem)
                    else:
                        load.failures.append("")  # counted, not repeated

    threads = [threading.Thread(target=client_loop, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    cpu_before, server_before = time.process_time(), cpu_s(server.process.pid)
    started = time.perf_counter()
    deadline[0] = started + duration_s
    barrier.wait()
    for thread in threads:
        thread.join()
    load.wall_s = time.perf_counter() - started
    load.client_cpu_s = time.process_time() - cpu_before
    load.server_cpu_s = cpu_s(server.process.pid) - server_before
    server.check()
    return load


def check_upload(response: Any, path: Path, digest: str) -> tuple[bool, str, int | None]:
    if response.status_code != 201:
        return False, f"POST /v1/files {path.name}: {response.status_code} {short(response.text)}", None
    body = response.json()
    if body.get("sha256") != digest or not isinstance(body.get("id"), int):
        return False, f"POST /v1/files {path.name}: unexpected answer {short(body)}", None
    return True, "", body["id"]


def post_file(client: Any, path: Path) -> Any:
    with path.open("rb") as source:
        return client.post("/v1/files", files={"file": (path.name, source)})


def measure_api(
    corpus: Path | None,
    scale: str = "quick",
    env: dict[str, str] | None = None,
    backend: str = "sqlite",
    clients: int = CLIENTS,
    log: Callable[[str], None] = log,
) -> dict[str, Any]:
    """The three figures and their details. ``env`` is the deployment's environment (its database
    and blob store, named ``backend`` in the details); without it the embedded SQLite default in a
    temporary folder."""

    from bench.cold import console_script

    repeat, load_s = SCALES[scale]
    files = corpus_files(corpus)
    if not files:
        raise FileNotFoundError(f"no corpus files under {corpus}/<{'|'.join(FORMATS)}>/")
    digests = {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in files}
    script = console_script()
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="ep-bench-api-") as tmp:
        folder = Path(tmp)
        if env is None:
            env, backend = sqlite_env(folder), "sqlite"
        log(f"api: starting `serve` ({backend}) and uploading {len(files)} corpus files")
        with running_server(env, folder) as server:
            overhead = _overhead(server, files, digests, repeat, script, failures, log)
            every_file = itertools.cycle(files)
            next_lock = threading.Lock()

            def upload_one(client: Any) -> tuple[bool, str, int | None]:
                with next_lock:
                    path = next(every_file)
                return check_upload(post_file(client, path), path, digests[path])

            log(f"api: {clients} clients uploading for {load_s:g} s")
            uploads = run_clients(server, clients, load_s, upload_one)
            ids = overhead.pop("ids") + uploads.ids
            uploaded_bytes = sum(path.stat().st_size for path in files)

            def status_one(client: Any) -> tuple[bool, str, int | None]:
                file_id = random.choice(ids)
                response = client.get(f"/v1/files/{file_id}")
                if response.status_code != 200 or response.json().get("id") != file_id:
                    return (
                        False,
                        f"GET /v1/files/{file_id}: {response.status_code} {short(response.text)}",
                        None,
                    )
                return True, "", None

            log(f"api: {clients} clients reading GET /v1/files/{{id}} for {load_s:g} s")
            statuses = run_clients(server, clients, load_s, status_one)
            serve_start_s = server.started_s
    for what, load in (("uploads", uploads), ("status reads", statuses)):
        shown = [note for note in load.failures if note]
        failures.extend(f"api: {what}: {note}" for note in shown)
        if len(load.failures) > len(shown):
            failures.append(f"api: {what}: {len(load.failures) - len(shown)} more failed requests")
    upload_summary = uploads.summary(clients, "uploads")
    upload_summary["mb_per_s"] = round(
        sum(_sizes_of(files, upload_summary["uploads"])) / 1e6 / uploads.wall_s, 2
    )
    return {
        "api_overhead_ratio": overhead["ratio"],
        "api_upload_files_per_s": upload_summary["per_s"],
        "api_status_p95_ms": statuses.summary(clients, "reads")["p95_ms"],
        "details": {
            "backend": backend,
            "server": "python -m extraction_pipeline serve --host 127.0.0.1 --port <free> (1 worker)",
            "serve_start_s": round(serve_start_s, 2),
            "files": len(files),
            "bytes": uploaded_bytes,
            "overhead": overhead,
            "uploads": upload_summary,
            "status": statuses.summary(clients, "reads"),
        },
        "failures": failures,
    }


def _sizes_of(files: list[Path], count: int) -> Iterator[int]:
    """The sizes of the first ``count`` files of the clients' round robin over ``files``."""
    sizes = [path.stat().st_size for path in files]
    for index in range(count):
        yield sizes[index % len(sizes)]


def _overhead(
    server: Server,
    files: list[Path],
    digests: dict[Path, str],
    repeat: int,
    script: Path,
    failures: list[str],
    log: Callable[[str], None],
) -> dict[str, Any]:
    """The corpus over HTTP (sequential, one keep-alive client) vs ``extraction-pipeline upload`` (one
    fresh process) vs the CLI's upload function in this process, alternating; medians of ``repeat``."""
    import httpx

    from extraction_pipeline.persistence.blobs import blob_store_from_url
    from extraction_pipeline.persistence.repository import CloudFileRepository
    from extraction_pipeline.service.uploads import upload_stream
    from extraction_pipeline.settings import Settings

    settings = Settings.from_env(server.env)
    store = blob_store_from_url(settings.storage_url)
    repository = CloudFileRepository.from_url(settings.database_url)
    ids: list[int] = []
    command = [str(script), "upload", "--json", *map(str, files)]

    def over_http(client: httpx.Client) -> float:
        started = time.perf_counter()
        answers = [post_file(client, path) for path in files]
        elapsed = time.perf_counter() - started
        for path, response in zip(files, answers, strict=True):
            ok, problem, new_id = check_upload(response, path, digests[path])
            if ok and new_id is not None:
                ids.append(new_id)
            else:
                failures.append(f"api: {problem}")
        return elapsed

    def through_cli() -> float:
        started = time.perf_counter()
        done = subprocess.run(command, cwd=REPO, env=server.env, capture_output=True, text=True, timeout=300)
        elapsed = time.perf_counter() - started
        uploaded: Any = None
        with contextlib.suppress(ValueError):
            uploaded = json.loads(done.stdout)
        if (
            done.returncode != 0
            or not isinstance(uploaded, list)
            or [item.get("sha256") for item in uploaded] != [digests[path] for path in files]
        ):
            failures.append(
                f"api: `extraction-pipeline upload` of the {len(files)} files exited {done.returncode} "
                f"without their {len(files)} uploads: stdout {short(done.stdout)!r}, stderr {short(done.stderr, 1000)!r}"
            )
        return elapsed

    def in_process() -> float:
        started = time.perf_counter()
        for path in files:
            with path.open("rb") as source:
                upload_stream(source, path.name, None, store, repository, max_bytes=settings.max_file_bytes)
        return time.perf_counter() - started

    http_s: list[float] = []
    cli_s: list[float] = []
    local_s: list[float] = []
    try:
        with httpx.Client(base_url=server.url, headers=server.headers, timeout=60) as client:
            # Untimed: the server's first requests, the CLI's page cache and bytecode, this process's imports.
            first = {"http_s": over_http(client), "cli_s": through_cli(), "in_process_s": in_process()}
            for _ in range(repeat):
                http_s.append(over_http(client))
                cli_s.append(through_cli())
                local_s.append(in_process())
    finally:
        repository.dispose()
    server.check()
    http, cli, local = statistics.median(http_s), statistics.median(cli_s), statistics.median(local_s)
    log(f"api: {len(files)} files over HTTP {http:.3f} s, `upload` {cli:.3f} s, in process {local:.3f} s")
    return {
        "ratio": round(http / cli, 3),
        "http_s": round(http, 3),
        "cli_s": round(cli, 3),
        "in_process_s": round(local, 3),
        "ratio_vs_in_process": round(http / local, 3),
        "http_runs_s": [round(t, 3) for t in http_s],
        "cli_runs_s": [round(t, 3) for t in cli_s],
        "in_process_runs_s": [round(t, 3) for t in local_s],
        "untimed_first": {k: round(v, 3) for k, v in first.items()},
        "cli": f"{script} upload --json <the {len(files)} files>",
        "target": TARGET_API_RATIO,
        "ids": ids,
    }


def render(result: dict[str, Any]) -> str:
    verdict = (
        "met" if result["api_overhead_ratio"] <= TARGET_API_RATIO and not result["failures"] else "NOT met"
    )
    lines = [
        f"api_overhead_ratio      {result['api_overhead_ratio']}  (target <= {TARGET_API_RATIO:g}: {verdict})",
        f"api_upload_files_per_s  {result['api_upload_files_per_s']}",
        f"api_status_p95_ms       {result['api_status_p95_ms']}",
        "",
        render_details(result["details"]),
    ]
    lines += [f"FAILED: {note}" for note in result["failures"]]
    return "\n".join(lines)


def render_details(d: dict[str, Any]) -> str:
    o, u, s = d["overhead"], d["uploads"], d["status"]
    return "\n".join(
        [
            f"api ({d['backend']}, serve started in {d['serve_start_s']} s): {d['files']} corpus files "
            f"({d['bytes'] / 1e6:.2f} MB) over HTTP {o['http_s']} s vs `extraction-pipeline upload` "
            f"{o['cli_s']} s (a fresh process); in process {o['in_process_s']} s "
            f"(HTTP / in process {o['ratio_vs_in_process']})",
            f"  {u['clients']} clients uploading: {u['uploads']} files in {u['wall_s']} s "
            f"({u['mb_per_s']} MB/s), p50/p95 {u['p50_ms']}/{u['p95_ms']} ms, {u['failed']} failed; "
            f"CPU s client {u['client_cpu_s']}, server {u['server_cpu_s']}",
            f"  {s['clients']} clients reading status: {s['reads']} reads in {s['wall_s']} s, "
            f"p50/p95/p99 {s['p50_ms']}/{s['p95_ms']}/{s['p99_ms']} ms, {s['failed']} failed; "
            f"CPU s client {s['client_cpu_s']}, server {s['server_cpu_s']}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 passes, 5 s load phases")
    parser.add_argument("--scale", choices=tuple(SCALES), help="instead of --quick: tiny, quick or full")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="files from DIR/<fmt>/*")
    args = parser.parse_args(argv)
    scale = args.scale or ("quick" if args.quick else "full")
    before = load_average()
    result = measure_api(args.corpus, scale)
    result["details"]["load_before"], result["details"]["load_after"] = before, load_average()
    print(json.dumps(result) if args.json else render(result))
    for note in result["failures"]:
        log(f"FAILED: {note}")
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
