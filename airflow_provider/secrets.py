"""Secrets of a task (``TaskTemplate.security_context.secrets``) from Airflow's secrets backend.

Each ``core.Secret(group, key)`` is looked up, in this order:

1. the Airflow **connection** whose id is ``group``; ``key`` names a field: ``password``,
   ``login``, ``host``, ``schema``, ``port``, ``uri``, or a key of its ``extra``;
2. the Airflow **variable** ``<group>_<key>``.

It reaches the task as the environment variable flytekit reads, ``_FSEC_<GROUP>_<KEY>``
(``_FSEC_<GROUP>_<GROUP_VERSION>_<KEY>`` with a group version; upper case), and also as
``env_var`` when the secret names one. Values are registered with Airflow's secrets masker, are
looked up where the task is started (worker or triggerer) and never written anywhere: not to the
data dir, trigger kwargs, events or logs. A secret that is found nowhere fails the task without
retry, naming both places it looked.
"""

from __future__ import annotations

import json
from typing import Any

from flyteidl.core import tasks_pb2

from executors.core.secrets import secret_env_name

_CONNECTION_FIELDS = ("password", "login", "host", "schema", "port")


class MissingSecretError(LookupError):
    """A declared secret is neither a connection field nor a variable."""


async def _from_connection(group: str, key: str) -> str | None:
    from airflow.sdk import BaseHook

    try:
        conn = await BaseHook.aget_connection(group)
    except Exception:  # not a connection id (or no backend has it): try the variable
        return None
    if key in _CONNECTION_FIELDS:
        value = getattr(conn, key, None)
        return None if value in (None, "") else str(value)
    if key == "uri":
        return str(conn.get_uri())
    extra: dict[str, Any] = json.loads(conn.extra) if conn.extra else {}
    value = extra.get(key)
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


def _from_variable(name: str) -> str | None:
    from airflow.sdk import Variable

    try:
        value = Variable.get(name)
    except Exception:
        return None
    return None if value is None else str(value)


async def resolve_secrets(template: tasks_pb2.TaskTemplate) -> dict[str, str]:
    """Environment variables holding the template's secrets; MissingSecretError when one is missing."""
    from airflow.sdk.log import mask_secret

    env: dict[str, str] = {}
    for secret in template.security_context.secrets:
        value = await _from_connection(secret.group, secret.key)
        if value is None:
            value = _from_variable(f"{secret.group}_{secret.key}")
        if value is None:
            raise MissingSecretError(
                f"secret group={secret.group!r} key={secret.key!r}: no connection {secret.group!r} with a "
                f"{secret.key!r} field, and no variable {secret.group + '_' + secret.key!r}"
            )
        mask_secret(value)
        env[secret_env_name(secret)] = value
        if secret.env_var:
            env[secret.env_var] = value
    return env
