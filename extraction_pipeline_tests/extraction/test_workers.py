"""The isolated warm worker pool, with real child processes that really crash, hang and run out of memory."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from extraction_pipeline.extraction.extract import extract_file
from extraction_pipeline.extraction.workers import (
    FAULT_INJECTION_ENV,
    WorkerPool,
    WorkerPoolClosed,
    child_environment,
    extract_isolated,
)
from extraction_pipeline.settings import Settings

TIMEOUT_S = 2.0
MEMORY_BYTES = 300 * 1024 * 1024


@pytest.fixture(scope="module")
def fault_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerPool]:
    """One worker with fault injection on, a 2 s time limit and a 300 MB memory limit."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(FAULT_INJECTION_ENV, "1")  # read once, when the pool is created
        pool = WorkerPool(timeout_s=TIMEOUT_S, memory_bytes=MEMORY_BYTES)
    pool.extract(plain_file(tmp_path_factory.mktemp("warm-up")))  # the worker starts here
    yield pool
    pool.close()


def plain_file(folder: Path, name: str = "notes.txt") -> Path:
    """A harmless file of no supported format: extracted in a few milliseconds, no heavy import."""
    path = folder / name
    path.write_bytes(b"just some notes, nothing to extract\n")
    return path


def fault_file(folder: Path, fault: str, name: str | None = None, tail: bytes = b"") -> Path:
    path = folder / (name or f"{fault}.bin")
    path.write_bytes(b"EXTRACTION-FAULT:" + fault.encode() + b"\n" + tail)
    return path


def served_by_same_worker(pool: WorkerPool, folder: Path) -> int:
    """Extract a plain file and return the pid of the worker that served it."""
    result = pool.run(plain_file(folder))
    assert result.envelope.error is not None and result.envelope.error.code == "unsupported_format"
    assert result.worker_replaced is False
    assert result.worker_pid is not None
    return result.worker_pid


# -- warm workers ---------------------------------------------------------------------------


def test_normal_files_reuse_the_same_warm_worker(fault_pool: WorkerPool, tmp_path: Path) -> None:
    first = served_by_same_worker(fault_pool, tmp_path)
    second = served_by_same_worker(fault_pool, tmp_path)
    assert first == second
    assert fault_pool.worker_pids() == [first]
    assert first != os.getpid()


def test_isolated_result_equals_in_process_result(tmp_path: Path) -> None:
    import pymupdf

    document = pymupdf.open()
    document.new_page(width=595, height=842).insert_text((72, 72), "Isolated extraction")
    document.new_page(width=842, height=595)
    document.set_metadata({"title": "Worker test", "author": "pytest"})
    path = tmp_path / "report.pdf"
    document.save(path)
    document.close()

    with WorkerPool() as pool:
        isolated = pool.extract(path, "Report Final.pdf").model_dump()
    local = extract_file(path, "Report Final.pdf").model_dump()
    isolated.pop("duration_ms")
    local.pop("duration_ms")
    assert isolated == local
    assert isolated["file"]["name"] == "Report Final.pdf"
    assert isolated["format"] == "pdf"


def test_worker_is_recycled_after_n_files(tmp_path: Path) -> None:
    with WorkerPool(max_files_per_worker=2) as pool:
        runs = [pool.run(plain_file(tmp_path)) for _ in range(3)]
    assert [r.worker_replaced for r in runs] == [False, True, False]
    assert runs[0].worker_pid == runs[1].worker_pid != runs[2].worker_pid
    assert all(r.envelope.error and r.envelope.error.code == "unsupported_format" for r in runs)


def test_worker_is_recycled_above_a_resident_memory_ceiling(tmp_path: Path) -> None:
    with WorkerPool(max_rss_bytes=1024 * 1024) as pool:  # any Python process is above 1 MiB
        runs = [pool.run(plain_file(tmp_path)) for _ in range(2)]
    assert all(r.worker_replaced for r in runs)
    assert runs[0].worker_pid != runs[1].worker_pid


def test_worker_that_cannot_start_blames_the_installation(tmp_path: Path) -> None:
    with WorkerPool(preload=("extraction_pipeline_no_such_module",), startup_timeout_s=30) as pool:
        result = pool.run(plain_file(tmp_path), attempt=1, max_attempts=2)
    envelope = result.envelope
    assert envelope.error is not None
    # A worker program that dies at start is a broken installation, not a bad file: final at once.
    assert (envelope.error.code, envelope.error.kind) == ("extractor_error", "permanent")
    assert "could not start" in envelope.error.message
    assert "exited unexpectedly with status 1" in envelope.error.message
    assert "doctor" in envelope.error.message
    assert envelope.file.sha256 == hashlib.sha256(plain_file(tmp_path).read_bytes()).hexdigest()
    assert result.worker_pid is None


def test_peak_rss_is_reported(fault_pool: WorkerPool, tmp_path: Path) -> None:
    served_by_same_worker(fault_pool, tmp_path)
    peak = fault_pool.peak_rss_bytes()
    # A Python interpreter with pydantic imported: tens of MB, below the memory limit.
    assert 5 * 1024 * 1024 < peak <= MEMORY_BYTES


# -- failures end only the worker -----------------------------------------------------------


def test_segfault_becomes_crashed_and_a_fresh_worker_takes_over(
    fault_pool: WorkerPool, tmp_path: Path
) -> None:
    before = served_by_same_worker(fault_pool, tmp_path)
    # The header after the fault marker makes the parent detect a PDF for the failure envelope.
    path = fault_file(tmp_path, "segfault", name="drawing.txt", tail=b"%PDF-1.7\n")
    started = time.monotonic()
    result = fault_pool.run(path, attempt=1, max_attempts=3)
    envelope = result.envelope

    assert time.monotonic() - started < TIMEOUT_S
    assert envelope.status == "failed"
    assert envelope.error is not None
    assert (envelope.error.code, envelope.error.kind) == ("crashed", "transient")
    assert "SIGSEGV" in envelope.error.message
    content = path.read_bytes()
    assert envelope.file.name == "drawing.txt"
    assert envelope.file.size_bytes == len(content)
    assert envelope.file.sha256 == hashlib.sha256(content).hexdigest()
    assert (envelope.format, envelope.extension_matches) == ("pdf", False)
    assert envelope.extractor.name == "pdf"
    assert envelope.duration_ms >= 0
    assert result.worker_pid == before and result.worker_replaced

    after = served_by_same_worker(fault_pool, tmp_path)
    assert after != before
    assert fault_pool.worker_pids() == [after]


def test_hang_becomes_timeout_within_the_limit(fault_pool: WorkerPool, tmp_path: Path) -> None:
    before = served_by_same_worker(fault_pool, tmp_path)
    started = time.monotonic()
    envelope = fault_pool.extract(fault_file(tmp_path, "hang"), attempt=3, max_attempts=3)
    elapsed = time.monotonic() - started

    assert TIMEOUT_S <= elapsed < TIMEOUT_S + 5
    assert envelope.error is not None
    assert (envelope.error.code, envelope.error.kind) == ("timeout", "permanent")
    assert envelope.duration_ms >= TIMEOUT_S * 1000
    assert envelope.format == "unknown"
    assert served_by_same_worker(fault_pool, tmp_path) != before


def test_memory_blow_up_becomes_out_of_memory(fault_pool: WorkerPool, tmp_path: Path) -> None:
    before = served_by_same_worker(fault_pool, tmp_path)
    started = time.monotonic()
    result = fault_pool.run(fault_file(tmp_path, "oom"), attempt=1, max_attempts=2)
    envelope = result.envelope

    assert time.monotonic() - started < TIMEOUT_S
    assert envelope.error is not None
    assert (envelope.error.code, envelope.error.kind) == ("out_of_memory", "transient")
    # The worker really allocated, and the address-space limit stopped it at 300 MB.
    assert result.peak_rss_bytes is not None
    assert 100 * 1024 * 1024 < result.peak_rss_bytes <= MEMORY_BYTES
    assert result.worker_replaced
    assert served_by_same_worker(fault_pool, tmp_path) != before


def test_worker_exit_becomes_crashed(fault_pool: WorkerPool, tmp_path: Path) -> None:
    before = served_by_same_worker(fault_pool, tmp_path)
    envelope = fault_pool.extract(fault_file(tmp_path, "exit"), attempt=2, max_attempts=2)
    assert envelope.error is not None
    assert (envelope.error.code, envelope.error.kind) == ("crashed", "permanent")
    assert "status 3" in envelope.error.message
    assert served_by_same_worker(fault_pool, tmp_path) != before


def test_worker_killed_from_outside_while_idle_is_replaced(fault_pool: WorkerPool, tmp_path: Path) -> None:
    before = served_by_same_worker(fault_pool, tmp_path)
    os.kill(before, 9)
    time.sleep(0.2)
    after = served_by_same_worker(fault_pool, tmp_path)
    assert after != before


def test_fault_markers_are_plain_files_without_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(FAULT_INJECTION_ENV, raising=False)
    with WorkerPool(timeout_s=TIMEOUT_S) as pool:
        first = pool.run(fault_file(tmp_path, "segfault"))
        second = pool.run(fault_file(tmp_path, "exit"))
    for result in (first, second):
        assert result.envelope.error is not None
        assert result.envelope.error.code == "unsupported_format"
    assert first.worker_pid == second.worker_pid


def test_a_hang_does_not_stall_the_other_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FAULT_INJECTION_ENV, "1")
    with WorkerPool(size=2, timeout_s=TIMEOUT_S) as pool:
        hang_result: list[str] = []
        hanging = threading.Thread(
            target=lambda: hang_result.append(pool.extract(fault_file(tmp_path, "hang")).error.code)
        )
        hanging.start()
        time.sleep(0.2)
        started = time.monotonic()
        names = [f"plain-{i}.txt" for i in range(4)]
        envelopes = [pool.extract(plain_file(tmp_path, name)) for name in names]
        quick = time.monotonic() - started
        hanging.join()
    assert [e.file.name for e in envelopes] == names
    assert quick < TIMEOUT_S + 1.5  # served by the other worker, not queued behind the hang
    assert hang_result == ["timeout"]


def test_concurrent_callers_each_get_their_own_file(tmp_path: Path) -> None:
    with WorkerPool(size=2) as pool:
        results: dict[str, str] = {}

        def work(index: int) -> None:
            for round_ in range(3):
                name = f"caller{index}-{round_}.txt"
                path = tmp_path / name
                path.write_bytes(f"caller {index} round {round_}\n".encode())
                results[name] = pool.extract(path).file.sha256

        with ThreadPoolExecutor(max_workers=3) as callers:
            for done in [callers.submit(work, i) for i in range(3)]:
                done.result()  # a caller's exception fails the test here
        assert 1 <= len(pool.worker_pids()) <= 2
    assert len(results) == 9
    for name, sha256 in results.items():  # each caller got the envelope of its own file
        assert sha256 == hashlib.sha256((tmp_path / name).read_bytes()).hexdigest(), name


# -- the caller's side ----------------------------------------------------------------------


def test_works_from_a_script_without_a_main_guard(tmp_path: Path) -> None:
    # Workers must not re-run the caller's __main__ (multiprocessing's "spawn" would).
    script = tmp_path / "quick_bench.py"
    script.write_text(
        "from extraction_pipeline.extraction.workers import WorkerPool\n"
        "print('script body ran')\n"
        "with WorkerPool() as pool:\n"
        f"    print(pool.extract({str(plain_file(tmp_path))!r}).error.code)\n",
        encoding="utf-8",
    )
    completed = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines() == ["script body ran", "unsupported_format"]


def test_missing_file_raises_and_the_pool_goes_on(fault_pool: WorkerPool, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        fault_pool.extract(tmp_path / "absent.pdf")
    served_by_same_worker(fault_pool, tmp_path)


def test_closed_pool_refuses_work(tmp_path: Path) -> None:
    pool = WorkerPool()
    pool.extract(plain_file(tmp_path))
    pids = pool.worker_pids()
    pool.close()
    with pytest.raises(WorkerPoolClosed):
        pool.extract(plain_file(tmp_path))
    assert pool.worker_pids() == []
    assert pids
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_from_settings_applies_the_limits() -> None:
    settings = Settings.from_env(
        {"EXTRACTION_TIMEOUT_S": "7.5", "EXTRACTION_MEMORY_LIMIT_MB": "512", "EXTRACTION_WORKERS": "3"}
    )
    pool = WorkerPool.from_settings(settings, max_files_per_worker=10)
    assert (pool.timeout_s, pool.memory_bytes, pool.size) == (7.5, 512 * 1024 * 1024, 3)
    assert pool.max_bytes == settings.max_file_bytes
    assert pool.max_files_per_worker == 10
    assert pool.worker_pids() == []  # workers start on first use
    pool.close()


def test_extract_isolated_uses_a_shared_warm_pool(tmp_path: Path) -> None:
    first = extract_isolated(plain_file(tmp_path, "one.txt"), timeout_s=30)
    second = extract_isolated(plain_file(tmp_path, "two.txt"), "renamed.dxf", timeout_s=30)
    assert first.error is not None and first.error.code == "unsupported_format"
    assert second.file.name == "renamed.dxf"
    from extraction_pipeline.extraction.workers import shared_pool

    assert len(shared_pool(timeout_s=30).worker_pids()) == 1


# -- the sealed boundary ---------------------------------------------------------------------

SECRETS = {
    "EXTRACTION_DATABASE_URL": "postgresql://app:app-db-secret@db.internal/app",
    "EXTRACTION_NOTIFY_WEBHOOK_URL": "https://hooks.example/webhook-secret",
    "DAGSTER_POSTGRES_URL": "postgresql://dagster:dagster-secret@db.internal/dagster",
    "DAGSTER_HOME": "/srv/dagster",
    "AWS_SECRET_ACCESS_KEY": "aws-secret",
    "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
    "SOME_SERVICE_TOKEN": "token-secret",
}


def test_code_running_in_the_worker_cannot_see_the_parents_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Code that runs inside the worker: an `ezdxf` on PYTHONPATH that records the environment it
    # sees when the DXF extractor imports it, then fails the import.
    site = tmp_path / "site"
    (site / "ezdxf").mkdir(parents=True)
    seen = tmp_path / "seen.json"
    (site / "ezdxf" / "__init__.py").write_text(
        "import json, os\n"
        f"open({str(seen)!r}, 'w').write(json.dumps(dict(os.environ)))\n"
        "raise ImportError('recorded the environment')\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(site))
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    drawing = tmp_path / "plan.dxf"
    drawing.write_text("0\nSECTION\n2\nHEADER\n0\nENDSEC\n0\nEOF\n")
    with WorkerPool(startup_timeout_s=30) as pool:
        envelope = pool.extract(drawing)
    assert envelope.error is not None and envelope.error.code == "extractor_error"
    environment = json.loads(seen.read_text())  # the code did run in the worker
    assert environment["PYTHONPATH"] == str(site)
    assert "PATH" in environment
    leaked = {name for name in SECRETS if name in environment}
    assert leaked == set()
    assert not any(value in json.dumps(environment) for value in SECRETS.values())


def test_the_child_environment_keeps_only_what_a_worker_needs() -> None:
    environ = {
        **SECRETS,
        "PATH": "/usr/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C",
        "PYTHONPATH": "/x",
        "CSF_OCCTResourcePath": "/occ",
        "HTTP_PROXY": "http://user:pw@proxy:3128",
    }
    assert child_environment(environ) == {
        "PATH": "/usr/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C",
        "PYTHONPATH": "/x",
        "CSF_OCCTResourcePath": "/occ",
        "MALLOC_ARENA_MAX": "2",
    }


def test_a_prestarted_worker_serves_the_first_file(tmp_path: Path) -> None:
    with WorkerPool(startup_timeout_s=30) as pool:
        pool.prestart()
        deadline = time.monotonic() + 30
        while not pool.worker_pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        started = pool.worker_pids()
        assert len(started) == 1  # it booted before any file was asked for
        assert served_by_same_worker(pool, tmp_path) == started[0]
        pool.prestart()  # a live worker: nothing more is started
        assert pool.worker_pids() == started


def test_a_worker_that_cannot_prestart_is_reported_by_extract(tmp_path: Path) -> None:
    with WorkerPool(preload=("extraction_pipeline_no_such_module",), startup_timeout_s=30) as pool:
        pool.prestart()
        envelope = pool.extract(plain_file(tmp_path))
    assert envelope.error is not None and envelope.error.code == "extractor_error"
