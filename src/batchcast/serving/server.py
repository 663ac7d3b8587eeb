"""``batchcast serve``: uvicorn on 127.0.0.1, and a watcher that swaps in a new champion without a restart.

The watcher checks the alias every ``poll`` seconds, and at once on SIGHUP.
A new target is loaded and verified beside the model being served, then
swapped in; one that fails to load is refused, logged, and the old model
keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from batchcast.serving.app import Served, Slot, create, load

log = logging.getLogger("batchcast")


def run(service, host: str = "127.0.0.1", port: int = 8080, ref: str | None = None, poll: float = 10.0) -> None:
    """Serve ``ref`` (default: the champion, else the latest training) until SIGTERM or Ctrl-C."""
    import uvicorn

    slot = Slot(load(service, ref))
    log.info("serving %s on http://%s:%d", slot.served.run_id, host, port)
    server = uvicorn.Server(uvicorn.Config(create(slot), host=host, port=port, log_level="warning",
                                           access_log=False, timeout_graceful_shutdown=30))
    asyncio.run(_serve(server, service, slot, ref, poll))


async def _serve(server, service, slot: Slot, ref: str | None, poll: float) -> None:
    wake = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, wake.set)
    watcher = asyncio.create_task(_watch(service, slot, ref, poll, wake))
    try:
        await server.serve()  # returns after SIGTERM/Ctrl-C, once in-flight requests have finished
    finally:
        watcher.cancel()


async def _watch(service, slot: Slot, ref: str | None, poll: float, wake: asyncio.Event) -> None:
    if ref is not None and "/" in ref:
        return  # a run id names one model for good: nothing to watch
    while True:
        try:
            await asyncio.wait_for(wake.wait(), timeout=poll)
        except TimeoutError:
            pass
        wake.clear()
        await asyncio.to_thread(check, service, slot, ref)


def check(service, slot: Slot, ref: str | None) -> Served | None:
    """Swap in the model ``ref`` now names, if it changed; the new model, or None."""
    try:
        target = service.model_for(ref).run_id
        if target == slot.served.run_id:
            return None
        served = load(service, ref)
    except Exception as exc:  # noqa: BLE001 - a bad new model must not stop the one serving
        log.error("model not swapped, still serving %s: %s", slot.served.run_id, exc)
        return None
    old = slot.served.run_id
    slot.swap(served)
    log.info("now serving %s (was %s)", served.run_id, old)
    return served
