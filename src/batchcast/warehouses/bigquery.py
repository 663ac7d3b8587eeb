"""BigQuery: ``bigquery://project/dataset?location=EU``.

A publish writes the batches to a local Parquet file as they come (so a bad
value or a failing model stops it before BigQuery sees anything), loads that
file into a staging table with a load job (never streaming inserts), then
replaces the logical date in one multi-statement transaction. Tables are
partitioned by ``_logical_date``. Credentials come from Application Default
Credentials; ``BATCHCAST_BIGQUERY_ENDPOINT`` points the client at an emulator.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from urllib.parse import parse_qsl, urlsplit

import pyarrow as pa
import pyarrow.parquet as pq
from google.api_core import exceptions as gexc
from google.cloud import bigquery

from batchcast.data.schema import ALIASES, Schema
from batchcast.errors import QueryError, SpecError, WarehouseError, WarehouseUnavailable
from batchcast.redaction import first_line
from batchcast.scheduling.periods import Period
from batchcast.warehouses.base import Warehouse
from batchcast.warehouses.tables import period_column

ENDPOINT_ENV = "BATCHCAST_BIGQUERY_ENDPOINT"


class BigQueryWarehouse(Warehouse):
    quote_char = "`"
    text_type = "STRING"
    timestamp_type = "TIMESTAMP"
    bucket_sql = "ABS(MOD(FARM_FINGERPRINT({key}), {parts}))"  # ABS first could overflow INT64's minimum

    def __init__(self, url: str):
        super().__init__(url)
        parts = urlsplit(url)
        self.project, self.dataset = parts.netloc, parts.path.strip("/")
        if not self.project or not self.dataset:
            raise SpecError(f"warehouse url '{url}' names no project and dataset",
                            "write it as bigquery://PROJECT/DATASET")
        self.location = dict(parse_qsl(parts.query)).get("location")
        self._client: bigquery.Client | None = None

    @property
    def client(self) -> bigquery.Client:
        if self._client is None:
            self._client = _client(self.project, self.location)
        return self._client

    def _ref(self, table: str) -> tuple[str, str]:
        dataset, _, name = table.rpartition(".")
        return dataset or self.dataset, name

    def quote(self, name: str) -> str:
        if name.count(".") > 1:
            return super().quote(name)  # refused there, with the message
        dataset, table = self._ref(name)
        self.quote_ident(dataset), self.quote_ident(table)
        return f"`{self.project}.{dataset}.{table}`"

    def read(self, query: str, batch_size: int = 65536) -> pa.RecordBatchReader:
        with _translated(f"query on {self.shown}", "check the SQL and the tables it names", QueryError):
            job = self.client.query(query, job_config=self._job_config())
            rows = job.result(page_size=batch_size)
            batches = iter(rows.to_arrow_iterable())
            first = next(batches, None)
        if first is None:
            empty = job.result().to_arrow(create_bqstorage_client=False)
            return pa.RecordBatchReader.from_batches(empty.schema, empty.to_batches())
        return pa.RecordBatchReader.from_batches(first.schema, _chain(first, batches))

    def columns(self, table: str) -> dict[str, str] | None:
        dataset, name = self._ref(table)
        with _translated(f"reading {table} in {self.shown}", "check the project, dataset and permissions"):
            try:
                found = self.client.get_table(f"{self.project}.{dataset}.{name}")
            except gexc.NotFound:
                return None
        return {f.name: ALIASES.get(f.field_type, f.field_type) for f in found.schema}

    def _replace_date(self, table: str, schema: Schema, logical_date: Period | None,
                      stream: pa.RecordBatchReader) -> None:
        dataset, name = self._ref(table)
        with tempfile.TemporaryDirectory(prefix="batchcast-bq-") as folder:
            path = os.path.join(folder, "rows.parquet")
            with pq.ParquetWriter(path, schema.to_arrow()) as writer:
                for batch in stream:  # the producer's errors surface here, before BigQuery is touched
                    writer.write_batch(batch)
            with _translated(f"writing {table} in {self.shown}", "see the message; the table is as it was"):
                self._ensure_table(dataset, name, schema)
                stage = f"{self.project}.{dataset}._batchcast_stage_{uuid.uuid4().hex[:12]}"
                try:
                    self._load(path, stage, schema)
                    self._swap(self.quote(table), stage, logical_date)
                finally:
                    self.client.delete_table(stage, not_found_ok=True)

    def _ensure_table(self, dataset: str, name: str, schema: Schema) -> None:
        self.client.create_dataset(bigquery.Dataset(f"{self.project}.{dataset}"), exists_ok=True)
        target = bigquery.Table(f"{self.project}.{dataset}.{name}", schema=_fields(schema))
        target.time_partitioning = bigquery.TimePartitioning(field="_logical_date")
        self.client.create_table(target, exists_ok=True)

    def _load(self, path: str, stage: str, schema: Schema) -> None:
        config = bigquery.LoadJobConfig(source_format="PARQUET", schema=_fields(schema),
                                        write_disposition="WRITE_TRUNCATE")
        with open(path, "rb") as f:
            self.client.load_table_from_file(f, stage, job_config=config, location=self.location).result()

    def _swap(self, quoted: str, stage: str, logical_date: Period | None) -> None:
        column, value = period_column(logical_date) if logical_date is not None else (None, None)
        delete = f"DELETE FROM {quoted} WHERE {column} = @d; " if column else ""  # None: append
        sql = f"BEGIN TRANSACTION; {delete}INSERT INTO {quoted} SELECT * FROM `{stage}`; COMMIT TRANSACTION;"
        kind = "DATE" if column == "_logical_date" else "TIMESTAMP"
        params = [bigquery.ScalarQueryParameter("d", kind, value)] if delete else []
        self.client.query(sql, job_config=self._job_config(params)).result()

    def _job_config(self, params=None) -> bigquery.QueryJobConfig:
        return bigquery.QueryJobConfig(default_dataset=f"{self.project}.{self.dataset}",
                                       query_parameters=params or [])

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _client(project: str, location: str | None) -> bigquery.Client:
    endpoint = os.environ.get(ENDPOINT_ENV)
    if not endpoint:
        try:
            return bigquery.Client(project=project, location=location)
        except Exception as exc:  # google.auth's DefaultCredentialsError and friends
            raise WarehouseError(f"BigQuery credentials: {exc}",
                                 "run 'gcloud auth application-default login' or set "
                                 "GOOGLE_APPLICATION_CREDENTIALS") from None
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials

    return bigquery.Client(project=project, location=location, credentials=AnonymousCredentials(),
                           client_options=ClientOptions(api_endpoint=endpoint))


def _fields(schema: Schema) -> list[bigquery.SchemaField]:
    return [bigquery.SchemaField(c.name, c.type) for c in schema]


def _chain(first: pa.RecordBatch, rest):
    yield first
    yield from rest


class _translated:
    """Turn google-api-core errors into batchcast's, at this module's boundary."""

    def __init__(self, what: str, fix: str, error: type[WarehouseError] = WarehouseError):
        self.what, self.fix, self.error = what, fix, error

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if isinstance(exc, (gexc.ServiceUnavailable, gexc.TooManyRequests, ConnectionError)):
            raise WarehouseUnavailable(f"{self.what}: {first_line(exc)}", "retry later") from None
        if isinstance(exc, gexc.GoogleAPICallError):
            raise self.error(f"{self.what}: {first_line(exc)}", self.fix) from None
        return False
