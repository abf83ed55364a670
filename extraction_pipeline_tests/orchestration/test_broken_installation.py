"""A file extracted by a broken installation: `extractor_error` (the installation's fault), not
`corrupt`; once the installation is repaired, `retry --failed` takes it and it succeeds.

See cli/test_doctor.py for how the installation is broken on purpose (an `ezdxf` on PYTHONPATH whose
import raises) and for doctor, quickstart and the daemon on such an installation.
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from extraction_pipeline.samples import write_dxf
from extraction_pipeline_tests.cli.test_doctor import broken_ezdxf, clean_env, ep
from extraction_pipeline_tests.orchestration.conftest import App, run


def test_a_file_extracted_by_a_broken_installation_is_extractor_error_and_retry_failed_takes_it(
    app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file_id = app.upload("plan.dxf", write_dxf(tmp_path / "plan.dxf").read_bytes())
    # The run's isolated worker is a fresh interpreter: it inherits the broken PYTHONPATH.
    monkeypatch.setenv("PYTHONPATH", str(broken_ezdxf(tmp_path)))
    with dg.instance_for_test() as instance:
        result = run(app, instance, [file_id])
    assert not result.success
    status = app.status(file_id)
    assert status["status"] == "failed"
    assert status["error"]["code"] == "extractor_error", status["error"]
    assert "installation" in status["error"]["message"]
    jobs = app.repository.jobs_for(file_id)
    assert [(job.attempt, job.status, job.error_code) for job in jobs] == [(1, "failed", "extractor_error")]

    # Once the installation is repaired, `retry --failed` takes the file again (a corrupt one it skips).
    monkeypatch.delenv("PYTHONPATH")
    env = clean_env(tmp_path, EXTRACTION_DATABASE_URL=app.url, EXTRACTION_STORAGE_URL=app.storage_url)
    retried = ep(env, "retry", "--failed", "--json", cwd=tmp_path)
    assert retried.returncode == 0, retried.stderr
    assert json.loads(retried.stdout)["requeued"] == [file_id]
    with dg.instance_for_test() as instance:
        assert run(app, instance, [file_id]).success
    assert app.status(file_id)["status"] == "succeeded"
