"""The task template is a template field that Airflow's Jinja rendering never changes."""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import pytest
from airflow.sdk import DAG

from airflow_provider.operators import ExecutorOperator
from airflow_provider.template_field import TaskTemplateField
from executors.data.task_template import build_task_template, template_from_dict

CONTEXT: dict[str, Any] = {"ds": "2026-01-01", "run_id": "manual__x"}

HOSTILE_ARGS = [
    "{{.input}}",
    "{{ .inputs.my_var }}",
    "--inputs={{.input}} --out={{.outputPrefix}}/sub",
    "print(f'{{x}} is literal braces in an f-string')",
    "{% if %} is not Jinja here",
    "a {# that is no comment",
    "{% raw %}{{ x }}{% endraw %}",
    "{% endraw %}",
    "{{ ds }}",  # looks like an Airflow macro: still literal inside a task template
    "3",
    "True",
    "[1, 2]",
    "None",
    "",
]


def make_operator(*, native: bool, **kwargs: Any) -> ExecutorOperator:
    with DAG(
        dag_id="template_field_test",
        schedule=None,
        start_date=dt.datetime(2026, 1, 1),
        render_template_as_native_obj=native,
    ):
        return ExecutorOperator(task_id="t", **kwargs)


@pytest.mark.parametrize("native", [False, True], ids=["jinja", "native-jinja"])
def test_task_template_survives_rendering_exactly(native: bool) -> None:
    command = ["python", "-c", "import sys; print(sys.argv)", *HOSTILE_ARGS]
    op = make_operator(
        native=native,
        command=command,
        input_types={"when": str},
        inputs={"when": "{{ ds }}"},
        environment={"RUN": "{{ run_id }}"},
    )
    op.render_template_fields({**CONTEXT, "task": op, "dag": op.dag})  # type: ignore[arg-type]
    assert op.inputs == {"when": "2026-01-01"}  # ordinary template fields are rendered
    assert op.environment == {"RUN": "manual__x"}
    assert isinstance(op.task_template, TaskTemplateField)
    template = template_from_dict(op.task_template.value)
    assert list(template.container.command) == command
    assert template == build_task_template(command, name="template_field_test.t", inputs={"when": str})


def test_the_ui_sees_indented_json() -> None:
    op = make_operator(native=False, command=["echo", "{{.input}}"])
    shown = str(op.task_template)
    assert json.loads(shown)["container"]["command"] == ["echo", "{{.input}}"]
    assert "\n  " in shown


def test_copies_are_equal_and_independent() -> None:
    field = TaskTemplateField({"container": {"command": ["a"]}})
    clone = copy.deepcopy(field)
    assert clone == field and hash(clone) == hash(field)
    clone.value["container"]["command"].append("b")
    assert field.value["container"]["command"] == ["a"]


def test_a_path_stays_a_templated_string() -> None:
    op = make_operator(native=False, task_template="/templates/{{ ds }}/task.pb")
    op.render_template_fields({**CONTEXT, "task": op, "dag": op.dag})  # type: ignore[arg-type]
    assert op.task_template == "/templates/2026-01-01/task.pb"
