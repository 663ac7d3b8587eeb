"""``python -m batchcast.cli``: the same as the ``batchcast`` command."""

import sys

from batchcast.cli.commands import main

sys.exit(main())
