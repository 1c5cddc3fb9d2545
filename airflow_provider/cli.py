"""``airflow executors-catalog ...``: list, inspect and evict cached results.

Registered through the provider info's ``cli`` entry, so platform operators use the ``airflow``
command they already have, with Airflow's connections and configuration.
"""

from __future__ import annotations

from typing import Any


def get_cli_commands() -> list[Any]:
    from airflow.cli.cli_config import ActionCommand, Arg, GroupCommand, lazy_load_command

    conn = Arg(("--conn-id",), help="an executor-catalog connection (default: the configured catalog_url)")
    root = Arg(("--root",), help="the catalog's fsspec URL (instead of --conn-id)")
    dataset = Arg(("--dataset",), help="a dataset name, e.g. flyte_task-my_dag.my_task")
    project = Arg(("--project",), default="", help="project of the dataset (empty for Airflow-built tasks)")
    domain = Arg(("--domain",), default="", help="domain of the dataset (empty for Airflow-built tasks)")
    version = Arg(("--version",), help="one dataset version (default: all versions)")
    tag = Arg(("--tag",), help="one entry's tag (flyte_cached-...); needs --dataset and --version")
    output = Arg(("--output", "-o"), choices=("table", "json"), default="table", help="output format")
    yes = Arg(("--yes", "-y"), action="store_true", help="do not ask for confirmation")

    def command(name: str) -> Any:
        return lazy_load_command(f"airflow_provider.catalog_commands.{name}")

    return [
        GroupCommand(
            name="executors-catalog",
            help="Inspect and evict results cached by ExecutorOperator",
            subcommands=(
                ActionCommand(
                    name="list",
                    help="List cached entries (key, created at, source execution, outputs)",
                    func=command("list_entries"),
                    args=(conn, root, dataset, output),
                ),
                ActionCommand(
                    name="evict",
                    help="Evict one entry (--tag) or a whole dataset (all versions, or --version)",
                    func=command("evict"),
                    args=(conn, root, dataset, project, domain, version, tag, yes),
                ),
            ),
        )
    ]
