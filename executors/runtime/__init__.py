"""What runs *inside* the task (``python -m executors.runtime.runner``): reads ``inputs.pb``, calls
the function, writes ``outputs.pb`` or ``error.pb``. Imports nothing of the engine."""
