"""The owner's dashboard shows the last error of the project's model endpoint (issue 11)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import expect


class _Broken(BaseHTTPRequestHandler):
    """A model endpoint that always answers 500."""

    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b'{"error": "model crashed"}'
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def broken_endpoint():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Broken)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_dashboard_shows_the_model_endpoints_last_error(server, new_page, helpers, broken_endpoint):
    with server.client() as c:
        pid = c.post("/api/projects", json={"name": "byom-error", "classes": ["a", "b"]}).json()[
            "id"
        ]
        items = [{"external_id": f"i{i}", "payload": {"x": float(i)}} for i in range(6)]
        c.post(f"/api/projects/{pid}/items", json={"items": items}).raise_for_status()
        r = c.put(
            f"/api/projects/{pid}/model", json={"source": "endpoint", "endpoint": broken_endpoint}
        )
        r.raise_for_status()
        helpers.wait_for(lambda: c.get(f"/api/projects/{pid}/model").json()["last_error"])
        model = c.get(f"/api/projects/{pid}/model").json()
    assert "HTTP 500 (server error)" in model["last_error"]
    assert model["next_attempt_at"] is not None  # backing off, not failed yet
    page, console = new_page()
    helpers.login(page, server, helpers.ADMIN, f"/projects/{pid}/dashboard")
    error = page.locator("#model-error")
    expect(error).to_contain_text("HTTP 500 (server error)")
    expect(error).to_contain_text(f"job {model['last_error_job_id']}, queued; next attempt")
    console.assert_clean(r"status of 401")
