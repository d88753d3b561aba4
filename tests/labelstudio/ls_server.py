"""A real Label Studio 1.23.2 server for the tests, from its own venv ``.venv-ls``.

Label Studio pins Django, pydantic and friends that clash with labelwise's dependencies, so
``make test`` installs it into ``.venv-ls`` and then runs ``python tests/labelstudio/ls_server.py
--init``: ``label-studio init`` migrates a SQLite database (minutes: Label Studio has hundreds of
migrations) and creates the test user with a fixed legacy API token, once, into
``.venv-ls/ls-template``. Each test session copies that folder to a temporary directory and
starts ``label-studio start`` on it (seconds).

Offline: analytics, the latest-version check and Sentry are off (``COLLECT_ANALYTICS``,
``LATEST_VERSION_CHECK``, ``SENTRY_DSN``); ``ML_BLOCK_LOCAL_IP`` and
``SSRF_PROTECTION_ENABLED`` are off so that Label Studio may call labelwise on 127.0.0.1 (as
ML backend and webhook); ``LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN`` lets the fixed token in.

Standard library only: the Makefile runs it with the system Python.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: ``LABELWISE_LS_VENV`` points the tests at another Label Studio venv.
LS_VENV = Path(os.environ.get("LABELWISE_LS_VENV") or ROOT / ".venv-ls")
LS_BIN = LS_VENV / "bin" / "label-studio"
TEMPLATE = LS_VENV / "ls-template"
USERNAME = "admin@example.com"
PASSWORD = "labelwise-test-1"
TOKEN = "0123456789abcdef0123456789abcdef01234567"
MISSING = (
    f"{LS_BIN} is missing: run `make test`, which installs Label Studio 1.23.2 into .venv-ls "
    "(its own venv: its dependencies clash with labelwise's)."
)


def ls_env(data_dir: Path) -> dict[str, str]:
    """The environment Label Studio runs under: its data in ``data_dir``, nothing online."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env.update(
        {
            "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
            "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
            "COLLECT_ANALYTICS": "false",
            "LATEST_VERSION_CHECK": "false",
            "SENTRY_DSN": "",
            "FRONTEND_SENTRY_DSN": "",
            "ML_BLOCK_LOCAL_IP": "false",
            "SSRF_PROTECTION_ENABLED": "false",
            "WEBHOOK_TIMEOUT": "30",
            "ML_TIMEOUT_PREDICT": "60",
            "ML_TIMEOUT_SETUP": "30",
            "ML_TIMEOUT_HEALTH": "30",
            "DJANGO_DB": "sqlite",
            "PATH": f"{LS_VENV / 'bin'}:{os.environ.get('PATH', '')}",
        }
    )
    return env


def init_template(force: bool = False) -> Path:
    """Migrate Label Studio's database and create the test user into :data:`TEMPLATE`."""
    if not LS_BIN.exists():
        raise FileNotFoundError(MISSING)
    done = TEMPLATE / ".ready"
    if done.exists() and not force:
        return TEMPLATE
    shutil.rmtree(TEMPLATE, ignore_errors=True)
    TEMPLATE.mkdir(parents=True)
    cmd = [
        str(LS_BIN), "init", "--no-browser", "--username", USERNAME, "--password", PASSWORD,
        "--user-token", TOKEN, "--enable-legacy-api-token",
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=ls_env(TEMPLATE), capture_output=True, text=True)
    if proc.returncode != 0 or not (TEMPLATE / "label_studio.sqlite3").exists():
        raise RuntimeError(f"label-studio init failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
    done.write_text("label-studio init done\n")
    return TEMPLATE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LabelStudio:
    """A running Label Studio: ``url``, the API ``token`` (``Authorization: Token ...``)."""

    url: str
    token: str
    proc: subprocess.Popen
    log: Path

    def stop(self) -> None:
        """Stop the server and everything it started (its process group)."""
        if self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def start(workdir: Path, timeout: float = 240.0) -> LabelStudio:
    """Start Label Studio on a free port with a copy of the template database in ``workdir``."""
    template = init_template()
    data = workdir / "ls-data"
    shutil.copytree(template, data)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = workdir / "label-studio.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(LS_BIN), "start", "--no-browser", "--internal-host", "127.0.0.1",
             "--port", str(port)],
            env=ls_env(data), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=workdir, start_new_session=True,
        )  # fmt: skip
    server = LabelStudio(url, TOKEN, proc, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text()[-3000:]
            raise RuntimeError(f"Label Studio exited ({proc.returncode}):\n{tail}")
        if _up(url):
            return server
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"Label Studio did not answer /health in {timeout:.0f} s:\n"
                       f"{log.read_text()[-3000:]}")  # fmt: skip


if __name__ == "__main__":
    if sys.argv[1:] != ["--init"]:
        sys.exit("usage: python tests/labelstudio/ls_server.py --init")
    print(f"Label Studio template database: {init_template()}")
