"""Start `python app.py` in a child process and wait until it serves: the helper of the cold-start and
load benchmarks (and of their short versions in the tests)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(
    port: int, checkpoints: str | None = None, timeout: float = 60.0, log: str | None = None
) -> tuple[subprocess.Popen, float]:
    """(the server process, seconds until its page answered 200); its output goes to `log` if given."""
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False")
    if checkpoints:
        env["UDM_CHECKPOINTS"] = checkpoints
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(log, "w") if log else subprocess.DEVNULL,  # noqa: SIM115  (the child owns it)
    )
    url = f"http://127.0.0.1:{port}/"
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with status {proc.returncode} before serving")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return proc, time.perf_counter() - t0
        except OSError:
            time.sleep(0.05)
    stop(proc)
    raise TimeoutError(f"the app did not serve {url} within {timeout:.0f} s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
