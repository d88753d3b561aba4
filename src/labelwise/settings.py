"""Service settings, read from the environment (``LABELWISE_*``) or passed explicitly.

>>> Settings(database_url="sqlite:///tmp/x.db").lease_seconds
300

``DATABASE_URL`` (the name Heroku, Render, Fly and friends set) is honoured as well as
``LABELWISE_DATABASE_URL``; the latter wins when both are set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["DEFAULT_DATABASE_URL", "Settings"]

DEFAULT_DATABASE_URL = "sqlite:///./.labelwise/labelwise.db"


class Settings(BaseSettings):
    """Everything the service and the worker read at start-up; nothing is read at import."""

    model_config = SettingsConfigDict(
        env_prefix="LABELWISE_", extra="ignore", populate_by_name=True, frozen=True
    )

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        validation_alias=AliasChoices("LABELWISE_DATABASE_URL", "DATABASE_URL", "database_url"),
        description="SQLAlchemy URL: sqlite:///path.db (default) or postgresql+psycopg://...",
    )
    auto_upgrade: bool = Field(
        default=True, description="Run database migrations when the service starts."
    )
    data_dir: Path = Field(
        default=Path(".labelwise"), description="Model artifacts, exports and feature files."
    )
    lease_seconds: int = Field(
        default=300, gt=0, description="How long an annotator holds a claimed task."
    )
    job_lease_seconds: int = Field(
        default=600, gt=0, description="How long a worker holds a claimed job before retry."
    )
    import_batch_size: int = Field(default=10_000, gt=0, description="Rows per import insert.")
    import_resumable_bytes: int = Field(
        default=16 * 2**20,
        ge=0,
        description="An import file larger than this is checked whole first, then written in "
        "committed batches that a rerun after a kill resumes (smaller: one transaction).",
    )
    import_async_bytes: int = Field(
        default=16 * 2**20,
        ge=0,
        description="A file upload to POST /api/projects/{id}/items:import larger than this is "
        "imported by a worker job: 202 with the job, its progress in GET /api/jobs/{id}.",
    )
    worker: Literal["inline", "external"] = Field(
        default="inline",
        description="'inline' runs jobs in the service process; 'external' leaves them to "
        "`labelwise worker`.",
    )
    select_backend: Literal["local", "ray"] = Field(
        default="local",
        description="Where a round's selection runs: 'local' (the process starting the round) "
        "or 'ray' (a Ray cluster, ray_address; needs the ray extra). Strategies and sparse "
        "pools without a distributed plan run locally; the selection is the same either way.",
    )
    ray_address: str | None = Field(
        default=None,
        description="Ray cluster for select_backend='ray' ('auto', 'host:6379', "
        "'ray://host:10001'); unset starts a local Ray instance in the process.",
    )
    worker_poll_seconds: float = Field(default=1.0, gt=0, description="Idle worker poll interval.")
    job_max_attempts: int = Field(
        default=3, ge=1, description="Tries of a failing job before it is left 'failed'."
    )
    retrain_every: int = Field(
        default=0,
        ge=0,
        description="Also retrain after this many new labels, mid-round (0: only when a "
        "round's batch is complete).",
    )
    round_overlap: int = Field(
        default=0,
        ge=0,
        description="Start the next round from the current model once the open tasks of the "
        "current one fall to this many (0: only when its batch is complete), so the queue never "
        "runs dry while a slow annotator holds the last tasks.",
    )
    withdraw_stale: bool = Field(
        default=True,
        description="After a retrain, withdraw queued tasks the new model no longer ranks among "
        "the batch_size most informative items (claimed tasks are never withdrawn).",
    )
    random_fraction: float = Field(
        default=0.1,
        ge=0.0,
        lt=1.0,
        description="Share of each batch drawn uniformly at random from a fixed random subset "
        "of the pool; their labels measure the random-sampling baseline.",
    )
    max_json_body_bytes: int = Field(
        default=10 * 1024 * 1024,
        gt=0,
        description="Largest request body of any API route but file imports (413 beyond).",
    )
    max_upload_bytes: int = Field(
        default=1024 * 1024 * 1024,
        gt=0,
        description="Largest file upload to POST /api/projects/{id}/items:import or "
        "images:upload, streamed to a temporary file (413 beyond).",
    )
    max_image_bytes: int = Field(
        default=50 * 1024 * 1024,
        gt=0,
        description="Largest single image of POST /api/projects/{id}/images:upload (413 beyond).",
    )
    max_image_pixels: int = Field(
        default=100_000_000,
        gt=0,
        description="Most pixels (width x height) of an uploaded image: decompression bombs are "
        "refused from their header (413).",
    )
    max_zip_entries: int = Field(
        default=20_000, gt=0, description="Most entries of an uploaded zip of images (413 beyond)."
    )
    max_zip_bytes: int = Field(
        default=4 * 1024 * 1024 * 1024,
        gt=0,
        description="Most bytes an uploaded zip of images may decompress to (zip bombs; 413).",
    )
    image_display_size: int = Field(
        default=1024,
        ge=64,
        description="Longest side, in pixels, of the copies of images the labeling page shows.",
    )
    max_open_leases: int = Field(
        default=20,
        gt=0,
        description="Tasks one annotator may hold leased in a project at once; a claim beyond "
        "is a 409 saying so.",
    )
    outbound_allow: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Hosts or networks that webhooks and model endpoints may reach although "
        "they are link-local or cloud metadata addresses (refused by default; comma-separated "
        "in LABELWISE_OUTBOUND_ALLOW).",
    )
    # webhooks (issue 11)
    webhook_timeout_seconds: float = Field(
        default=5.0, gt=0, le=60, description="Connect and read timeout of one webhook delivery."
    )
    webhook_max_attempts: int = Field(
        default=8, ge=1, le=50, description="Attempts of a webhook delivery before it is 'failed'."
    )
    webhook_retry_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Wait after a delivery's first failed attempt; tripled after each further "
        "one (10 s, 30 s, 90 s, ...), capped at webhook_retry_max_seconds.",
    )
    webhook_retry_max_seconds: float = Field(
        default=3600.0, gt=0, description="Longest wait between two attempts of a delivery."
    )
    # model sources (issue 11): an external model endpoint
    model_endpoint_batch_size: int = Field(
        default=256, gt=0, le=100_000, description="Items per POST {endpoint}/predict request."
    )
    model_endpoint_timeout_seconds: float = Field(
        default=30.0, gt=0, description="Seconds a model endpoint may take to answer a request."
    )
    model_endpoint_backoff_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Wait before retrying a failed model endpoint job; doubles with each "
        "attempt (at most an hour).",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, gt=0, lt=65536)

    @field_validator("outbound_allow", mode="before")
    @classmethod
    def _split_allow(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [part.strip() for part in v.split(",") if part.strip()]
        return v

    @field_validator("database_url")
    @classmethod
    def _normalise_url(cls, v: str) -> str:
        for prefix in ("postgres://", "postgresql://"):
            if v.startswith(prefix):
                return "postgresql+psycopg://" + v[len(prefix) :]
        return v
