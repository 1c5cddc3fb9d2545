"""The conformance cases, by name: the project side's view (no flytekit here).

Each name is also a key of ``CASES`` in ``corpus/flyte_tasks.py`` (the task and its Python inputs);
``flytekit_side.py serialize`` refuses to run when the two lists differ. The names are static so that
pytest can parametrize over them before flytekit has run; the expected outcome of each case comes
from flytekit's own local execution (``expected.json``), never from here.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    ray: bool = False
    """Also run on the Ray executor and, in the task image, on the container executor."""
    operator_retries: bool = True
    """Pass the template's ``metadata.retries`` to the operator as Airflow ``retries``. ``False``:
    the operator gets no ``retries`` and only the template says how often Flyte would retry."""
    upstream: str = ""
    """Its inputs come from this upstream ``@task.executor`` task (a chain), not from the case."""
    refused_before_launch: str = ""
    """A deliberate difference (docs/flyte-compatibility.md): the operator refuses the inputs before
    anything starts, with this message naming the input and field, where flytekit would raise its own
    conversion error inside the task. The end state and try count must still be Flyte's."""


CASES: dict[str, Case] = {
    c.name: c
    for c in [
        Case("int", ray=True),
        Case("float"),
        Case("str"),
        Case("bool"),
        Case("many_scalars"),
        Case("datetime"),
        Case("timedelta"),
        Case("list_int"),
        Case("dict_str_float"),
        Case("nested_list"),
        Case("dict_of_lists"),
        Case("bare_dict"),
        Case("optional_given"),
        Case("optional_none"),
        Case("union_int"),
        Case("union_str"),
        Case("enum"),
        Case("dataclass", ray=True),
        Case("nested_dataclass"),
        Case("list_dataclass"),
        Case("pydantic"),
        Case("df_out", ray=True),
        Case("df_in", ray=True),
        Case("file_out"),
        Case("file_in"),
        Case("dir_out"),
        Case("namedtuple"),
        Case("no_outputs"),
        Case("no_outputs_raises"),
        Case("user_error", ray=True),
        Case("recoverable", ray=True),
        Case("recoverable_template_retries", operator_retries=False),
        Case("bad_dataclass_input", refused_before_launch="input 'p'.x: expected integer, got str 'oops'"),
        Case("bad_event_input"),
        Case("checkpoint", ray=True),
        Case("large_str"),
        Case("large_list"),
        Case("chain_report"),
        Case("chain_summarize", upstream="make_summary_inputs"),
        Case("df_chain", upstream="df_out"),
        Case("df_csv_out"),
        Case("df_csv_chain", upstream="df_csv_out"),
        Case("date"),
        Case("dataclass_chain", upstream="reshape_shape"),
        Case("frame_chain", upstream="enrich_frame"),
        Case("arrow_chain", upstream="drop_first_row"),
        Case("file_chain", upstream="shout_file"),
        Case("dir_chain", upstream="index_parts"),
    ]
}

LOCAL_CASES = sorted(CASES)
RAY_CASES = sorted(name for name, case in CASES.items() if case.ray)
DOCKER_CASES = RAY_CASES
"""The container executor runs the same subset, each in the image flytekit serialized it with."""

LOCAL_DAG_ID = "conformance_local"
RAY_DAG_ID = "conformance_ray"
DOCKER_DAG_ID = "conformance_docker"

OUTDIR_ENV = "CONFORMANCE_OUTDIR"
"""The folder ``flytekit_side.py serialize`` wrote (``cases.json``, one folder per case)."""
SELECTED_ENV = "CONFORMANCE_SELECTED"
"""Comma-separated task ids the DAG builds (the cases and chain tasks of the selected tests); unset:
every one. Lets ``pytest -k`` run a small DAG."""
RAY_ADDRESS_ENV = "CONFORMANCE_RAY_ADDRESS"
"""The Ray dashboard address the Ray DAG's tasks use."""
DOCKER_ADDRESS_ENV = "CONFORMANCE_DOCKER_ADDRESS"
"""The container engine (Docker API socket) the container DAG's tasks use."""
CONFORMANCE_IMAGE = "localhost/executors-flytekit:conformance"
"""The image flytekit serializes the corpus with (``container.image`` of every ``task.pb``): the
container suite's test image (``harness/podman.py``: flytekit, this corpus and this project), tagged
so. The local and Ray executors run on their own environment and ignore it."""

# The chains of the local DAG (task ids besides the cases').
CHAIN_DESCRIBE = "describe_report"
"""``@task.executor`` downstream of ``chain_report`` (a flytekit Enum and dict[str, int] output)."""
CHAIN_MAKE_INPUTS = "make_summary_inputs"
"""``@task.executor`` upstream of ``chain_summarize`` (a list[int] and a bare dict)."""
CHAIN_RESHAPE = "reshape_shape"
"""``@task.executor`` between two flytekit ``t_nested_dataclass`` runs (``nested_dataclass`` into it,
its return into ``dataclass_chain``): a nested dataclass crossing both ways."""
CHAIN_ENRICH = "enrich_frame"
"""``@task.executor`` reading ``df_csv_out``'s CSV dataset as a ``pandas.DataFrame`` and returning a
new one, which flytekit's ``t_df_in`` reads (``frame_chain``)."""
CHAIN_ARROW = "drop_first_row"
"""``@task.executor`` reading ``df_out``'s parquet dataset as a ``pyarrow.Table`` and returning one,
which flytekit's ``t_df_in`` reads as a ``pandas.DataFrame`` (``arrow_chain``)."""
CHAIN_SHOUT = "shout_file"
"""``@task.executor`` reading ``file_out``'s FlyteFile as a ``File`` and returning a ``File`` it wrote,
which flytekit's ``t_file_in`` reads (``file_chain``)."""
CHAIN_INDEX = "index_parts"
"""``@task.executor`` reading ``dir_out``'s FlyteDirectory as a ``Directory`` and returning a new
``Directory``, which flytekit's ``t_dir_in`` reads (``dir_chain``)."""
RECEIVE_NONE = "receive_none"
"""Plain ``@task`` downstream of ``optional_none``'s ``o0`` (an Optional output that is None)."""
RECEIVE_VALUES = "receive_values"
"""Plain ``@task`` downstream of a float, a datetime and a timedelta output: what a task really gets."""
