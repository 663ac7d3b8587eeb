"""Where a model's code runs apart from batchcast's: uv environments, images, child processes, scratch folders."""
