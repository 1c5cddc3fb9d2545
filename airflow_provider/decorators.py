"""``@task.executor``: run a typed Python function on any executor.

::

    from airflow.sdk import task

    @task.executor(executor_id="local", cache=Cache(version="1"))
    def add(x: int, y: int = 1) -> int:
        return x + y

The annotations become the task's typed interface (checked at DAG parse time), the return value
lands in XCom like any ``@task``'s (a ``NamedTuple``/``TypedDict`` return gives one XCom per field),
and the function runs on the executor through :mod:`executors.runtime.runner`.

What must hold on the backend: the function's *source* travels with the task (as with
``@task.docker``), so it must be self-contained: import what it needs inside its body; the
backend's Python must have those packages and this provider's ``executors`` package installed.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk.bases.decorator import DecoratedOperator, task_decorator_factory

from airflow_provider.operators import ExecutorOperator
from airflow_provider.publishing import ReturnShape
from executors import Cache
from executors.data.function_task import SINGLE_OUTPUT, function_template

if TYPE_CHECKING:
    from airflow.sdk.bases.decorator import TaskDecorator


def _context_keys() -> tuple[str, ...]:
    from airflow.sdk.definitions.context import KNOWN_CONTEXT_KEYS

    return tuple(KNOWN_CONTEXT_KEYS)


class ExecutorDecoratedOperator(DecoratedOperator, ExecutorOperator):
    """The operator behind ``@task.executor``: an :class:`ExecutorOperator` built from a function."""

    custom_operator_name = "@task.executor"
    template_fields: Sequence[str] = (*DecoratedOperator.template_fields, *ExecutorOperator.template_fields)
    template_fields_renderers = {
        **DecoratedOperator.template_fields_renderers,
        **ExecutorOperator.template_fields_renderers,
    }

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        task_id: str,
        op_args: Collection[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        cache: bool | Cache = False,
        retry_on: Sequence[type[BaseException] | str] = (),
        secrets: Sequence[tuple[str, str] | Mapping[str, str]] = (),
        **kwargs: Any,
    ) -> None:
        template = function_template(
            python_callable,
            name=f"{kwargs['dag'].dag_id}.{task_id}" if kwargs.get("dag") is not None else task_id,
            reserved_inputs=_context_keys(),
            recoverable_exceptions=retry_on,
            cache=Cache.of(cache),
            secrets=secrets,
        )
        self._single_output = set(template.interface.outputs.variables) == {SINGLE_OUTPUT}
        # One output: the return value is the value itself (as with @task); several (NamedTuple,
        # TypedDict): the dict of them, each also pushed under its own name.
        kwargs["multiple_outputs"] = not self._single_output
        super().__init__(
            python_callable=python_callable,
            task_id=task_id,
            op_args=op_args,
            op_kwargs=op_kwargs,
            task_template=template,
            **kwargs,
        )

    def _inputs(self) -> dict[str, Any]:
        """The function's arguments by parameter name, defaults applied (rendered in a worker,
        as written in the DAG file when the triggerer starts the task)."""
        import inspect

        bound = inspect.signature(self.python_callable).bind(*self.op_args, **self.op_kwargs)
        bound.apply_defaults()
        return dict(bound.arguments)

    def _returns(self) -> ReturnShape:
        # A plain function's return value is the value itself, as with @task.
        if self._single_output:
            return ReturnShape(single=SINGLE_OUTPUT, multiple_outputs=False)
        return super()._returns()


def executor_task(
    python_callable: Callable[..., Any] | None = None,
    multiple_outputs: bool | None = None,
    **kwargs: Any,
) -> TaskDecorator:
    """``@task.executor(executor_id="local", cache=Cache(version="1"), retry_on=(ConnectionError,),
    retries=..., requests={...}, ...)``.

    Every :class:`ExecutorOperator` argument is accepted. ``retry_on`` lists exception classes (or
    their names) that make a failure retryable, besides :class:`executors.runtime.task_io.RecoverableError`;
    any other exception fails the task without retry, its traceback in the task log.
    """
    return task_decorator_factory(
        python_callable=python_callable,
        multiple_outputs=multiple_outputs,
        decorated_operator_class=ExecutorDecoratedOperator,
        **kwargs,
    )
