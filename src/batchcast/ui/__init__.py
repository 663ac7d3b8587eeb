"""``batchcast ui``: the dashboard, server-rendered HTML from the artifact store and the ledger.

- :mod:`~batchcast.ui.dashboard`: the routes, the pages and the server that answers with them;
- :mod:`~batchcast.ui.views`: what each page shows; :mod:`~batchcast.ui.runview`: a run's page;
- :mod:`~batchcast.ui.plots` and :mod:`~batchcast.ui.charts`: the plots, as inline SVG;
- :mod:`~batchcast.ui.operations`: the actions; :mod:`~batchcast.ui.auth`: the login, sessions and CSRF.
"""

from batchcast.ui.dashboard import grid_html, models_html, overview, run_page, serve, service_html

__all__ = ["grid_html", "models_html", "overview", "run_page", "serve", "service_html"]
