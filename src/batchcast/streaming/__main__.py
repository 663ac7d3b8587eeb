"""``python -m batchcast.streaming SPEC ...``: the stream, as ``batchcast stream`` starts it in the model's environment.

That environment holds the model's requirements and batchcast's runtime,
not the CLI's libraries, so this entry point takes plain arguments.
"""

from __future__ import annotations

import argparse
import sys

from batchcast.errors import BatchcastError


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m batchcast.streaming")
    parser.add_argument("spec")
    parser.add_argument("--model")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int)
    parser.add_argument("--guarantee", choices=["exactly-once", "at-least-once"])
    args = parser.parse_args(argv)
    try:
        from batchcast.streaming.runner import run

        run(args.spec, args.model, args.host, args.port, args.guarantee)
    except BatchcastError as exc:  # one line and its fix, as the CLI prints them; no traceback
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
