"""Warehouses: the port (:mod:`~batchcast.warehouses.base`) and one module per warehouse.

:func:`open_warehouse` finds one by URL scheme through the registry's rows
(:mod:`~batchcast.warehouses.lookup`), importing its driver only when a URL asks for it.
"""

from batchcast.warehouses.base import Warehouse
from batchcast.warehouses.lookup import backend_for, local_file, open_warehouse

__all__ = ["Warehouse", "backend_for", "local_file", "open_warehouse"]
