"""A real two-node Ray cluster on this machine, for the distributed-selection tests.

``ray start --head --block`` and a second ``ray start --address ... --block`` run as child
process groups of the test session (one CPU each, ports picked free, their own temporary
directory), so they are stopped by process-group id at the end, never with ``ray stop``,
which would kill every Ray process on the machine. ``RAY_AUTH_MODE=disabled`` is set for the
nodes, this process (the driver) and the CLI it starts: Ray 2.60 otherwise turns token
authentication on for a new cluster whenever ``~/.ray/auth_token`` exists, while a driver reads
its mode once, at ``import ray``; the cluster listens on 127.0.0.1 only, for one test session.
Readiness is waited for, not slept for: the
head's port, then both nodes alive in the GCS, each wait guarded against a hang only.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

HANG_GUARD_S = 180  # a loaded 2-core machine starts a node in ~10 s; this only catches hangs


def _free_ports(n: int) -> list[int]:
    # all bound at once, so the n ports are distinct
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


def _tail(path: Path, n: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


@dataclass
class RayCluster:
    address: str
    root: Path
    procs: list[tuple[subprocess.Popen, Path]]
    node_ids: list[str]


def _wait_for(what: str, ready, procs) -> None:
    deadline = time.monotonic() + HANG_GUARD_S
    while not ready():
        for proc, log in procs:
            if proc.poll() is not None:
                pytest.fail(f"{what}: `ray start` exited with {proc.returncode}:\n{_tail(log)}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not ready after {HANG_GUARD_S} s:\n{_tail(procs[-1][1])}")
        time.sleep(0.2)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _start_node(
    args: list[str], root: Path, name: str, env: dict[str, str]
) -> tuple[subprocess.Popen, Path]:
    ports = _free_ports(7)
    cmd = [
        str(Path(sys.executable).with_name("ray")), "start", "--block", *args,
        "--num-cpus", "1", "--object-store-memory", str(100 * 1024**2),
        "--disable-usage-stats", "--node-manager-port", str(ports[0]),
        "--object-manager-port", str(ports[1]), "--dashboard-agent-listen-port", str(ports[2]),
        "--dashboard-agent-grpc-port", str(ports[3]), "--metrics-export-port", str(ports[4]),
        "--runtime-env-agent-port", str(ports[5]),
    ]  # fmt: skip
    log = root / f"{name}.log"
    with open(log, "wb") as fh:
        # its own process group: the node and everything it starts are stopped by that id
        proc = subprocess.Popen(
            cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    return proc, log


def _stop(procs: list[tuple[subprocess.Popen, Path]]) -> None:
    for proc, _ in reversed(procs):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    for proc, _ in reversed(procs):
        try:
            proc.wait(timeout=3)  # `ray start --block` drains for up to 30 s: not needed here
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


@pytest.fixture(scope="session")
def ray_cluster():
    """Head + one worker node (1 CPU each); the test process is connected as the driver."""
    if importlib.util.find_spec("ray") is None:
        pytest.skip("the ray extra is not installed (make test installs it)")
    root = Path(tempfile.mkdtemp(prefix="lwray", dir="/tmp"))  # short: unix socket paths
    head_port, dash_port = _free_ports(2)
    procs: list[tuple[subprocess.Popen, Path]] = []
    ray_env = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    saved = {name: os.environ.get(name) for name in ray_env}
    os.environ.update(ray_env)  # before `import ray`: the driver reads it at import
    env = dict(os.environ)
    import ray

    try:
        procs.append(
            _start_node(
                [
                    "--head", "--port", str(head_port), "--node-ip-address", "127.0.0.1",
                    "--include-dashboard", "false", "--dashboard-port", str(dash_port),
                    "--temp-dir", str(root),
                ],
                root,
                "head",
                env,
            )
        )  # fmt: skip
        _wait_for("ray head", lambda: _port_open(head_port), procs)
        address = f"127.0.0.1:{head_port}"
        procs.append(
            _start_node(["--address", address, "--node-ip-address", "127.0.0.1"], root, "node", env)
        )
        ray.init(address=address, logging_level="ERROR", log_to_driver=False)

        def two_nodes() -> bool:
            alive = [n for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU")]
            return len(alive) >= 2

        _wait_for("two ray nodes", two_nodes, procs)
        node_ids = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
        yield RayCluster(address, root, procs, node_ids)
    finally:
        with contextlib.suppress(Exception):
            ray.shutdown()
        _stop(procs)
        shutil.rmtree(root, ignore_errors=True)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
