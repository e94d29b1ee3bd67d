"""``python -m mlflow_sysmetrics``: the same as the ``mlflow-sysmetrics`` command."""

from .cli import main

main(prog_name="mlflow-sysmetrics")
