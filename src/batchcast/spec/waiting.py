"""``[actions.X.wait_for]``: the input that must exist before a scheduled run of a period starts."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from batchcast.spec.base import Section, fail


class WaitSection(Section):
    """What the scheduler (and Airflow's sensor) waits for; the date is ``waiting for data`` until it is there.

    As Airflow's sensors: checked every ``poll``, and given up ``timeout`` after the first check, when the
    date fails with one line naming what never came.
    """

    path: str | None = Field(None, description="Files that must exist: a path or glob (any fsspec URL), templated "
                                               "with {{ ds }}.")
    query: str | None = Field(None, description="SQL on the warehouse, templated with {{ ds }}, that must return "
                                                "a row.")
    poll: str = Field("5m", description="How often to look again (30s, 5m, 1h).")
    timeout: str = Field("6h", description="How long after the first look to give up and fail the date.")

    @field_validator("poll", "timeout")
    @classmethod
    def _duration(cls, value: str) -> str:
        from batchcast.scheduling.freshness import duration

        try:
            if duration(value).total_seconds() > 0:
                return value
        except ValueError:
            pass
        raise fail(f"'{value}' is not a duration", "write e.g. 30s, 5m, 2h or 1h30m")

    @model_validator(mode="after")
    def _one_source(self) -> WaitSection:
        if bool(self.query) == bool(self.path):
            raise fail("set exactly one of 'path' and 'query'",
                       "use path = \"landing/{{ ds }}/*.parquet\" or query = \"SELECT 1 FROM events WHERE day = "
                       "'{{ ds }}'\"")
        return self

    def seconds(self, key: str) -> float:
        from batchcast.scheduling.freshness import duration

        return duration(getattr(self, key)).total_seconds()
