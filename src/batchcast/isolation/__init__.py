"""Where a model's code runs apart from batchcast's: uv environments, images, child processes, scratch folders.

- :mod:`~batchcast.isolation.environments`: the model's uv environment, built once per requirement set.
- :mod:`~batchcast.isolation.images`: ``batchcast build``, and the engine (podman or docker) that runs images.
- :mod:`~batchcast.isolation.process`: a child process with a timeout that kills its whole tree.
- :mod:`~batchcast.isolation.scratch`: work folders that do not outlive their process, even a killed one.
- :mod:`~batchcast.isolation.deployment`: the Kubernetes Deployment ``render-serving`` and ``render-streaming`` share.
"""
