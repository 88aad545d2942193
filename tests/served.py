"""``typogram`` as an operator runs it, in a process: its environment, a command, ``serve``.

``cli_env`` gives a process its own data folder and free ports and none of
this process's ``TYPOGRAM_*`` settings; ``start_serve`` starts ``typogram
serve`` and returns once ``/ready`` answers 200 (its output goes to
``serve.log`` in the data folder, shown if it dies first); ``stop_serve``
sends SIGTERM and returns the exit code.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.gateway_nodes import free_port


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TYPOGRAM_")}
    env.update(
        TYPOGRAM_ENVIRONMENT="test",
        TYPOGRAM_DATA_DIR=str(tmp_path),
        TYPOGRAM_HTTP_PORT=str(free_port()),
        TYPOGRAM_WS_PORT=str(free_port()),
        TYPOGRAM_METRICS_PORT=str(free_port()),
        TYPOGRAM_LOG_JSON="false",
    )
    env.update(extra)
    return env


def run_cli(
    env: dict[str, str], *args: str, stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``typogram <args>`` to its end; ``stdin`` (if given) as its input."""
    return subprocess.run(
        [sys.executable, "-m", "roles", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_serve(
    env: dict[str, str], ready_within_s: float = 60.0
) -> tuple[subprocess.Popen[bytes], str]:
    """``typogram serve`` on ``env``, ready; the process and its base URL."""
    log_path = Path(env["TYPOGRAM_DATA_DIR"]) / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "roles", "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{env['TYPOGRAM_HTTP_PORT']}"
    deadline = time.monotonic() + ready_within_s
    try:
        while True:
            try:
                if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                    return process, base
            except httpx.TransportError:
                pass
            assert process.poll() is None, log_path.read_text(errors="replace")
            assert time.monotonic() < deadline, "typogram serve did not become ready"
            time.sleep(0.2)
    except BaseException:
        stop_serve(process)
        raise


def stop_serve(process: subprocess.Popen[bytes], within_s: float = 20.0) -> int:
    """SIGTERM, then its exit code (killed if it takes longer than ``within_s``)."""
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=within_s)
    finally:
        process.kill()
