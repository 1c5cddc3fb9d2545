"""The seed's types: phases, statuses, the ``Executor`` interface, the task context, errors.

Nothing here does I/O; every other room builds on these.
"""
