"""``batchcast ui``: the dashboard, server-rendered HTML from the artifact store and the ledger.

- :mod:`~batchcast.ui.dashboard`: the pages and the server that answers with them;
- :mod:`~batchcast.ui.charts`: the inline SVG charts.
"""

from batchcast.ui.dashboard import overview, run_page, serve

__all__ = ["overview", "run_page", "serve"]
