"""Whether a period's ``[actions.X.wait_for]`` input has arrived: what the scheduler and Airflow's sensor ask.

One look, no waiting: the caller decides when to look again and when to give up.
"""

from __future__ import annotations

from batchcast.data.inputs import matching, render
from batchcast.errors import BatchcastError
from batchcast.scheduling.periods import Period
from batchcast.spec import ServiceSpec
from batchcast.warehouses import open_warehouse

TEMPFAIL = 75  # sysexits' EX_TEMPFAIL, "try again later": what `check --arrived` exits while the input is missing


def missing(spec: ServiceSpec, action: str, day: Period) -> str | None:
    """Why ``action``'s input for ``day`` is not there yet, or None when it is (or nothing is waited for).

    A failing look (a table not created yet, a warehouse another run holds, a bucket that does not answer)
    is a reason to look again, not an error: past the timeout, the date fails naming it.
    """
    wait = spec.action(action).wait_for
    if wait is None:
        return None
    where = f"{spec.file.name} [actions.{action}.wait_for]"
    # A template error is the spec's: raised, not waited out.
    looked_for = render(wait.path or wait.query, day, f"{where} {'path' if wait.path else 'query'}",
                        spec.action(action).interval(day))
    try:
        if wait.path:
            return None if matching(looked_for, spec.root)[1] else f"no file matches {looked_for}"
        with open_warehouse(spec.warehouse_url) as warehouse:
            found = any(batch.num_rows for batch in warehouse.read(looked_for, 1))
        return None if found else f"the query {looked_for!r} returned no row"
    except BatchcastError as exc:
        return f"{looked_for}: {exc.message}"
    except OSError as exc:  # fsspec's filesystems raise its kinds for a bucket that does not answer
        return f"{looked_for}: {exc}"
