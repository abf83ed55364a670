"""Queueing files for the pipeline: pending files, request generations, re-queueing and retries.

The Dagster run key of a request is orchestration's (``orchestration.partitions.run_key_for``):
``queue_files`` stores the key it is given beside the generation it counted, nothing more.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, null, or_, select, update

from extraction_pipeline.persistence.database import Store, translate_db_errors
from extraction_pipeline.persistence.files import locked_files
from extraction_pipeline.persistence.models import CloudFile
from extraction_pipeline.persistence.state import (
    ACTIVE_STATUSES,
    FileStatus,
    new_status,
    status_of_document,
    utcnow,
)

# The run key of a request, from the file id and the request generation.
RunKey = Callable[[int, int], str]


@dataclass(frozen=True)
class QueuedFile:
    """A file the pipeline just queued: its partition key and the generation of the request."""

    id: int
    generation: int

    @property
    def partition_key(self) -> str:
        return str(self.id)


def _queued_for_backfill(backfill_id: str) -> tuple[Any, ...]:
    """SQL conditions: the file is still ``queued`` for the backfill ``backfill_id``."""
    status = CloudFile.extraction_status
    return (
        status["status"].as_string() == FileStatus.QUEUED.value,
        status["backfill_id"].as_string() == backfill_id,
    )


class Queueing(Store):
    """Files into ``queued`` (and back to pending) in ``cloud_files.extraction_status``."""

    def pending_ids(self, limit: int) -> list[int]:
        """The oldest files the pipeline has not seen yet (uses the partial index ix_cloud_files_pending)."""
        query = select(CloudFile.id).where(CloudFile.extraction_status.is_(None)).order_by(CloudFile.id)
        with translate_db_errors(self.url), self.sessions() as session:
            return list(session.scalars(query.limit(limit)))

    def queue_files(
        self,
        ids: Iterable[int],
        *,
        only_pending: bool = True,
        run_key: RunKey | None = None,
        **extra: Any,
    ) -> list[QueuedFile]:
        """Mark files ``queued`` and give each a new request generation, in one transaction.

        With ``only_pending`` a file that is no longer pending (another tick, a concurrent command)
        is left alone and not returned, so two callers never both queue the same file. With
        ``run_key`` each status also stores ``run_key(file_id, generation)``.
        """
        ids = sorted(set(ids))
        if not ids:
            return []
        queued: list[QueuedFile] = []
        with translate_db_errors(self.url), self.sessions.begin() as session:
            query = select(CloudFile.id, CloudFile.extraction_generation, CloudFile.extraction_force).where(
                CloudFile.id.in_(ids)
            )
            if only_pending:
                query = query.where(CloudFile.extraction_status.is_(None))
            else:
                query = query.where(
                    CloudFile.extraction_status.is_(None)
                    | CloudFile.extraction_status["status"]
                    .as_string()
                    .not_in([s.value for s in ACTIVE_STATUSES])
                )
            rows = session.execute(query.with_for_update()).all()
            for file_id, generation, force in rows:
                condition = CloudFile.id == file_id
                if only_pending:
                    condition = condition & CloudFile.extraction_status.is_(None)
                key: dict[str, Any] = {} if run_key is None else {"run_key": run_key(file_id, generation)}
                if force:  # ``retry --force``: this request extracts, whatever the duplicates
                    key["forced"] = True
                result = session.execute(
                    update(CloudFile)
                    .where(condition)
                    .values(
                        extraction_status=new_status(
                            FileStatus.QUEUED, **key, generation=generation, **extra
                        ),
                        extraction_generation=generation + 1,
                        extraction_force=False,
                    )
                )
                if cast(CursorResult[Any], result).rowcount:
                    queued.append(QueuedFile(id=file_id, generation=generation))
        return queued

    def stale_queued(self, older_than: datetime, limit: int) -> list[QueuedFile]:
        """Files queued by the sensor before ``older_than`` that no run has picked up yet.

        Files queued by ``backfill`` are not the sensor's: the backfill daemon runs them batch by
        batch, and in a long backfill the later batches wait far longer than the grace period
        (re-requesting them would add one run per file next to the backfill's). The filter runs in
        SQL with a LIMIT, so a tick does not read every queued row of a large backfill.
        """
        status = CloudFile.extraction_status
        query = (
            select(CloudFile.id, status)
            .where(
                status["status"].as_string() == FileStatus.QUEUED.value,
                status["run_key"].as_string().is_not(None),
                status["updated_at"].as_string() < older_than.isoformat(),
                or_(status["backfill"].as_boolean().is_(None), status["backfill"].as_boolean().is_(False)),
            )
            .order_by(CloudFile.id)
            .limit(limit)
        )
        with translate_db_errors(self.url), self.sessions() as session:
            return [
                QueuedFile(id=file_id, generation=int(document.get("generation", 0)))
                for file_id, document in session.execute(query)
            ]

    def touch_queued(self, ids: Iterable[int]) -> None:
        """Refresh ``updated_at`` of queued files (they were just requested again)."""
        now = utcnow().isoformat()
        with translate_db_errors(self.url), self.sessions.begin() as session:
            for row in session.scalars(select(CloudFile).where(CloudFile.id.in_(list(ids)))):
                status = dict(row.extraction_status or {})
                if status_of_document(status) == FileStatus.QUEUED:
                    status["updated_at"] = now
                    row.extraction_status = status

    def hand_to_backfill(self, ids: Iterable[int], backfill_id: str) -> list[QueuedFile]:
        """Queued files become a backfill's (``backfill``, ``backfill_id`` in their status), before
        that backfill is stored: the sensor's stale check leaves them to it, and looks for them again
        if the backfill never came to be or ended without them (``stale_backfill_ids``).

        Files no longer queued (cancelled or deleted meanwhile) are left alone and not returned."""
        handed: list[QueuedFile] = []
        with translate_db_errors(self.url), self.sessions.begin() as session:
            for row in locked_files(session, ids):
                status = dict(row.extraction_status or {})
                if status_of_document(status) != FileStatus.QUEUED:
                    continue
                status.update(backfill=True, backfill_id=backfill_id)
                row.extraction_status = status
                handed.append(QueuedFile(id=row.id, generation=int(status.get("generation", 0))))
        return handed

    def stale_backfill_ids(self, older_than: datetime, limit: int = 100) -> list[str]:
        """Backfills (their ids) that files queued for them before ``older_than`` still wait for."""
        status = CloudFile.extraction_status
        backfill_id = status["backfill_id"].as_string()
        query = (
            select(backfill_id)
            .where(
                status["status"].as_string() == FileStatus.QUEUED.value,
                backfill_id.is_not(None),
                status["updated_at"].as_string() < older_than.isoformat(),
            )
            .distinct()
            .limit(limit)
        )
        with translate_db_errors(self.url), self.sessions() as session:
            return sorted(str(value) for value in session.scalars(query))

    def release_from_backfill(self, backfill_id: str, limit: int) -> list[QueuedFile]:
        """Up to ``limit`` files still queued for a backfill that will never run them become the
        sensor's again (``backfill`` off, ``updated_at`` now); returns them with their generation."""
        query = (
            select(CloudFile)
            .where(*_queued_for_backfill(backfill_id))
            .order_by(CloudFile.id)
            .limit(limit)
            .with_for_update()
        )
        released: list[QueuedFile] = []
        now = utcnow().isoformat()
        with translate_db_errors(self.url), self.sessions.begin() as session:
            for row in session.scalars(query):
                document = dict(row.extraction_status or {})
                document.pop("backfill_id", None)
                document.update(backfill=False, updated_at=now)
                row.extraction_status = document
                released.append(QueuedFile(id=row.id, generation=int(document.get("generation", 0))))
        return released

    def queued_for_backfill(self, backfill_id: str, limit: int) -> list[int]:
        """Ids of files still queued for ``backfill_id`` (at most ``limit``)."""
        query = (
            select(CloudFile.id).where(*_queued_for_backfill(backfill_id)).order_by(CloudFile.id).limit(limit)
        )
        with translate_db_errors(self.url), self.sessions() as session:
            return list(session.scalars(query))

    def reset_to_pending(
        self,
        ids: Iterable[int],
        *,
        statuses: Sequence[str] = (FileStatus.FAILED, FileStatus.CANCELLED),
        force: bool = False,
    ) -> list[int]:
        """``retry``: files in one of ``statuses`` become pending again (the sensor queues them anew).

        ``force`` (``retry --force``): their next extraction is never deduplicated."""
        changed: list[int] = []
        with translate_db_errors(self.url), self.sessions.begin() as session:
            rows = session.scalars(select(CloudFile).where(CloudFile.id.in_(list(ids))).with_for_update())
            for row in rows:
                if row.extraction_status and status_of_document(row.extraction_status) in statuses:
                    changed.append(row.id)
            if changed:
                # SQL NULL (a Python None would be stored as the JSON value null on a JSON column).
                session.execute(
                    update(CloudFile)
                    .where(CloudFile.id.in_(changed))
                    .values(extraction_status=null(), extraction_force=force)
                )
        return sorted(changed)
