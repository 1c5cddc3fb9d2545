"""Where flytekit looks for a task's secret (``TaskTemplate.security_context.secrets``).

flytekit's ``SecretsManager`` reads a secret from the environment variable
``_FSEC_<GROUP>[_<GROUP_VERSION>]_<KEY>`` (upper case), else from the file
``<secrets dir>/<group>[/<group_version>]/<key>`` (lower case; the dir is ``/etc/secrets`` unless
``FLYTE_SECRETS_DEFAULT_DIR`` says otherwise). Executors deliver secrets in one of those two
forms; the names are computed here, once.
"""

from __future__ import annotations

import posixpath

from flyteidl.core import security_pb2

ENV_PREFIX = "_FSEC_"
DEFAULT_SECRETS_DIR = "/etc/secrets"


def secret_env_name(secret: security_pb2.Secret) -> str:
    """The environment variable flytekit reads for ``secret``."""
    parts = [secret.group, secret.group_version, secret.key]
    return ENV_PREFIX + "_".join(p for p in parts if p).upper()


def secret_file_path(secret: security_pb2.Secret, base_dir: str = DEFAULT_SECRETS_DIR) -> str:
    """The file flytekit reads for ``secret`` when its variable is not set."""
    parts = [p.lower() for p in (secret.group, secret.group_version, secret.key) if p]
    return posixpath.join(base_dir, *parts)
