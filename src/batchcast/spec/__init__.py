"""The service spec: ``batchcast.toml`` loaded, merged and validated.

- :mod:`~batchcast.spec.base`: what every table is built from, and the one-line failure;
- :mod:`~batchcast.spec.sections`: the tables batchcast itself reads;
- :mod:`~batchcast.spec.serve`, :mod:`~batchcast.spec.stream`, :mod:`~batchcast.spec.tracking`,
  :mod:`~batchcast.spec.image`, :mod:`~batchcast.spec.alerts`, :mod:`~batchcast.spec.waiting`: ``[serve]``,
  ``[stream]``, ``[mlflow]``, ``[image]``, ``[alerts]`` and ``[actions.X.wait_for]``;
- :mod:`~batchcast.spec.service`: :class:`ServiceSpec`, composed with the backends' own tables
  (each backend declares its ``[actions.X.<name>]`` model; :mod:`batchcast.registry` lists them);
- :mod:`~batchcast.spec.loading`: finding the file, the environment and command-line layers;
- :mod:`~batchcast.spec.messages`: one line per problem, naming file, table, key, value and fix.
"""

from batchcast.spec.alerts import AlertsSection
from batchcast.spec.image import ImageSection
from batchcast.spec.loading import env_overrides, find_spec, find_specs, load_spec, merged
from batchcast.spec.sections import KINDS, ActionSpec, InputSpec, ModelSection, OutputSpec
from batchcast.spec.service import DEFAULT_COMMAND, SPEC_FILE, ServiceSpec

__all__ = ["DEFAULT_COMMAND", "KINDS", "SPEC_FILE", "ActionSpec", "AlertsSection", "ImageSection", "InputSpec",
           "ModelSection", "OutputSpec", "ServiceSpec", "env_overrides", "find_spec", "find_specs", "load_spec",
           "merged"]
