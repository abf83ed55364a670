"""`doctor`, and what a broken installation does: doctor fails, quickstart and the daemon refuse to
start, and a file is recorded with `extractor_error` (the installation's fault), never `corrupt`.

The installation is broken on purpose the way a bad release breaks it: a folder on PYTHONPATH holds an
`ezdxf` package whose import raises ImportError. Every process started with that environment (the
CLI, its isolated extraction workers, the doctor's sample writer) sees it; nothing is mocked.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from extraction_pipeline.samples import write_dxf
from extraction_pipeline_tests.conftest import run_cli

REPO_ROOT = Path(__file__).resolve().parents[2]
FORMATS = ["pdf", "dxf", "dwg", "ifc", "step"]


def broken_ezdxf(tmp_path: Path) -> Path:
    folder = tmp_path / "broken-site"
    (folder / "ezdxf").mkdir(parents=True)
    (folder / "ezdxf" / "__init__.py").write_text(
        'raise ImportError("cannot import name \'Drawing\' from \'ezdxf\' (broken on purpose)")\n'
    )
    return folder


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EXTRACTION_", "DAGSTER_"))}
    env.update(EXTRACTION_HOME=str(tmp_path / "home"), **extra)
    return env


ep = run_cli


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_doctor_passes_on_this_installation(tmp_path: Path) -> None:
    done = ep(clean_env(tmp_path), "doctor", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    checks = json.loads(done.stdout)
    assert all(set(check) == {"check", "ok", "message"} for check in checks)
    by_name = {check["check"]: check for check in checks}
    assert set(FORMATS) <= set(by_name)
    assert {"database", "blob store", "dagster instance", "code location"} <= set(by_name)
    assert all(check["ok"] for check in checks), checks
    for fmt in FORMATS:  # the sample really went through the extractor
        assert "extracted in" in by_name[fmt]["message"], by_name[fmt]
    # The embedded default is not created by a check.
    assert not (tmp_path / "home").exists()

    human = ep(clean_env(tmp_path), "doctor", cwd=tmp_path)
    assert human.returncode == 0
    lines = human.stdout.splitlines()
    assert len(lines) == len(checks) and all(line.startswith("ok") for line in lines)


def test_doctor_fails_on_an_unreachable_database_and_a_missing_instance_folder(tmp_path: Path) -> None:
    env = clean_env(
        tmp_path,
        EXTRACTION_DATABASE_URL="postgresql://nobody@127.0.0.1:1/none",
        DAGSTER_HOME=str(tmp_path / "no-such-folder"),
    )
    done = ep(env, "doctor", "--json", cwd=tmp_path)
    assert done.returncode == 1
    by_name = {check["check"]: check for check in json.loads(done.stdout)}
    assert not by_name["database"]["ok"] and "not reachable" in by_name["database"]["message"]
    assert not by_name["dagster instance"]["ok"] and "not a folder" in by_name["dagster instance"]["message"]
    assert all(by_name[fmt]["ok"] for fmt in FORMATS)


def test_a_broken_format_library_fails_doctor_and_blames_the_installation(tmp_path: Path) -> None:
    env = clean_env(tmp_path, PYTHONPATH=str(broken_ezdxf(tmp_path)))
    done = ep(env, "doctor", cwd=tmp_path)
    assert done.returncode == 1
    failed = [line for line in done.stdout.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 1 and failed[0].startswith("FAIL  dxf:"), done.stdout
    assert "ImportError" in failed[0] and "broken on purpose" in failed[0]

    # A local extract says the installation is at fault, not the file.
    drawing = write_dxf(tmp_path / "plan.dxf")
    extracted = ep(env, "extract", str(drawing), "--json", cwd=tmp_path)
    assert extracted.returncode == 1
    envelope = json.loads(extracted.stdout)
    assert envelope["error"]["code"] == "extractor_error"
    assert envelope["error"]["kind"] == "permanent"
    assert "installation" in envelope["error"]["message"] and "doctor" in envelope["error"]["message"]


def test_quickstart_and_the_daemon_refuse_to_start_on_a_broken_installation(tmp_path: Path) -> None:
    env = clean_env(tmp_path, PYTHONPATH=str(broken_ezdxf(tmp_path)))
    refused = ep(env, "quickstart", "--port", str(free_port()), cwd=tmp_path)
    assert refused.returncode == 1
    assert "FAIL  dxf:" in refused.stderr and "quickstart refuses to start" in refused.stderr
    assert not (tmp_path / "home").exists()  # nothing created, no sample uploaded

    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    daemon = ep({**env, "DAGSTER_HOME": str(home)}, "daemon", "-w", "workspace.yaml", cwd=REPO_ROOT)
    assert daemon.returncode == 1
    assert "FAIL  dxf:" in daemon.stderr and "the daemon refuses to start" in daemon.stderr
