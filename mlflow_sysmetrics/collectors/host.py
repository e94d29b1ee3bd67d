"""The ``host`` collector: the host name, written only when ``MLFLOW_SYSMETRICS_INCLUDE`` asks."""

from __future__ import annotations

from .. import tags as T
from .._context import Context

# socket is imported where used: only a process that asked for sys.host needs it.


def collect(ctx: Context) -> dict[str, str]:
    """``sys.host``: the host name, written only when ``MLFLOW_SYSMETRICS_INCLUDE`` asks."""
    import socket

    name = socket.gethostname()
    return {T.HOST: name} if name else {}
