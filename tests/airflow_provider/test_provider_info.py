"""Provider metadata: valid for Airflow's own schema, and discovered by the real providers manager."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import airflow
import jsonschema
import pytest

import airflow_provider
from airflow_provider import config
from airflow_provider.get_provider_info import get_provider_info

DISTRIBUTION = "airflow-provider-executors"


@pytest.fixture(scope="module")
def info() -> dict[str, Any]:
    return get_provider_info()


def test_validates_against_airflows_schema(info: dict[str, Any]) -> None:
    schema_path = Path(airflow.__file__).parent / "provider_info.schema.json"
    schema = json.loads(schema_path.read_text())
    jsonschema.validate(info, schema, cls=jsonschema.Draft7Validator)


def test_schema_validation_is_not_vacuous() -> None:
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    info = get_provider_info()
    connection = {k: v for k, v in info["connection-types"][0].items() if k != "hook-class-name"}
    with pytest.raises(jsonschema.ValidationError, match="hook-class-name"):
        jsonschema.validate(
            {**info, "connection-types": [connection]}, schema, cls=jsonschema.Draft7Validator
        )
    section = info["config"][config.SECTION]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            {**info, "config": {config.SECTION: {**section, "bogus": 1}}},
            schema,
            cls=jsonschema.Draft7Validator,
        )


def test_package_name_is_the_distribution_name(info: dict[str, Any]) -> None:
    dist = importlib.metadata.distribution(DISTRIBUTION)
    assert info["package-name"] == dist.metadata["Name"] == DISTRIBUTION
    assert info["versions"][0] == dist.version == airflow_provider.__version__
    entry_points = [ep for ep in dist.entry_points if ep.group == "apache_airflow_provider"]
    assert [ep.value for ep in entry_points] == ["airflow_provider.get_provider_info:get_provider_info"]


def test_every_declared_module_and_class_imports(info: dict[str, Any]) -> None:
    from airflow.sdk._shared.module_loading import import_string

    modules = [
        m for kind in ("operators", "triggers", "hooks") for e in info[kind] for m in e["python-modules"]
    ]
    for module in modules:
        importlib.import_module(module)
    for path in [*info["extra-links"], *(c["hook-class-name"] for c in info["connection-types"])]:
        import_string(path)
    for connection_type in info["connection-types"]:
        hook = import_string(connection_type["hook-class-name"])
        assert hook.conn_type == connection_type["connection-type"]


def test_declared_config_matches_the_options_read(info: dict[str, Any]) -> None:
    options = info["config"][config.SECTION]["options"]
    assert set(options) == set(config.OPTIONS)
    for name, option in options.items():
        assert option["default"] == config.OPTIONS[name]["default"]
        assert "{" not in option["default"]  # Airflow str.format()s provider defaults


def test_the_providers_page_links_to_the_documentation() -> None:
    """The UI's Providers page shows the distribution's ``Project-URL: Documentation``."""
    from airflow.providers_manager import ProvidersManager

    info = ProvidersManager().providers[DISTRIBUTION]
    assert info.data["documentation-url"] == "https://pypi.org/project/airflow-provider-executors/"


def test_airflow_providers_list_shows_the_provider() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__DAG_PROCESSOR__")}
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "list", "--output", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout[result.stdout.index("[") :])
    ours = [p for p in listing if p["package_name"] == DISTRIBUTION]
    assert ours == [
        {
            "package_name": DISTRIBUTION,
            "description": get_provider_info()["description"].rstrip("."),  # the CLI drops the dot
            "version": airflow_provider.__version__,
        }
    ]


def test_the_catalog_type_has_no_underscore_and_its_old_name_still_opens() -> None:
    """Airflow warns on every read of a connection type with ``_``; stored ones keep their form."""
    from airflow.providers_manager import ProvidersManager

    hooks = ProvidersManager().hooks
    for conn_type, hook in (("executor-catalog", "CatalogHook"), ("executor_catalog", "OldNameCatalogHook")):
        info = hooks[conn_type]
        assert info is not None and info.hook_class_name == f"airflow_provider.hooks.{hook}", conn_type
    from airflow_provider.hooks import CatalogHook, OldNameCatalogHook

    assert (CatalogHook.conn_type, OldNameCatalogHook.conn_type) == ("executor-catalog", "executor_catalog")
