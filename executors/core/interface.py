"""The executor plugin interface (seed: flyteplugins ``go/tasks/v1/types``), in Python.

An executor runs one kind of task on one kind of backend. The engine (our Airflow operator and
trigger, or :class:`executors.engine.driver.ExecutionDriver` on its own) calls it like this::

    await executor.initialize(params)            # once per process, before anything else
    status = await executor.start_task(ctx, template, inputs)
    while not status.phase.is_final_for_execution():
        ctx = ctx.with_status(status.phase, status.phase_version, status.state)
        status = await executor.check_task_status(ctx, template)
    outputs = await executor.resolve_outputs(ctx, "o0", ...)   # after SUCCEEDED

Every method except ``get_id``/``get_properties`` is ``async`` because it runs inside Airflow's
triggerer event loop, which serves thousands of triggers: an implementation must never block it
(no ``time.sleep``, no blocking sockets or file I/O on the loop; use ``asyncio.to_thread`` or an
async client).
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from flyteidl.core import identifier_pb2, literals_pb2, tasks_pb2
from flyteidl.event import event_pb2

from executors.core.context import TaskContext
from executors.core.output import OutputChunk
from executors.core.status import TaskStatus

if TYPE_CHECKING:
    from executors.data.storage import DataStore


@dataclasses.dataclass(frozen=True)
class ExecutorProperties:
    """Optional, task-independent facts about an executor (seed: ``ExecutorProperties``).

    ``requires_finalizer``: the backend keeps resources alive that nothing else cleans up, so a
    kill must be retried until it succeeds. ``disable_node_level_caching``: the engine must not
    consult the catalog for this executor's tasks (it caches by itself).
    """

    requires_finalizer: bool = False
    disable_node_level_caching: bool = False


@runtime_checkable
class CatalogClient(Protocol):
    """The result cache (seed: ``CatalogClient``)."""

    async def get(
        self, task: tasks_pb2.TaskTemplate, inputs: literals_pb2.LiteralMap
    ) -> literals_pb2.LiteralMap | None:
        """Return the cached outputs for these inputs, or ``None`` on a miss."""
        ...

    async def put(
        self,
        task: tasks_pb2.TaskTemplate,
        execution_id: identifier_pb2.TaskExecutionIdentifier,
        inputs: literals_pb2.LiteralMap,
        outputs: literals_pb2.LiteralMap,
    ) -> None:
        """Store the outputs of a successful execution."""
        ...


@runtime_checkable
class EventRecorder(Protocol):
    """Receives one ``TaskExecutionEvent`` per phase (or phase version) change."""

    async def record_task_event(self, event: event_pb2.TaskExecutionEvent) -> None: ...


@runtime_checkable
class MetricsScope(Protocol):
    """The subset of a StatsD-like client an executor may use (Airflow's ``Stats`` fits)."""

    def incr(self, stat: str, count: int = 1, rate: float = 1) -> None: ...

    def timing(self, stat: str, dt: Any) -> None: ...

    def gauge(self, stat: str, value: float, rate: float = 1, delta: bool = False) -> None: ...


class NullMetrics:
    """A :class:`MetricsScope` that records nothing (the default when none is given)."""

    def incr(self, stat: str, count: int = 1, rate: float = 1) -> None:
        return None

    def timing(self, stat: str, dt: Any) -> None:
        return None

    def gauge(self, stat: str, value: float, rate: float = 1, delta: bool = False) -> None:
        return None


EnqueueOwner = Callable[[str], None]
"""Ask the engine to check the owner (by ``TaskContext.owner_id``) again soon, e.g. when a
backend pushes a notification. Must be cheap, thread-safe and never raise."""


@dataclasses.dataclass
class ExecutorInitializationParameters:
    """What the engine hands an executor at ``initialize`` (all optional, as in the seed)."""

    data_store: DataStore | None = None
    catalog_client: CatalogClient | None = None
    event_recorder: EventRecorder | None = None
    enqueue_owner: EnqueueOwner | None = None
    owner_kind: str = ""
    metrics_scope: MetricsScope = dataclasses.field(default_factory=NullMetrics)


class Executor(abc.ABC):
    """A task executor (seed: ``Executor``). Subclass it and register it under an entry point.

    Contract for implementations:

    * ``__init__`` is cheap and does no I/O; it takes the executor's configuration as keyword
      arguments (strings, numbers, booleans: they may come from an Airflow config file).
      Heavy set-up belongs in :meth:`initialize`.
    * ``start_task`` must be idempotent per ``task_ctx.generated_name``: a second call for the
      same name (after a crash, a restart, a retry of the call) re-attaches to the execution it
      started and never launches a second one.
    * ``check_task_status`` must not change the execution; it may be called from a different
      process than ``start_task`` (another triggerer), so any state it needs lives in the custom
      state it returned or in the backend, never only in memory.
    * ``kill_task`` must be idempotent: killing a finished, killed or unknown execution succeeds.
      The engine never calls it after it saw a terminal phase.
    * Transient trouble reaching the backend is reported as ``UNKNOWN`` (the engine keeps
      asking), not as a failure; an exception escaping a method is treated the same way.
    """

    id: ClassVar[str]
    """The registry id (``local``, ``ray``, ...). Lowercase, unique."""

    def get_id(self) -> str:
        return self.id

    def get_properties(self) -> ExecutorProperties:
        return ExecutorProperties()

    @abc.abstractmethod
    async def initialize(self, params: ExecutorInitializationParameters) -> None:
        """Prepare the executor for use in this process; called once before any other method."""

    @abc.abstractmethod
    async def start_task(
        self, task_ctx: TaskContext, task: tasks_pb2.TaskTemplate, inputs: literals_pb2.LiteralMap
    ) -> TaskStatus:
        """Launch the execution (idempotently) and report its first status."""

    @abc.abstractmethod
    async def check_task_status(self, task_ctx: TaskContext, task: tasks_pb2.TaskTemplate) -> TaskStatus:
        """Report the execution's current status; ``task_ctx`` carries the last known one."""

    @abc.abstractmethod
    async def kill_task(self, task_ctx: TaskContext, reason: str) -> None:
        """Stop the execution and release what it holds. Idempotent."""

    # -- optional extras (not in the seed): defaults do nothing --------------------------------

    def get_run_url(self, task_ctx: TaskContext) -> str | None:
        """A link to the execution in the backend's own UI (shown as Airflow's "Executor run")."""
        return None

    async def read_logs(self, task_ctx: TaskContext, max_bytes: int = 64_000) -> str | None:
        """The last ``max_bytes`` of the execution's output, copied into the Airflow task log at
        the end. ``None`` when the backend keeps no logs we can read. Best effort: the engine
        ignores (and logs) an exception raised here."""
        return None

    async def read_output(
        self,
        task_ctx: TaskContext,
        cursor: Mapping[str, Any] | None,
        *,
        max_bytes: int = 64_000,
        final: bool = False,
    ) -> OutputChunk | None:
        """The lines the execution printed since ``cursor`` (``None``: from the start), about
        ``max_bytes`` at most, and the cursor to pass next (contract: :mod:`executors.core.output`).
        ``final``: the execution is over, so a last line without a newline is returned too.

        The engine calls it while the execution runs, every ``PollPolicy.output_interval`` s, and
        once more at the end, to copy the output into the caller's log as it comes; it must be
        cheap when nothing was printed. ``None``: this backend cannot read output incrementally
        (the engine then copies :meth:`read_logs` once, at the end). Best effort: the engine logs
        an exception raised here and goes on.
        """
        return None

    async def close(self) -> None:
        """Release what ``initialize`` acquired (clients, connections). Called once, when the
        engine is done with this instance; the default does nothing."""
        return None

    @abc.abstractmethod
    async def resolve_outputs(
        self, task_ctx: TaskContext, *output_variables: str
    ) -> dict[str, literals_pb2.Literal]:
        """Return the named output variables of a succeeded execution.

        Most executors delegate to :class:`executors.backends.outputs.OutputsResolver`.
        """
