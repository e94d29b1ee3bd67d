"""``python -m mlflow_sysmetrics``: the same as the ``mlflow-sysmetrics`` command."""

from .cli import script

script()
