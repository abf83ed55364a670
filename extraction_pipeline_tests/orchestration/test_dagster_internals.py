"""The Dagster internals the pipeline relies on (``orchestration/dagster_internals.py``) still exist.

Each test names the private Dagster name it checks: after a Dagster upgrade a failure here says
which one moved or changed, and ``dagster_internals.py`` is the one place to adapt. A last test
keeps every other module of the package free of private Dagster names and system tag literals.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path
from typing import Any

import click
import dagster as dg
import pytest

from extraction_pipeline.orchestration import dagster_internals

PACKAGE = Path(dagster_internals.__file__).resolve().parents[1]
ADAPTER = Path(dagster_internals.__file__).resolve()
UPDATE = "update extraction_pipeline/orchestration/dagster_internals.py"


def private(module: str, name: str) -> Any:
    """``module.name`` of this Dagster, or a failure naming what is gone."""
    try:
        found = importlib.import_module(module)
    except ImportError as exc:
        pytest.fail(f"Dagster {dg.__version__} has no module {module} ({exc}): {UPDATE}")
    if not hasattr(found, name):
        pytest.fail(f"Dagster {dg.__version__} has no {module}.{name}: {UPDATE}")
    return getattr(found, name)


def parameters(function: Any) -> list[str]:
    return list(inspect.signature(function).parameters)


# --- Public names (no adapter needed) -----------------------------------------------------------


def test_dagster_execution_interrupted_error_is_public() -> None:
    """assets.cancel_on_termination catches ``dg.DagsterExecutionInterruptedError``."""
    assert hasattr(dg, "DagsterExecutionInterruptedError"), (
        f"Dagster {dg.__version__} no longer exports DagsterExecutionInterruptedError: "
        "orchestration/assets.py cancel_on_termination catches it"
    )
    interrupted = private("dagster._core.errors", "DagsterExecutionInterruptedError")
    assert dg.DagsterExecutionInterruptedError is interrupted, (
        "dg.DagsterExecutionInterruptedError is not the error Dagster raises on a termination "
        "(dagster._core.errors.DagsterExecutionInterruptedError)"
    )


# --- System tag keys ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ours", "module", "name"),
    [
        ("PARTITION_TAG", "dagster._core.storage.tags", "PARTITION_NAME_TAG"),
        ("RANGE_START_TAG", "dagster._core.storage.tags", "ASSET_PARTITION_RANGE_START_TAG"),
        ("RANGE_END_TAG", "dagster._core.storage.tags", "ASSET_PARTITION_RANGE_END_TAG"),
        ("WILL_RETRY_TAG", "dagster._core.storage.tags", "WILL_RETRY_TAG"),
        ("BACKFILL_ID_TAG", "dagster._core.storage.tags", "BACKFILL_ID_TAG"),
        ("RUN_KEY_TAG", "dagster._core.storage.tags", "RUN_KEY_TAG"),
        ("CODE_VERSION_TAG", "dagster._core.definitions.data_version", "CODE_VERSION_TAG"),
    ],
)
def test_system_tag_keys_are_dagsters(ours: str, module: str, name: str) -> None:
    if hasattr(dg, name):  # Dagster made it public: use dg.<name> instead of the literal
        pytest.fail(f"Dagster {dg.__version__} exports {name} now: use dg.{name} for {ours}, {UPDATE}")
    theirs = private(module, name)
    assert getattr(dagster_internals, ours) == theirs, (
        f"Dagster {dg.__version__} names the tag {module}.{name} {theirs!r}, "
        f"dagster_internals.{ours} is {getattr(dagster_internals, ours)!r}: {UPDATE}"
    )


# --- Asset partition backfills -----------------------------------------------------------------------


def test_partition_backfill_from_asset_partitions_takes_the_arguments_passed() -> None:
    backfill_class = private("dagster._core.execution.backfill", "PartitionBackfill")
    assert hasattr(backfill_class, "from_asset_partitions"), (
        f"Dagster {dg.__version__} has no PartitionBackfill.from_asset_partitions: {UPDATE}"
    )
    expected = [
        "backfill_id",
        "asset_graph",
        "partition_names",
        "asset_selection",
        "backfill_timestamp",
        "tags",
        "dynamic_partitions_store",
        "all_partitions",
        "title",
        "description",
        "run_config",
    ]
    found = parameters(backfill_class.from_asset_partitions)
    assert found == expected, (
        f"Dagster {dg.__version__} changed PartitionBackfill.from_asset_partitions{tuple(found)}, "
        f"add_asset_partition_backfill passes {tuple(expected)}: {UPDATE}"
    )


def test_make_new_backfill_id_and_the_methods_used_exist() -> None:
    make_new_backfill_id = private("dagster._core.utils", "make_new_backfill_id")
    assert parameters(make_new_backfill_id) == [], (
        "dagster._core.utils.make_new_backfill_id() takes arguments"
    )
    assert isinstance(make_new_backfill_id(), str)
    for owner, method in (
        (dg.DagsterInstance, "add_backfill"),
        (dg.DagsterInstance, "get_backfill"),
        (dg.DagsterInstance, "update_backfill"),
        (dg.Definitions, "resolve_asset_graph"),
        (dg.RepositoryDefinition, "asset_graph"),
    ):
        assert getattr(owner, method, None) is not None, (
            f"Dagster {dg.__version__} has no {owner.__name__}.{method}: {UPDATE}"
        )
    assert parameters(dg.DagsterInstance.add_backfill)[1:] == ["partition_backfill"], (
        "DagsterInstance.add_backfill no longer takes one PartitionBackfill"
    )


def test_add_asset_partition_backfill_stores_a_requested_asset_backfill() -> None:
    """What ``extraction-pipeline backfill`` creates: the daemon runs it like one from the UI."""
    from extraction_pipeline.orchestration.partitions import cloud_files_partitions

    @dg.asset(
        name="cloud_file_metadata",
        partitions_def=cloud_files_partitions,
        backfill_policy=dg.BackfillPolicy.multi_run(2),
    )
    def cloud_file_metadata() -> None:
        return None

    defs = dg.Definitions(assets=[cloud_file_metadata])
    keys = ["1", "2", "3"]
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(cloud_files_partitions.name, keys)
        backfill_id = dagster_internals.add_asset_partition_backfill(
            instance,
            dagster_internals.asset_graph_of(defs),
            [cloud_file_metadata.key],
            keys,
            title="a title",
            description="a description",
        )
        backfill = instance.get_backfill(backfill_id)
        assert backfill is not None, "the backfill was not stored"
        assert backfill.status.value == "REQUESTED"
        assert backfill.is_asset_backfill
        assert list(backfill.asset_selection) == [cloud_file_metadata.key]
        assert backfill.title == "a title" and backfill.description == "a description"
        assert dict(backfill.tags) == {} and not backfill.run_config
        targeted = backfill.asset_backfill_data.target_subset.get_partitions_subset(cloud_file_metadata.key)
        assert sorted(targeted.get_partition_keys()) == keys
        assert len(instance.get_backfills()) == 1
        assert dagster_internals.backfill_state(instance, backfill_id) == dagster_internals.BACKFILL_ACTIVE
        # The sensor's way: the asset graph of the repository it runs in, and an id chosen before.
        repository = defs.get_repository_def()
        chosen = dagster_internals.new_backfill_id()
        assert chosen != backfill_id
        assert dagster_internals.backfill_state(instance, chosen) == dagster_internals.BACKFILL_MISSING
        second = dagster_internals.add_asset_partition_backfill(
            instance,
            dagster_internals.asset_graph_of(repository),
            [cloud_file_metadata.key],
            keys[:1],
            title=None,
            description=None,
            backfill_id=chosen,
        )
        assert second == chosen and instance.get_backfill(chosen) is not None
        for status, state in (
            ("CANCELED", dagster_internals.BACKFILL_CANCELLED),
            ("COMPLETED_SUCCESS", dagster_internals.BACKFILL_ENDED),
            ("FAILED", dagster_internals.BACKFILL_ENDED),
        ):
            stored = instance.get_backfill(chosen)
            instance.update_backfill(stored.with_status(type(stored.status)(status)))
            assert dagster_internals.backfill_state(instance, chosen) == state, status


# --- The daemon loops and `dagster-daemon run` ------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "daemon_class_name"),
    [
        (dagster_internals.BACKFILL_LOOP_NAME, "BackfillDaemon"),
        (dagster_internals.SENSOR_LOOP_NAME, "SensorDaemon"),
    ],
)
def test_each_daemon_runs_the_loop_of_its_module(name: str, daemon_class_name: str) -> None:
    """daemon.py replaces ``dagster._daemon.daemon.<loop>``; that only works while the daemon's
    ``core_loop`` looks it up there, as a global, at each start."""
    module = dagster_internals.DAEMON_LOOP_MODULE
    loop = private(module, name)
    daemon_class = private(module, daemon_class_name)
    core_loop = daemon_class.core_loop.__code__
    assert name in core_loop.co_names, (
        f"Dagster {dg.__version__}: {daemon_class_name}.core_loop no longer calls {module}.{name}, "
        f"replacing it changes nothing: {UPDATE}"
    )
    keywords = {value for const in core_loop.co_consts if isinstance(const, tuple) for value in const}
    assert "threadpool_executor" in keywords, (
        f"{daemon_class_name}.core_loop no longer passes threadpool_executor= (PacedWaits.timed wraps it)"
    )
    found = parameters(loop)
    assert found[:3] == ["workspace_process_context", "logger", "shutdown_event"], (
        f"Dagster {dg.__version__} changed {name}{tuple(found)}: daemon.py passes its paced event "
        f"as the third argument: {UPDATE}"
    )
    assert "threadpool_executor" in found
    assert "wait" in loop.__code__.co_names, (
        f"{name} no longer pauses with shutdown_event.wait(): PacedWaits has nothing to shorten"
    )
    assert dagster_internals.daemon_loop(name) is loop


@pytest.mark.parametrize("name", dagster_internals.DAEMON_LOOP_NAMES)
def test_replace_daemon_loop_swaps_the_loop_the_daemon_runs(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = importlib.import_module(dagster_internals.DAEMON_LOOP_MODULE)
    monkeypatch.setattr(module, name, getattr(module, name))  # undone afterwards

    def replacement(*args: Any, **kwargs: Any) -> Any:
        return None

    assert dagster_internals.replace_daemon_loop(name, replacement) is True
    assert getattr(module, name) is replacement
    assert dagster_internals.daemon_loop(name) is replacement
    assert dagster_internals.replace_daemon_loop("no_such_loop", replacement) is False


def test_dagster_daemon_run_command_is_a_click_command() -> None:
    run_command = private("dagster._daemon.cli", "run_command")
    assert isinstance(run_command, click.Command), (
        f"Dagster {dg.__version__}: dagster._daemon.cli.run_command is no click command: {UPDATE}"
    )
    assert dagster_internals.dagster_daemon_run_command() is run_command
    options = {opt for param in run_command.params for opt in getattr(param, "opts", [])}
    assert "--workspace" in options  # `extraction-pipeline daemon -w workspace.yaml`
    with pytest.raises(click.UsageError):
        run_command.make_context("extraction-pipeline daemon", ["--no-such-option"])


# --- One place ------------------------------------------------------------------------------------------


def private_uses(path: Path) -> list[str]:
    """Private Dagster modules a file imports or names, and system tag keys it writes as strings."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        modules: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and re.fullmatch(r"dagster\._[\w.]*|dagster/\w+", node.value)
        ):
            found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {node.value!r}")
        found += [
            f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: import {module}"
            for module in modules
            if module.startswith("dagster._")
        ]
    return found


def test_only_the_adapter_uses_dagster_internals() -> None:
    elsewhere = [
        use for path in sorted(PACKAGE.rglob("*.py")) if path != ADAPTER for use in private_uses(path)
    ]
    listing = "\n".join(elsewhere)
    assert elsewhere == [], f"private Dagster names outside orchestration/dagster_internals.py:\n{listing}"


def test_the_adapter_docstring_lists_every_private_name_it_uses() -> None:
    doc = dagster_internals.__doc__ or ""
    modules = set()
    for use in private_uses(ADAPTER):
        value = use.split(": ", 1)[1]
        if value.startswith("import "):
            modules.add(value.removeprefix("import "))
        elif value.startswith("'dagster._"):
            modules.add(value.strip("'"))
    assert modules == {
        "dagster._core.execution.backfill",
        "dagster._core.utils",
        "dagster._daemon.daemon",
        "dagster._daemon.cli",
    }, f"the adapter's private imports changed: {sorted(modules)}; list them in its docstring and here"
    for module in modules:
        assert module in doc, f"dagster_internals' docstring does not list {module}"
    for name in (
        "PartitionBackfill",
        "from_asset_partitions",
        "make_new_backfill_id",
        "add_backfill",
        "resolve_asset_graph",
        "execute_backfill_iteration_loop",
        "run_command",
    ):
        assert name in doc, f"dagster_internals' docstring does not list {name}"
