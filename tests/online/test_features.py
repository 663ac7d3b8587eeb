"""The model's features, and decoded records read into the table the scorer reads, whatever the transport."""

from __future__ import annotations

import pytest

from batchcast.errors import RequestError
from batchcast.online.features import Features, records, table

FEATURES = Features(("tenure", "premium"), {"tenure": "number", "premium": "bool"}, ("player_id",))


def test_features_come_from_the_training_runs_meta_and_profile():
    meta = {"features": ["tenure", "spend"]}
    profile = {"features": {"tenure": {"kind": "number"}, "spend": {"kind": "number"}}}
    assert Features.of(meta, profile) == Features(("tenure", "spend"), {"tenure": "number", "spend": "number"})
    assert Features.of(meta, None).kinds == {}  # trained before profiles: names checked, types not


def test_records_read_into_the_features_in_training_order_with_the_ids_as_strings():
    rows = [{"premium": True, "tenure": 3, "player_id": 7, "other": "x"}, {"tenure": 4.5, "premium": None}]
    assert table(records(rows, "the record"), FEATURES).to_pydict() == {
        "tenure": [3.0, 4.5], "premium": [True, None], "player_id": ["7", None]}


@pytest.mark.parametrize(("value", "message"), [
    ([], "the request holds no rows"),
    ([1], "the record is not a list of objects"),
    ([{"tenure": 1}], "column 'premium' is missing"),
    ([{"tenure": "3", "premium": True}], "column 'tenure' row 0: \"3\" is not a number"),
], ids=["no-rows", "not-objects", "missing", "not-a-number"])
def test_a_record_that_does_not_fit_is_one_line_naming_what_is_wrong(value, message):
    with pytest.raises(RequestError) as caught:
        table(records(value, "the record"), FEATURES)
    assert message in caught.value.message and caught.value.fix and caught.value.status == 400
