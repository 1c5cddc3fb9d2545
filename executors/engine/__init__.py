"""The engine: submitting an execution, driving it to a final phase, killing it, the registry.

Every caller (the Airflow operator and trigger, the ``run-typed-task`` CLI) goes through here.
"""
