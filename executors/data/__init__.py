"""Data: Flyte literals <-> Python values, task templates, and storage through fsspec."""
