"""Exception types raised by the executor core.

Every error names what is wrong and where (the variable, the file, the executor id), so the
message alone is enough for a DAG author to fix the cause.
"""

from __future__ import annotations


class ExecutorsError(Exception):
    """Base class of every error raised by this package."""


class LiteralConversionError(ExecutorsError, TypeError):
    """A Python value does not fit the literal type its variable declares (or the reverse).

    ``variable`` is the path of the offending value, e.g. ``input 'xs'[3]``.
    """

    def __init__(self, variable: str, expected: str, given: str) -> None:
        self.variable = variable
        self.expected = expected
        self.given = given
        super().__init__(f"{variable}: expected {expected}, got {given}")


class InterfaceMismatchError(ExecutorsError, ValueError):
    """A set of values does not match the interface: a variable is missing or unknown."""


class TemplateRenderError(ExecutorsError, ValueError):
    """A container command could not be rendered (unknown placeholder, unknown input, ...)."""


class DataStoreError(ExecutorsError, OSError):
    """Reading or writing a data reference failed. ``reference`` names the URL."""

    def __init__(self, reference: str, message: str) -> None:
        self.reference = reference
        super().__init__(f"{reference}: {message}")


class DataNotFoundError(DataStoreError, FileNotFoundError):
    """The data reference does not exist."""

    def __init__(self, reference: str) -> None:
        super().__init__(reference, "not found")


class InputDataNotFoundError(ExecutorsError, FileNotFoundError):
    """A file, directory or dataset input names a URI where nothing is (checked before the start:
    no retry can make it appear). ``variable`` is the input (``input 'f'``, ``input 'fs'[2]``)."""

    def __init__(self, variable: str, uri: str) -> None:
        self.variable = variable
        self.uri = uri
        super().__init__(f"{variable}: nothing at {uri} (a file, directory or dataset input must exist)")


class CorruptDataError(DataStoreError):
    """The data reference exists but does not parse as the expected protobuf message."""


class OutputsError(ExecutorsError, ValueError):
    """The task's outputs cannot be resolved (``outputs.pb`` missing, or a variable missing in it)."""


class UnknownExecutorError(ExecutorsError, LookupError):
    """No executor is registered under the requested id; the message lists the known ids."""


class DuplicateExecutorError(ExecutorsError, ValueError):
    """Two executors claim the same id."""


class TaskTemplateError(ExecutorsError, ValueError):
    """A task template could not be loaded or built; the message names the file or field."""
