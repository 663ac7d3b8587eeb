"""The ``batchcast`` command: each command parses, makes one library call, formats.

- :mod:`~batchcast.cli.commands`: the ``main`` group and its commands;
- :mod:`~batchcast.cli.airflow`, :mod:`~batchcast.cli.kubernetes`, :mod:`~batchcast.cli.scheduling`:
  the commands of their own rooms, added to ``main``;
- :mod:`~batchcast.cli.common`: the error-handling group and the service a command calls;
- :mod:`~batchcast.cli.output`: JSON, tables and log lines.

The library is imported inside the commands that call it, so that ``batchcast --help``
starts without pyarrow, pydantic or fsspec.
"""

from batchcast.cli.commands import main

__all__ = ["main"]
