"""The package's logger, with :mod:`logging` imported when something is first logged.

Importing ``logging`` costs milliseconds (it brings ``traceback``, ``string`` and
``weakref`` along). MLflow imports it anyway, but a bare ``collect()`` on a GPU node does
not have to, and a collection that goes well logs nothing here.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    import logging

NAME = "mlflow_sysmetrics"


def logger() -> logging.Logger:
    """The ``mlflow_sysmetrics`` logger."""
    import logging

    return logging.getLogger(NAME)
