"""HTTP routes, one module per resource. Each route is parse -> one library call -> format."""

from __future__ import annotations

from fastapi import APIRouter

from labelwise.service.routes import (
    annotators,
    exports,
    flags,
    guidelines,
    health,
    images,
    items,
    labelstudio,
    model_sources,
    progress,
    projects,
    quality,
    tasks,
    webhooks,
)

__all__ = ["api_router"]

api_router = APIRouter()
for _module in (
    projects,
    guidelines,
    items,
    images,
    tasks,
    flags,
    quality,
    annotators,
    exports,
    labelstudio,
    progress,
    model_sources,
    health,
    webhooks,
):
    api_router.include_router(_module.router)
