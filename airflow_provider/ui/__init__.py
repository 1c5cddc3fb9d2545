"""The provider's pages in the Airflow UI: the Execution view of a task try and the Catalog page.

They are one FastAPI app (:mod:`airflow_provider.ui.app`) that the provider's plugin mounts in the
api-server under :data:`airflow_provider.ui.paths.PREFIX`, with two external views (a tab on the
task instance page, an entry in the Browse menu). Nothing here is imported by workers or the
triggerer except :mod:`airflow_provider.ui.paths`, which builds the view's links.
"""
