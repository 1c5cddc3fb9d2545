"""TaskTemplateField: the task template as a template field that Jinja never touches.

Airflow renders every template field before ``execute``. A task template must not be rendered:
its command uses Flyte's ``{{.input}}`` placeholders (invalid Jinja), and a DAG with
``render_template_as_native_obj=True`` would even turn a ``"3"`` argument into the int 3. Yet it
should be a template field, so the UI's "Rendered Template" view shows it.

Airflow's renderer leaves objects that are not strings or built-in collections alone (it only
looks for their own ``template_fields``), and shows them in the UI through ``str()``. So the
template is held in this small wrapper, whose ``str`` is its indented JSON.
"""

from __future__ import annotations

import json
from typing import Any


class TaskTemplateField:
    """Holds the JSON form of a ``TaskTemplate``; opaque to Jinja, readable in the UI."""

    __slots__ = ("value",)
    template_fields: tuple[str, ...] = ()  # nothing inside is rendered

    def __init__(self, value: dict[str, Any]) -> None:
        self.value = value

    def __str__(self) -> str:
        return json.dumps(self.value, indent=2, sort_keys=True)

    def __repr__(self) -> str:
        return f"TaskTemplateField({self.value.get('id', {}).get('name', '')!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TaskTemplateField) and other.value == self.value

    def __hash__(self) -> int:
        return hash(json.dumps(self.value, sort_keys=True))

    def __deepcopy__(self, memo: dict[int, Any]) -> TaskTemplateField:
        import copy

        return TaskTemplateField(copy.deepcopy(self.value, memo))
