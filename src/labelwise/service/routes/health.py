"""``GET /healthz``: liveness, no token needed."""

from __future__ import annotations

from fastapi import APIRouter

from labelwise.service.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness check")
def healthz() -> Health:
    """Returns ``{"status": "ok"}`` while the process serves requests."""
    from labelwise import __version__

    return Health(version=__version__)
