"""Every use of a Dagster name that is not public API, in one place (Dagster 1.13.27, pinned).

The rest of the pipeline uses ``import dagster as dg`` only. What it needs and Dagster does not
export is here, each with why no public name serves; ``extraction_pipeline_tests/orchestration/
test_dagster_internals.py`` imports and checks every one of them, so a Dagster upgrade that moves,
renames or reshapes one fails that test with a message naming it (rather than a command, the
daemon or a sensor failing at run time).

Private names used, and why:

- ``dagster._core.execution.backfill.PartitionBackfill`` (its classmethod ``from_asset_partitions``)
  and ``dagster._core.utils.make_new_backfill_id``, with ``DagsterInstance.add_backfill`` and
  ``Definitions.resolve_asset_graph`` (not marked public): ``extraction-pipeline backfill`` creates an
  asset partition backfill for the daemon to run, just like the UI's "Launch backfill". Dagster's
  public ways to do that all go elsewhere: ``DagsterGraphQLClient`` has no backfill method and needs
  a running webserver (``launchPartitionBackfill`` is GraphQL only); ``dagster job backfill``
  creates a *job* backfill whose runs the CLI submits itself, one per partition, ignoring the
  asset's ``BackfillPolicy``; ``DagsterInstance`` has no public ``submit_backfill``.
- ``dagster._daemon.daemon.execute_backfill_iteration_loop``: the backfill daemon's loop, looked up
  as a global of that module by ``BackfillDaemon.core_loop``; ``orchestration/daemon.py`` replaces
  it to shorten Dagster's fixed 30 s pause. Dagster has no setting for that pause.
- ``dagster._daemon.cli.run_command``: the click command behind ``dagster-daemon run``, run in this
  process (after the loop is replaced). The ``dagster-daemon`` executable would run in another
  process, where the replacement does not exist.
- System run/event tag keys, mirrored as strings (Dagster exports no constant for them; its own
  are in ``dagster._core.storage.tags`` and ``dagster._core.definitions.data_version``):
  ``PARTITION_NAME_TAG`` ("dagster/partition"), ``ASSET_PARTITION_RANGE_START_TAG``,
  ``ASSET_PARTITION_RANGE_END_TAG``, ``WILL_RETRY_TAG``, ``BACKFILL_ID_TAG`` and
  ``CODE_VERSION_TAG``. They are kept as literals, not imported, so that loading the code location
  or a CLI command does not depend on where Dagster keeps them; the test checks each value.

Public instead (no adapter needed): ``dg.DagsterExecutionInterruptedError`` (was
``dagster._core.errors``).

Nothing here imports Dagster at module level: the CLI imports this module for the tag names.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

# --- System tag keys (values of dagster._core.storage.tags / data_version constants) ------------

# A run of one partition (dagster._core.storage.tags.PARTITION_NAME_TAG).
PARTITION_TAG = "dagster/partition"
# A run of a partition range, e.g. a batch of a backfill (ASSET_PARTITION_RANGE_START_TAG / _END_TAG).
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
# A failed run that run_retries is going to retry (dagster._core.storage.tags.WILL_RETRY_TAG).
WILL_RETRY_TAG = "dagster/will_retry"
# The runs of a backfill (dagster._core.storage.tags.BACKFILL_ID_TAG).
BACKFILL_ID_TAG = "dagster/backfill"
# A materialization's code version (dagster._core.definitions.data_version.CODE_VERSION_TAG).
CODE_VERSION_TAG = "dagster/code_version"

# --- Asset partition backfills -------------------------------------------------------------------


def add_asset_partition_backfill(
    instance: Any,
    defs: Any,
    asset_keys: Sequence[Any],
    partition_keys: Sequence[str],
    *,
    title: str | None,
    description: str | None,
) -> str:
    """Create an asset backfill of ``partition_keys`` of ``asset_keys`` for the daemon; its id.

    What the UI's "Launch backfill" stores (a REQUESTED ``PartitionBackfill`` with asset backfill
    data, no tags, no run config); the daemon then runs it under the assets' ``BackfillPolicy``.
    The partitions must exist (dynamic partitions added before).
    """
    from dagster._core.execution.backfill import PartitionBackfill
    from dagster._core.utils import make_new_backfill_id

    backfill_id = make_new_backfill_id()
    backfill = PartitionBackfill.from_asset_partitions(
        backfill_id=backfill_id,
        asset_graph=defs.resolve_asset_graph(),
        partition_names=list(partition_keys),
        asset_selection=list(asset_keys),
        backfill_timestamp=time.time(),
        tags={},
        dynamic_partitions_store=instance,
        all_partitions=False,
        title=title,
        description=description,
        run_config=None,
    )
    instance.add_backfill(backfill)
    return backfill_id


# --- The backfill daemon's loop and `dagster-daemon run` -----------------------------------------

# Where BackfillDaemon.core_loop finds its loop function (a global of this module).
BACKFILL_LOOP_MODULE = "dagster._daemon.daemon"
BACKFILL_LOOP_NAME = "execute_backfill_iteration_loop"


def _backfill_loop_module() -> ModuleType | None:
    try:
        return importlib.import_module(BACKFILL_LOOP_MODULE)
    except ImportError:
        return None


def backfill_loop() -> Callable[..., Any] | None:
    """The loop the backfill daemon of this process runs, None when this Dagster has no such loop.

    It is called as ``loop(workspace_process_context, logger, shutdown_event, *,
    threadpool_executor=..., submit_threadpool_executor=...)`` and pauses between two iterations
    with ``shutdown_event.wait(seconds)``.
    """
    module = _backfill_loop_module()
    return None if module is None else getattr(module, BACKFILL_LOOP_NAME, None)


def replace_backfill_loop(loop: Callable[..., Any]) -> bool:
    """Make this process's backfill daemon run ``loop``; False, changing nothing, without one."""
    module = _backfill_loop_module()
    if module is None or getattr(module, BACKFILL_LOOP_NAME, None) is None:
        return False
    setattr(module, BACKFILL_LOOP_NAME, loop)
    return True


def dagster_daemon_run_command() -> Any:
    """The ``click.Command`` of ``dagster-daemon run`` (its ``make_context`` and ``main``)."""
    from dagster._daemon.cli import run_command

    return run_command
