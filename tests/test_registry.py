"""A new backend plugs in with its module, its settings model and one registry row, and nothing else."""

from __future__ import annotations

import pytest
from pydantic import Field

from batchcast import RunStatus, Service, registry
from batchcast.errors import MissingExtra, SpecError
from batchcast.executors.inline import InlineExecutor
from batchcast.spec.base import Section
from batchcast.spec.service import composed


class ToySettings(Section):
    """The toy executor's table: proves a backend's settings reach the spec without the spec naming them."""

    greeting: str = Field("hello", description="Something only this executor reads.")


class ToyExecutor(InlineExecutor):
    name = "toy"


@pytest.fixture
def toy(monkeypatch):
    rows = {**registry.EXECUTORS, "toy": registry.Backend("toy", f"{__name__}:ToyExecutor",
                                                           settings=f"{__name__}:ToySettings")}
    monkeypatch.setattr(registry, "EXECUTORS", rows)
    composed.cache_clear()
    yield
    composed.cache_clear()


def _with_toy(spec, table: str) -> None:
    text = spec.read_text().replace("[actions.training]\n", "[actions.training]\nexecutor = \"toy\"\n")
    spec.write_text(text + f"\n[actions.training.toy]\n{table}\n")


def test_a_registered_executor_and_its_table_are_used(toy, adopted):
    spec = adopted / "batchcast.toml"
    _with_toy(spec, 'greeting = "hi"')
    service = Service(spec)
    assert service.spec.action("training").toy.greeting == "hi"
    manifest = service.run("training", "2026-01-01")
    assert manifest.status is RunStatus.SUCCEEDED and manifest.executor == "toy"


def test_a_registered_table_is_validated_like_the_core_ones(toy, adopted):
    spec = adopted / "batchcast.toml"
    _with_toy(spec, 'greetin = "hi"')
    with pytest.raises(SpecError, match=r"\[actions.training.toy\] greetin: unknown key .*did you mean 'greeting'"):
        Service(spec)


def test_an_unregistered_executor_lists_the_registry(adopted):
    spec = adopted / "batchcast.toml"
    spec.write_text(spec.read_text().replace("[actions.training]\n", "[actions.training]\nexecutor = \"slurm\"\n"))
    with pytest.raises(SpecError) as err:
        Service(spec)
    assert "unknown executor 'slurm'" in str(err.value) and ", ".join(registry.EXECUTORS) in str(err.value)


def test_a_missing_library_names_the_extra(monkeypatch):
    rows = {**registry.EXECUTORS, "toy": registry.Backend("toy", "no_such_module_here:Executor", "toy")}
    monkeypatch.setattr(registry, "EXECUTORS", rows)
    from batchcast.executors import get_executor

    with pytest.raises(MissingExtra, match=r"the toy executor needs the 'toy' extra.*pip install 'batchcast\[toy\]'"):
        get_executor("toy")
