"""Turning plain input values into what a function task's annotations ask for (runner side).

The literals of :mod:`executors.data.literals` read back as plain values: an enum as its value, a
dataclass or pydantic model as a ``dict``, a ``date`` as the ``datetime`` of its midnight. The
function annotated ``Color``, ``Shape`` or ``date``, so the runner converts each input along the
descriptors :mod:`executors.data.function_task` recorded in ``TaskTemplate.custom``:

* an enum becomes the *member* (looked up by value, or by the value's string: Flyte's enum values are
  strings, so an int-valued Enum's ``1`` arrives as ``"1"``);
* a record becomes an *instance*, its fields converted the same way, recursively;
* a structured dataset (its reference ``{"uri", "format", "columns"}``) declared as a
  ``pandas.DataFrame`` or ``pyarrow.Table`` is read into one (:mod:`executors.data.dataframes`);
* a blob declared as a ``File`` / ``Directory`` becomes one: a lazy reference to its URI
  (:mod:`executors.data.files`);
* ``date`` / ``datetime`` / ``timedelta`` become those types (inside a record they are ISO strings and
  seconds); a value already of the type is kept.

Classes come from their module when it imports here and still matches what was recorded (same
members, same field names); otherwise a stand-in is made with the same name and members or fields
(no methods, no validators: the class itself lives in the DAG file, which never runs on the
backend). Either way the class is also given to the function under its name, so its body may write
``Color.RED`` or ``Point(1, 2)``.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import importlib
import json
import typing
from collections.abc import Callable, Mapping
from typing import Any

from executors.data.files import Directory, File

__all__ = ["prepare_conversions"]

Converter = Callable[[Any], Any]


def _import(spec: Mapping[str, Any]) -> Any:
    """The recorded class itself, if the runner may import it and its module imports here."""
    module_name, qualname = str(spec.get("module", "")), str(spec.get("qualname", ""))
    if not spec.get("importable") or not module_name or module_name == "__main__" or "<" in qualname:
        return None
    try:
        found: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            found = getattr(found, part)
    except Exception:  # not installed here, or no longer has it
        return None
    return found


# -- enums -----------------------------------------------------------------------------------------


def _recorded_members(spec: Mapping[str, Any]) -> list[tuple[str, Any]]:
    as_int = spec.get("value_kind") == "int"
    return [(str(name), int(value) if as_int else value) for name, value in spec["members"]]


def _enum_class(spec: Mapping[str, Any], module: str) -> type[enum.Enum]:
    members = _recorded_members(spec)
    found = _import(spec)
    is_enum = isinstance(found, type) and issubclass(found, enum.Enum)
    if is_enum and [(member.name, member.value) for member in found] == members:
        return typing.cast(type[enum.Enum], found)
    stand_in: Any = enum.Enum(str(spec["name"]), members, module=module)  # type: ignore[misc]
    return typing.cast(type[enum.Enum], stand_in)


def _enum_converter(cls: type[enum.Enum]) -> Converter:
    by_text = {str(member.value): member for member in cls}

    def convert(value: Any) -> Any:
        if value is None or isinstance(value, cls):
            return value
        try:
            return cls(value)
        except ValueError:
            if str(value) in by_text:
                return by_text[str(value)]
            raise

    return convert


# -- records ---------------------------------------------------------------------------------------


def _record_class(spec: Mapping[str, Any], module: str, converter: Callable[[Any], Converter]) -> type:
    names = [str(item["name"]) for item in spec["fields"]]
    found = _import(spec)
    if isinstance(found, type):
        if dataclasses.is_dataclass(found) and [f.name for f in dataclasses.fields(found)] == names:
            return found
        fields = getattr(found, "model_fields", None)
        if isinstance(fields, Mapping) and list(fields) == names:
            return found
    return _stand_in_record(spec, module, converter)


def _stand_in_record(spec: Mapping[str, Any], module: str, converter: Callable[[Any], Converter]) -> type:
    """A dataclass with the recorded name and fields; ``converter(descriptor)`` turns a default's
    plain form back into its type (a ``timedelta`` default was recorded as seconds)."""

    def field_of(item: Mapping[str, Any]) -> Any:
        if not item.get("has_default"):
            return dataclasses.field()
        text = str(item.get("default_json") or "null")
        descriptor = item.get("convert")

        def default() -> Any:
            # A fresh copy per instance, as a default_factory gives (a list must not be shared).
            value = json.loads(text)
            return converter(descriptor)(value) if descriptor else value

        return dataclasses.field(default_factory=default)

    fields = [(str(item["name"]), Any, field_of(item)) for item in spec["fields"]]
    try:
        stand_in = dataclasses.make_dataclass(str(spec["name"]), fields)
    except TypeError:  # a defaulted field before a required one: the class was keyword-only
        stand_in = dataclasses.make_dataclass(str(spec["name"]), fields, kw_only=True)
    stand_in.__module__ = module
    return stand_in


class _Conversions:
    """The classes a template's annotations name and the converters built from its descriptors."""

    def __init__(self, custom: Mapping[str, Any], module: str) -> None:
        self._enum_specs = dict(custom.get("enum_types") or {})
        self._record_specs = dict(custom.get("record_types") or {})
        self.enums = {key: _enum_class(spec, module) for key, spec in self._enum_specs.items()}
        self._record_converters: dict[str, Converter] = {}
        self.records = {
            key: _record_class(spec, module, self.converter) for key, spec in self._record_specs.items()
        }

    def named_classes(self) -> dict[str, type]:
        """Each class by the name the DAG author gave it."""
        found: dict[str, type] = {}
        for key, cls in self.enums.items():
            found.setdefault(str(self._enum_specs[key]["name"]), cls)
        for key, record in self.records.items():
            found.setdefault(str(self._record_specs[key]["name"]), record)
        return found

    def converter(self, descriptor: Mapping[str, Any]) -> Converter:
        if "enum" in descriptor:
            return _enum_converter(self.enums[descriptor["enum"]])
        if "record" in descriptor:
            return self._record_converter(str(descriptor["record"]))
        if "dataframe" in descriptor:
            return _dataframe_reader(str(descriptor["dataframe"]), list(descriptor.get("columns") or []))
        if "file" in descriptor or "directory" in descriptor:
            kind = File if "file" in descriptor else Directory
            return lambda value: value if value is None or isinstance(value, kind) else kind(value)
        if "date" in descriptor:
            return _to_date
        if "datetime" in descriptor:
            return _to_datetime
        if "timedelta" in descriptor:
            return _to_timedelta
        if "list" in descriptor:
            element = self.converter(descriptor["list"])
            return lambda value: value if value is None else [element(item) for item in value]
        if "dict" in descriptor:
            entry = self.converter(descriptor["dict"])
            return lambda value: value if value is None else {k: entry(v) for k, v in value.items()}
        return self._union([self.converter(v) for v in descriptor["union"] if v])

    @staticmethod
    def _union(variants: list[Converter]) -> Converter:
        # The first variant (needing a conversion) that takes the value, else the value as it is.
        def union(value: Any) -> Any:
            for variant in variants:
                try:
                    return variant(value)
                except (ValueError, TypeError, AttributeError, KeyError):
                    continue
            return value

        return union

    def _record_converter(self, key: str) -> Converter:
        if key in self._record_converters:
            return self._record_converters[key]
        cls, spec = self.records[key], self._record_specs[key]
        if spec.get("kind") == "pydantic" and callable(getattr(cls, "model_validate", None)):
            # The model itself validates and converts its own fields (nested models, dates, enums).
            def validate(value: Any) -> Any:
                return value if value is None or isinstance(value, cls) else cls.model_validate(value)  # type: ignore[attr-defined]

            self._record_converters[key] = validate
            return validate
        fields: dict[str, Converter | None] = {}

        def build(value: Any) -> Any:
            if value is None or isinstance(value, cls):
                return value
            kwargs = {
                name: item if (convert := fields.get(name)) is None else convert(item)
                for name, item in value.items()
            }
            return cls(**kwargs)

        # Registered before its fields are built: a field may name this very class.
        self._record_converters[key] = build
        for item in spec["fields"]:
            descriptor = item.get("convert")
            fields[str(item["name"])] = self.converter(descriptor) if descriptor else None
        return build


def _dataframe_reader(kind: str, columns: list[str]) -> Converter:
    # Imported here: only a task with a DataFrame input needs pandas / pyarrow on the backend.
    from executors.data.dataframes import read_dataframe

    def read(value: Any) -> Any:
        if not isinstance(value, Mapping):  # already a DataFrame, or None
            return value
        return read_dataframe(value, kind, path="input", columns=columns)

    return read


def _to_date(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, str):
        return datetime.datetime.fromisoformat(value).date()
    return value


def _to_datetime(value: Any) -> Any:
    return datetime.datetime.fromisoformat(value) if isinstance(value, str) else value


def _to_timedelta(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.timedelta(seconds=value)
    return value


def prepare_conversions(namespace: dict[str, Any], custom: Mapping[str, Any]) -> dict[str, Converter]:
    """Give the function the classes its annotations name (in ``namespace``, by their names) and
    return the converter of every input that needs one (templates written before records existed
    recorded only enums, under ``input_enums``)."""
    conversions = _Conversions(custom, str(namespace["__name__"]))
    for name, cls in conversions.named_classes().items():
        namespace.setdefault(name, cls)
    # The function may return File("out.csv") without importing it (the DAG file's import is not here).
    namespace.setdefault("File", File)
    namespace.setdefault("Directory", Directory)
    descriptors = dict(custom.get("input_conversions") or custom.get("input_enums") or {})
    return {name: conversions.converter(descriptor) for name, descriptor in descriptors.items()}
