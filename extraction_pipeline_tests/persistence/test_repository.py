"""The repository is the sum of its query groups; persistence stores the run key it is given."""

from __future__ import annotations

from extraction_pipeline.extraction import errors as core_errors
from extraction_pipeline.persistence.attempts import Attempts
from extraction_pipeline.persistence.errors import DatabaseUnavailable
from extraction_pipeline.persistence.files import FileQueries
from extraction_pipeline.persistence.queueing import Queueing
from extraction_pipeline.persistence.repository import CloudFileRepository, QueuedFile
from extraction_pipeline.persistence.search import TextSearch
from extraction_pipeline.persistence.state import FileStatus
from extraction_pipeline_tests.conftest import add_file_row

add = add_file_row


def test_the_repository_only_composes_its_query_groups() -> None:
    assert CloudFileRepository.__bases__ == (FileQueries, Queueing, Attempts, TextSearch)
    assert not [name for name in vars(CloudFileRepository) if not name.startswith("__")]
    names = [
        {name for name in vars(group) if not name.startswith("__")} for group in CloudFileRepository.__bases__
    ]
    assert sum(map(len, names)) == len(set().union(*names))  # no query is defined twice


def test_queue_files_stores_the_run_key_it_is_given(repository: CloudFileRepository) -> None:
    given, without = add(repository, "a.pdf"), add(repository, "b.pdf")
    queued = repository.queue_files([given], run_key=lambda file_id, generation: f"k-{file_id}-{generation}")
    assert queued == [QueuedFile(id=given, generation=0)] and queued[0].partition_key == str(given)
    row = repository.get_file(given)
    assert row is not None and row.extraction_status is not None
    stored = row.extraction_status
    assert stored["status"] == FileStatus.QUEUED and stored["run_key"] == f"k-{given}-0"
    assert stored["generation"] == 0

    assert repository.queue_files([without], backfill=True) == [QueuedFile(id=without, generation=0)]
    row = repository.get_file(without)
    assert row is not None and row.extraction_status is not None
    assert "run_key" not in row.extraction_status and row.extraction_status["backfill"] is True


def test_database_errors_belong_to_persistence() -> None:
    assert not hasattr(core_errors, "DatabaseUnavailable")
    assert issubclass(DatabaseUnavailable, core_errors.TransientError)
    assert DatabaseUnavailable.code == "database_unavailable" and DatabaseUnavailable.kind == "transient"
    assert DatabaseUnavailable.code not in core_errors.PERMANENT_CODES + core_errors.FILE_FAULT_CODES
