"""Every use of a Dagster name that is not public API, in one place (Dagster 1.13.27, pinned).

The rest of the pipeline uses ``import dagster as dg`` only. What it needs and Dagster does not
export is here, each with why no public name serves; ``extraction_pipeline_tests/orchestration/
test_dagster_internals.py`` imports and checks every one of them, so a Dagster upgrade that moves,
renames or reshapes one fails that test with a message naming it (rather than a command, the
daemon or a sensor failing at run time).

Private names used, and why:

- ``dagster._core.execution.backfill.PartitionBackfill`` (its classmethod ``from_asset_partitions``)
  and ``dagster._core.utils.make_new_backfill_id``, with ``DagsterInstance.add_backfill``,
  ``DagsterInstance.get_backfill`` (and the backfill's ``status`` values), ``Definitions.resolve_asset_graph``
  and ``RepositoryDefinition.asset_graph`` (not marked public): ``extraction-pipeline backfill`` and
  the upload sensor, when a burst of uploads arrives, create an asset partition backfill for the
  daemon to run, just like the UI's "Launch backfill"; the sensor checks on the backfills of files
  still queued long after (a backfill that ended or was cancelled without running them). Dagster's
  public ways to do that all go elsewhere: ``DagsterGraphQLClient`` has no backfill method and needs
  a running webserver (``launchPartitionBackfill`` is GraphQL only); ``dagster job backfill``
  creates a *job* backfill whose runs the CLI submits itself, one per partition, ignoring the
  asset's ``BackfillPolicy``; ``DagsterInstance`` has no public ``submit_backfill``; a sensor's
  ``RunRequest.for_asset_graph_subset`` is private as well (and needs a private ``AssetGraphSubset``).
- ``dagster._daemon.daemon.execute_backfill_iteration_loop`` and ``execute_sensor_iteration_loop``:
  the backfill and sensor daemons' loops, looked up as globals of that module by
  ``BackfillDaemon.core_loop`` and ``SensorDaemon.core_loop``; ``orchestration/daemon.py`` replaces
  them to shorten Dagster's fixed pauses (30 s between backfill iterations, 5 s between sensor
  iterations: ``dagster._daemon.sensor.MIN_INTERVAL_LOOP_TIME``). Dagster has no setting for either.
- ``dagster._daemon.cli.run_command``: the click command behind ``dagster-daemon run``, run in this
  process (after the loop is replaced). The ``dagster-daemon`` executable would run in another
  process, where the replacement does not exist.
- System run/event tag keys, mirrored as strings (Dagster exports no constant for them; its own
  are in ``dagster._core.storage.tags`` and ``dagster._core.definitions.data_version``):
  ``PARTITION_NAME_TAG`` ("dagster/partition"), ``RUN_KEY_TAG``, ``ASSET_PARTITION_RANGE_START_TAG``,
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
# The run key a sensor's run was requested with (dagster._core.storage.tags.RUN_KEY_TAG).
RUN_KEY_TAG = "dagster/run_key"
# A materialization's code version (dagster._core.definitions.data_version.CODE_VERSION_TAG).
CODE_VERSION_TAG = "dagster/code_version"

# --- Asset partition backfills -------------------------------------------------------------------


def new_backfill_id() -> str:
    """A backfill id as Dagster makes them (known before the backfill is stored)."""
    from dagster._core.utils import make_new_backfill_id

    return str(make_new_backfill_id())


def add_asset_partition_backfill(
    instance: Any,
    asset_graph: Any,
    asset_keys: Sequence[Any],
    partition_keys: Sequence[str],
    *,
    title: str | None,
    description: str | None,
    backfill_id: str | None = None,
) -> str:
    """Create an asset backfill of ``partition_keys`` of ``asset_keys`` for the daemon; its id.

    What the UI's "Launch backfill" stores (a REQUESTED ``PartitionBackfill`` with asset backfill
    data, no tags, no run config); the daemon then runs it under the assets' ``BackfillPolicy``.
    The partitions must exist (dynamic partitions added before). ``asset_graph``: the code
    location's (:func:`asset_graph_of`).
    """
    from dagster._core.execution.backfill import PartitionBackfill

    backfill_id = backfill_id or new_backfill_id()
    backfill = PartitionBackfill.from_asset_partitions(
        backfill_id=backfill_id,
        asset_graph=asset_graph,
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


def asset_graph_of(definitions: Any) -> Any:
    """The asset graph of ``dg.Definitions`` (``resolve_asset_graph``) or of the repository a sensor
    runs in (``context.repository_def.asset_graph``)."""
    if hasattr(definitions, "resolve_asset_graph"):
        return definitions.resolve_asset_graph()
    return definitions.asset_graph


# What a backfill has come to, for files queued for it: still to run them, or never will.
BACKFILL_ACTIVE = "active"
BACKFILL_CANCELLED = "cancelled"  # cancelled (or being cancelled) by a user
BACKFILL_ENDED = "ended"  # completed or failed: whatever it did not run, it never will
BACKFILL_MISSING = "missing"  # never stored (its creator died first) or deleted


def backfill_state(instance: Any, backfill_id: str) -> str:
    """``BACKFILL_ACTIVE``, ``_CANCELLED``, ``_ENDED`` or ``_MISSING`` (``DagsterInstance.get_backfill``
    and ``PartitionBackfill.status``, a ``BulkActionStatus``, compared by its value)."""
    backfill = instance.get_backfill(backfill_id)
    if backfill is None:
        return BACKFILL_MISSING
    status = str(getattr(backfill.status, "value", backfill.status))
    if status in ("CANCELING", "CANCELED"):
        return BACKFILL_CANCELLED
    if status in ("COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "FAILING"):
        return BACKFILL_ENDED
    return BACKFILL_ACTIVE


# --- The daemon loops and `dagster-daemon run` ---------------------------------------------------

# Where BackfillDaemon.core_loop and SensorDaemon.core_loop find their loop functions (globals).
DAEMON_LOOP_MODULE = "dagster._daemon.daemon"
BACKFILL_LOOP_NAME = "execute_backfill_iteration_loop"
SENSOR_LOOP_NAME = "execute_sensor_iteration_loop"
DAEMON_LOOP_NAMES = (BACKFILL_LOOP_NAME, SENSOR_LOOP_NAME)


def _daemon_loop_module() -> ModuleType | None:
    try:
        return importlib.import_module(DAEMON_LOOP_MODULE)
    except ImportError:
        return None


def daemon_loop(name: str) -> Callable[..., Any] | None:
    """The loop ``name`` (one of ``DAEMON_LOOP_NAMES``) the daemons of this process run; None when
    this Dagster has no such loop.

    Each is called as ``loop(workspace_process_context, logger, shutdown_event, *,
    threadpool_executor=..., submit_threadpool_executor=..., ...)`` and pauses between two
    iterations with ``shutdown_event.wait(seconds)``.
    """
    module = _daemon_loop_module()
    return None if module is None else getattr(module, name, None)


def replace_daemon_loop(name: str, loop: Callable[..., Any]) -> bool:
    """Make this process's daemon run ``loop`` in place of ``name``; False, changing nothing, without one."""
    module = _daemon_loop_module()
    if module is None or getattr(module, name, None) is None:
        return False
    setattr(module, name, loop)
    return True


def dagster_daemon_run_command() -> Any:
    """The ``click.Command`` of ``dagster-daemon run`` (its ``make_context`` and ``main``)."""
    from dagster._daemon.cli import run_command

    return run_command
