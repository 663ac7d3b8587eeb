"""Entry point: python -m prediction.main --action training --config configs/training.json"""

import argparse
import json

from prediction.task import Task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--action", required=True, choices=["training", "application"])
    parser.add_argument("--config", required=True)
    args = parser.parse_args()
    with open(args.config) as f:
        config = json.load(f)
    getattr(Task(config), args.action)()


if __name__ == "__main__":
    main()
