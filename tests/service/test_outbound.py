"""The SSRF guard on URLs the service sends requests to (webhooks, model endpoints)."""

from __future__ import annotations

import pytest

from labelwise.service.outbound import OutboundURLError, check_outbound_url
from labelwise.settings import Settings


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",  # AWS / GCP / Azure metadata
        "http://169.254.1.2:8080/hook",
        "http://[fe80::1]/x",
        "http://[fd00:ec2::254]/latest",
        "http://[::ffff:169.254.169.254]/",  # IPv4-mapped IPv6
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://METADATA.google.internal./",
        "http://100.100.100.200/latest/meta-data",
    ],
)
def test_metadata_and_link_local_addresses_are_refused(url: str) -> None:
    with pytest.raises(OutboundURLError, match="refused"):
        check_outbound_url(url)


@pytest.mark.parametrize(
    "url",
    ["ftp://example.org/x", "file:///etc/passwd", "gopher://127.0.0.1/", "http:///nohost"],
)
def test_other_schemes_and_missing_hosts_are_refused(url: str) -> None:
    with pytest.raises(OutboundURLError):
        check_outbound_url(url)


def test_a_name_resolving_to_a_link_local_address_is_refused(monkeypatch) -> None:
    import socket

    def fake_getaddrinfo(host, port, *a, **k):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    with pytest.raises(OutboundURLError, match=r"resolves to 169\.254\.169\.254"):
        check_outbound_url("https://innocent.example/hook")


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9000/hook", "http://localhost/x", "https://10.0.0.5/predict"]
)
def test_loopback_and_private_addresses_are_allowed(url: str) -> None:
    assert check_outbound_url(url) == url


def test_the_allow_list_lifts_the_refusal_for_what_it_names() -> None:
    url = "http://169.254.10.7/predict"
    assert check_outbound_url(url, ["169.254.10.0/24"]) == url
    with pytest.raises(OutboundURLError):
        check_outbound_url(url, ["169.254.11.0/24"])
    name = "http://metadata.google.internal/"
    assert check_outbound_url(name, ["metadata.google.internal"], resolve=False) == name


def test_the_allow_list_setting_reads_a_comma_separated_variable(monkeypatch) -> None:
    monkeypatch.setenv("LABELWISE_OUTBOUND_ALLOW", "169.254.10.0/24, models.internal ,")
    assert Settings().outbound_allow == ["169.254.10.0/24", "models.internal"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://[::1", "is not a valid URL"),
        ("http://[zz]/hook", "is not a valid URL"),
        ("http://a..b/hook", "is not a valid host name"),
        ("http://" + "a" * 64 + ".example/", "is not a valid host name"),
    ],
)
def test_malformed_urls_are_refused_with_a_reason(url: str, message: str) -> None:
    """A broken bracketed host or an empty / too long label is an OutboundURLError (a 422 in
    the API), not the ValueError / UnicodeError of urlsplit or the idna codec (a 500)."""
    with pytest.raises(OutboundURLError, match=message):
        check_outbound_url(url)


def test_malformed_urls_are_422_for_webhooks_and_model_endpoints(tmp_path) -> None:
    from fastapi.testclient import TestClient

    from labelwise.service.app import create_app
    from labelwise.storage import InMemoryStore

    store = InMemoryStore()
    pid = store.create_project("p", "multiclass", ["a", "b"])
    app = create_app(Settings(data_dir=tmp_path, worker="external"), store, admin_token="t0k")
    with TestClient(app) as client:
        client.headers["Authorization"] = "Bearer t0k"
        for url in ("http://[::1", "http://a..b/hook"):
            hook = {"url": url, "events": ["batch.completed"]}
            r = client.post(f"/api/projects/{pid}/webhooks", json=hook)
            assert r.status_code == 422, r.text
            body = {"source": "endpoint", "endpoint": url}
            r = client.put(f"/api/projects/{pid}/model", json=body)
            assert r.status_code == 422, r.text
        assert store.list_webhooks(pid) == []
        assert store.get_model_source(pid).source == "builtin"
