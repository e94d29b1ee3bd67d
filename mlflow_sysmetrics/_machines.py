"""Which processes share a machine, where an engine's "nodes" are not machines.

Spark's TorchDistributor runs torchrun once per Spark task, each task a node of its own
(``GROUP_RANK`` = the partition id): two tasks on one machine are two "nodes" with the same
hardware, and a run the job shares must get one set of facts per machine, not per task.
So the tasks agree on the machines through the store torchrun's agents already share
(``MASTER_ADDR:MASTER_PORT``, the agent's ``TCPStore``; TorchDistributor sets
``TORCHELASTIC_USE_AGENT_STORE``): local rank 0 of each task publishes its machine's key,
every process waits (bounded) for all the tasks' keys, and the machines are numbered in
the order of their lowest task. No collective is called, so nothing here can disturb the
training's own process group; a wait that runs out leaves the process placed as its
launcher said (no node index: only rank 0 writes, as node 0).

A machine is what our facts describe: one kernel boot (``boot_id``), one host name (a pod,
a container with its own name), one cgroup (a YARN container's limits are its own), and,
when a machine is replayed, its root.

Spark's executors (``mlflow_sysmetrics.spark``) are told apart by the same key.
"""

from __future__ import annotations

import hashlib
import os
import socket

from . import _log, _state
from . import settings as _settings
from ._files import Root
from .collectors.distributed import DistInfo

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    from collections.abc import Mapping

#: How long a task waits for the other tasks' machine keys before it gives up placing itself.
AGREEMENT_SECONDS = 30.0
#: Where the keys go in the agent's store (beside torch's own, which are prefixed otherwise).
STORE_PREFIX = "mlflow_sysmetrics/machines"

_placements = _state.memo()


def machine_key() -> str:
    """A short key equal for processes that see the same machine, and different otherwise."""
    live = Root("/")
    root = _settings.current().root
    parts = (
        "" if Root(root).is_live else root,
        live.read_line("/proc/sys/kernel/random/boot_id") or "",
        socket.gethostname(),
        live.read("/proc/self/cgroup") or "",
    )
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def placed_by_machine(info: DistInfo, env: Mapping[str, str] | None = None) -> DistInfo:
    """``info`` of a TorchDistributor process, its node the machine's index among the job's.

    ``node_rank`` becomes the machine's index (machines in the order of their lowest
    task), ``nodes`` the number of machines, ``local_rank`` the process's rank among the
    processes of its machine (so local rank 0 of the machine's lowest task writes for
    it). ``info`` unchanged when the tasks could not agree in time.
    """
    env = os.environ if env is None else env
    try:
        rdzv = env["PYSPARK_TORCH_DISTRIBUTOR_RDZV_ID"]
        task = int(env["GROUP_RANK"])
        tasks = int(env["GROUP_WORLD_SIZE"])
        local = int(env["LOCAL_RANK"])
        per_task = int(env.get("LOCAL_WORLD_SIZE") or 1)
    except (KeyError, ValueError):
        _log.logger().debug("TorchDistributor's task variables are not all there: machines not agreed")
        return info
    memo_key = (rdzv, task, local)
    known = _placements.get(memo_key)
    if known is None:
        try:
            known = _agree(env, rdzv, task, tasks, publish=local == 0)
        except Exception as exc:  # a store that does not answer: placed as the launcher said
            _log.logger().warning(
                "TorchDistributor task %d could not learn which tasks share its machine (%s: %s); "
                "only rank 0 writes on the shared run",
                task,
                type(exc).__name__,
                exc,
            )
            return info
        _placements[memo_key] = known
    machine, machines, earlier_tasks = known
    return info._replace(node_rank=machine, nodes=machines, local_rank=earlier_tasks * per_task + local)


def _agree(
    env: Mapping[str, str], rdzv: str, task: int, tasks: int, *, publish: bool
) -> tuple[int, int, int]:
    """(machine index, machines, tasks before this one on its machine), from the agent's store."""
    from datetime import timedelta

    from torch.distributed import TCPStore  # TorchDistributor runs torch: it is there

    wait = timedelta(seconds=AGREEMENT_SECONDS)
    store = TCPStore(env["MASTER_ADDR"], int(env["MASTER_PORT"]), is_master=False, timeout=wait)
    names = [f"{STORE_PREFIX}/{rdzv}/{index}" for index in range(tasks)]
    if publish:
        store.set(names[task], machine_key())
    store.wait(names, wait)
    keys = [store.get(name).decode() for name in names]
    order = list(dict.fromkeys(keys))  # machines in the order of their lowest task
    mine = keys[task]
    return order.index(mine), len(order), keys[:task].count(mine)
