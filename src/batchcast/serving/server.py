"""``batchcast serve``: uvicorn on 127.0.0.1, and a watcher that swaps in a new target without a restart.

The watcher (:mod:`batchcast.online.watcher`) checks the alias every
``[serve] poll`` seconds, and at once on SIGHUP. A new target is loaded and
verified beside the model being served, then swapped in; one that fails to
load is refused, logged, alerted once, and the old model keeps serving.
With ``--workers N`` uvicorn runs N processes, each with its own watcher
(SIGHUP to the parent restarts them, which is uvicorn's own handling of it).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import signal
import sys

from batchcast.data.ahead import cores
from batchcast.online.batching import Batcher
from batchcast.online.loading import load
from batchcast.online.slot import Slot
from batchcast.online.watcher import settle_memory, watch
from batchcast.runs.heartbeats import Heart
from batchcast.serving.app import create

log = logging.getLogger("batchcast")
CONFIG = "BATCHCAST_SERVE"  # the options, for worker processes that build the app themselves


def run(spec_file: str, host: str = "127.0.0.1", port: int = 8080, ref: str | None = None,
        poll: float | None = None, workers: int | None = None) -> None:
    """Serve ``ref`` (default: the champion, else the latest training) until SIGTERM or Ctrl-C."""
    import uvicorn

    from batchcast.serving.protocol import GuardedProtocol

    os.environ[CONFIG] = json.dumps({"spec": spec_file, "ref": ref, "poll": poll, "workers": workers,
                                     "where": f"http://{host}:{port}"})
    serve = _service().spec.serve
    # A partial of a module's class, not a closure: uvicorn's worker processes get the options pickled.
    http = functools.partial(GuardedProtocol, max_head=serve.max_header, deadline=serve.request_timeout)
    options = dict(host=host, port=port, log_config=None, log_level="warning", access_log=False,
                   timeout_graceful_shutdown=30, http=http, ws="none")
    workers = workers or serve.workers
    if workers > 1:
        _service().model_for(ref)  # a missing or unsealed model fails here, once, not in every worker
        uvicorn.run("batchcast.serving.server:factory", factory=True, workers=workers, **options)
        return
    uvicorn.Server(uvicorn.Config(factory(), **options)).run()  # re-raises SIGTERM after in-flight requests


def factory():
    """The app, its model loaded and verified: what each server process runs."""
    # Here, not in run(): uvicorn's worker processes are spawned, and start with no logging set up.
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    config = json.loads(os.environ[CONFIG])
    service = _service()
    serve = service.spec.serve
    threads = serve.threads or max(1, cores() // (config.get("workers") or serve.workers))  # each worker its share
    slot = Slot(load(service, config["ref"]), threads=threads)
    log.info("serving %s (%s) of %s/%s; a large batch on up to %d thread(s)", slot.served.run_id,
             slot.served.alias or "not an alias target", service.name, service.version, threads)
    batcher = Batcher(serve.max_batch, serve.max_wait_ms / 1000)
    online = None
    if serve.log_table:
        from batchcast.online.log import OnlineLog

        online = OnlineLog(service.spec, serve.log_table, serve.log_every, serve.log_max_rows, slot.metrics)
    settle_memory()

    @contextlib.asynccontextmanager
    async def lifespan(app):
        wake = asyncio.Event()
        with contextlib.suppress(ValueError, RuntimeError):  # not the main thread (a test's server): no SIGHUP
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, wake.set)
        poll = config["poll"] or serve.poll
        heart = Heart(service.store, service.name, service.version, "serve", config.get("where", "http"), poll)
        watcher = asyncio.create_task(watch(service, slot, config["ref"], poll, wake, heart))
        if online is not None:
            online.start()
        yield
        watcher.cancel()
        await asyncio.to_thread(heart.stop)
        await batcher.stop()
        if online is not None:
            await asyncio.to_thread(online.stop)  # after the last request: what it logged is flushed too

    return create(slot, serve.max_body, batcher, lifespan, online)


def _service():
    from batchcast.service import Service

    return Service(json.loads(os.environ[CONFIG])["spec"])
