"""``python -m batchcast.cli``: the same as the ``batchcast`` command."""

import sys

from batchcast.cli import main

sys.exit(main())
