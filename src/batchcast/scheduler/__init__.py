"""``batchcast scheduler``: the embedded scheduler process, above :class:`~batchcast.service.Service`.

What is due and in which order is decided by :mod:`batchcast.scheduling` (pure
rules, the cron plan and the ledger); this package starts, watches, kills
and settles the runs' child processes.
"""

from batchcast.scheduler.daemon import Scheduler

__all__ = ["Scheduler"]
