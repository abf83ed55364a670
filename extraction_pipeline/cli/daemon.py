"""``daemon``: the pipeline's Dagster daemon (``dagster-daemon run``, backfills picked up within seconds)."""

from __future__ import annotations

import inspect
import os
import sys

import click

from extraction_pipeline.cli.common import fail, load_settings
from extraction_pipeline.cli.instance import announce_fallback, resolve_dagster_home


@click.command(
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
    add_help_option=False,
)
@click.argument("dagster_daemon_args", nargs=-1, type=click.UNPROCESSED)
def daemon(dagster_daemon_args: tuple[str, ...]) -> None:
    """Run Dagster's daemon: sensors, run queue, backfills, run monitoring and run retries.

    It is dagster-daemon run (every argument goes to it, e.g. -w workspace.yaml; --help lists
    them) whose backfill daemon looks for new backfills every EXTRACTION_BACKFILL_POLL_S seconds
    (default 2) instead of Dagster's fixed 30, and whose sensor daemon wakes every
    EXTRACTION_SENSOR_POLL_S seconds (default 1) instead of Dagster's fixed 5. Run exactly one per Dagster instance: DAGSTER_HOME,
    else the quick start's $EXTRACTION_HOME/dagster.
    """
    from extraction_pipeline.orchestration.daemon import check_dagster_daemon_args, run_dagster_daemon

    if "--help" in dagster_daemon_args or "-h" in dagster_daemon_args:
        click.echo(inspect.cleandoc(click.get_current_context().command.help or ""))
        click.echo("\nThe options of `dagster-daemon run`:\n")
        sys.exit(run_dagster_daemon(["--help"], poll_s=30.0))
    settings = load_settings()
    home = resolve_dagster_home(settings)  # DAGSTER_HOME, else the quick start's instance, else exit 2
    announce_fallback(home)
    os.environ["DAGSTER_HOME"] = str(home)  # what Dagster's daemon (and its subprocesses) read
    try:
        check_dagster_daemon_args(dagster_daemon_args)
    except click.ClickException as exc:  # a bad option: one line, exit 2, before the doctor's checks
        fail(exc.format_message())
    if settings.doctor_at_start:
        from extraction_pipeline.cli.doctor import refuse_unless_healthy

        refuse_unless_healthy(settings, "the daemon")  # a broken format library: refuse, exit 1
    try:
        code = run_dagster_daemon(dagster_daemon_args, settings.backfill_poll_s, settings.sensor_poll_s)
    except click.ClickException as exc:  # a bad option or workspace file: one line, exit 2
        fail(exc.format_message())
    sys.exit(code)


COMMANDS: list[click.Command] = [daemon]
