"""Settings from the environment."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from labelwise.settings import DEFAULT_DATABASE_URL, Settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in ["DATABASE_URL", "LABELWISE_DATABASE_URL", "LABELWISE_LEASE_SECONDS"]:
        monkeypatch.delenv(name, raising=False)


def test_defaults():
    s = Settings()
    assert s.database_url == DEFAULT_DATABASE_URL == "sqlite:///./.labelwise/labelwise.db"
    assert (s.lease_seconds, s.job_lease_seconds, s.worker) == (300, 600, "inline")


def test_env_prefix(monkeypatch):
    monkeypatch.setenv("LABELWISE_LEASE_SECONDS", "60")
    monkeypatch.setenv("LABELWISE_DATABASE_URL", "sqlite:///x.db")
    s = Settings()
    assert (s.lease_seconds, s.database_url) == (60, "sqlite:///x.db")


def test_database_url_env_and_postgres_scheme(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://u@h:5432/db")
    assert Settings().database_url == "postgresql+psycopg://u@h:5432/db"
    monkeypatch.setenv("LABELWISE_DATABASE_URL", "sqlite:///wins.db")
    assert Settings().database_url == "sqlite:///wins.db"


def test_explicit_arguments():
    assert Settings(database_url="sqlite:///y.db").database_url == "sqlite:///y.db"


def test_bad_lease_seconds():
    with pytest.raises(ValidationError):
        Settings(lease_seconds=0)
