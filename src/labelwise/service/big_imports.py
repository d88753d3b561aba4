"""Big file uploads imported by a worker job (issue 12).

``POST /api/projects/{id}/items:import`` streams an upload to a temporary file. When the file is
larger than ``settings.import_async_bytes`` (and is CSV, JSON Lines or Parquet), the route moves
it under ``settings.data_dir/imports/`` and queues an ``import`` job (:func:`queue_import`)
instead of importing it in the request: the answer is 202 with the job. A worker runs
:func:`run_import` (:func:`labelwise.importers.import_items`, resumable): the whole file is
checked first (a bad row fails the job and stores nothing), then written in committed batches.
A worker killed mid-file loses its job lease; the next worker that claims the job resumes the
import after its last committed batch. :func:`import_progress` reads the import's checkpoint
for ``GET /api/jobs/{id}``.
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
from pathlib import Path
from typing import Any

from labelwise.errors import LabelwiseError
from labelwise.importers import import_items, import_run_options
from labelwise.storage.base import BaseStore, Job

__all__ = ["import_progress", "queue_import", "run_import"]


def queue_import(
    store: BaseStore,
    project_id: int,
    upload: Path,
    fmt: str,
    *,
    data_dir: Path,
    filename: str,
    text_field: str | None,
    id_field: str | None,
    label_field: str | None,
    on_duplicate: str,
) -> int:
    """Move ``upload`` under ``data_dir/imports/`` and queue its import; returns the job id."""
    folder = Path(data_dir) / "imports"
    folder.mkdir(parents=True, exist_ok=True)
    # the items remember the file name as their source: keep it, in a folder of its own
    target = folder / uuid.uuid4().hex / filename
    target.parent.mkdir()
    shutil.move(upload, target)
    with target.open("rb") as f:
        sha256 = hashlib.file_digest(f, "sha256").hexdigest()
    payload = {
        "path": str(target),
        "file_sha256": sha256,
        "n_bytes": target.stat().st_size,
        "options": import_run_options(fmt, on_duplicate, text_field, id_field, label_field),
    }
    return store.create_job("import", project_id, payload)


def run_import(store: BaseStore, job: Job, settings: Any) -> object:
    """The ``import`` job: the upload imported resumably, then deleted."""
    if job.project_id is None:
        raise LabelwiseError(f"import job {job.id} has no project_id; queue it for a project.")
    path = Path(job.payload["path"])
    opts = job.payload["options"]
    result = import_items(
        store,
        job.project_id,
        path,
        opts["format"],
        text_field=opts["text_field"],
        id_field=opts["id_field"],
        label_field=opts["label_field"],
        on_duplicate=opts["on_duplicate"],
        batch_size=settings.import_batch_size,
        resumable=True,
    )
    shutil.rmtree(path.parent, ignore_errors=True)
    return result


def import_progress(store: BaseStore, job: Job) -> dict[str, Any] | None:
    """``{"phase", "rows_done", "rows_total"}`` of an ``import`` job (``None`` for others).

    ``phase`` is ``"checking"`` until every row was checked (the row count is not known yet),
    then ``"writing"``, then ``"done"``.
    """
    if job.kind != "import" or job.project_id is None:
        return None
    p = job.payload
    run = store.find_import_run(job.project_id, p["file_sha256"], p["options"])
    if run is None or (run.status == "done" and run.created < job.created):
        return {"phase": "checking", "rows_done": 0, "rows_total": None}
    return {
        "phase": "done" if run.status == "done" else "writing",
        "rows_done": run.rows_committed,
        "rows_total": run.n_rows,
    }
