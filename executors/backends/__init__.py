"""The executors (local process, Ray) and what container-style executors share: command
templating, reading ``outputs.pb`` / ``error.pb``."""
