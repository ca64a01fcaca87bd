"""A local --workers run's own Ray session: reachable from this machine only."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("ray")
pytest.importorskip("psutil")

# Starts the session the command line starts for --workers 2, runs a task in it, and prints the addresses its
# processes listen on (a process of its own: this test run may have a Ray session already).
_LISTENERS = """
import os, ray  # ray first: it brings its own psutil
import psutil
from vs_superslomo.commandline import WorkerSettings
from vs_superslomo.raysession import ray_session
def pid():
    return os.getpid()
with ray_session(ray, WorkerSettings(workers=2), 1):
    ray.get(ray.remote(pid).remote())
    me = psutil.Process()
    ours = {p.pid for p in [me, *me.children(recursive=True)]}
    print(sorted({c.laddr.ip for c in psutil.net_connections("inet") if c.status == "LISTEN" and c.pid in ours}))
"""


@pytest.mark.slow
def test_a_local_session_listens_on_loopback_only() -> None:
    out = subprocess.run([sys.executable, "-c", _LISTENERS], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    addresses = eval(out.stdout.strip().splitlines()[-1])  # a list of strings, printed by the script above
    assert addresses and all(a in ("127.0.0.1", "::1", "::ffff:127.0.0.1") for a in addresses), addresses
