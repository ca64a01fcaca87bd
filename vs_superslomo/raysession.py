"""A Ray session for a chunked job: the one this process has, a cluster joined at its address, or a local one
that listens on loopback only; Ray imported only here, with one line when it is missing."""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import socket
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from .commandline import INSTALL_HINT, WorkerSettings
from .errors import JobError

__all__ = ["first_line", "import_ray", "ray_session"]


def import_ray() -> ModuleType:
    try:
        import ray
    except ImportError:
        raise JobError(f"--workers needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


def _check_reachable(address: str) -> None:
    """Fail in seconds, not minutes, when nothing listens at a host:port address (ray.init retries long)."""
    if address in ("auto", "local"):
        return
    host_port = address.removeprefix("ray://")
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit():
        raise JobError(
            f"bad Ray address {address!r}: give HOST:PORT as `ray start --head` prints it (e.g. 10.0.0.5:6379)"
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as exc:
        raise JobError(
            f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}; start its head with "
            "`ray start --head` and give the address it prints"
        ) from None


@contextlib.contextmanager
def ray_session(ray: ModuleType, settings: WorkerSettings, threads: int) -> Iterator[bool]:
    """A Ray session for the job: the one already started in this process, the cluster at the address, or a
    local one sized for the workers; what this function started, it shuts down. Yields whether the job's
    tasks end with the session (a local one this function started)."""
    if settings.address is not None:
        _check_reachable(settings.address)  # also when this process has a session: the address was asked for
    with _notices_on_stderr():  # also in a session this process had: the job's stdout holds its summary only
        if ray.is_initialized():
            yield False
            return
        quiet: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
        if settings.address is not None:
            try:
                ray.init(address=settings.address, **quiet)
            except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError... for one cause
                raise JobError(f"cannot join the Ray cluster at {settings.address}: {first_line(exc)}") from None
            try:
                yield False
            finally:
                ray.shutdown()
            return
        with _loopback_only():
            ray.init(num_cpus=(settings.workers or 1) * threads, include_dashboard=False, **quiet)
            try:
                yield True
            finally:
                ray.shutdown()


# Ray's switch for "clusters may form here" (off by default on Windows and macOS), read by its processes.
_CLUSTER_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


@contextlib.contextmanager
def _loopback_only() -> Iterator[None]:
    """A local session whose servers (GCS, raylet, workers) listen on 127.0.0.1 alone, not on every interface.

    Ray binds them to the node's address, which it takes to be the loopback one only where it believes no
    cluster can form: its setting for Windows and macOS, given here to it and to the processes it starts
    (Ray 2.60 has no other way: ray.init(_node_ip_address="127.0.0.1") is turned into the machine's address).
    """
    import ray._private.ray_constants as constants

    saved = constants.ENABLE_RAY_CLUSTER, os.environ.get(_CLUSTER_ENV)
    constants.ENABLE_RAY_CLUSTER = False
    os.environ[_CLUSTER_ENV] = "0"
    try:
        yield
    finally:
        constants.ENABLE_RAY_CLUSTER = saved[0]
        if saved[1] is None:
            os.environ.pop(_CLUSTER_ENV, None)
        else:
            os.environ[_CLUSTER_ENV] = saved[1]


@contextlib.contextmanager
def _notices_on_stderr() -> Iterator[None]:
    """Ray's notices to the driver (a worker died, memory ran low) printed on stderr, with this program's other
    messages, instead of on stdout, which holds only the summary.

    Ray's driver prints them from a thread of its own through ``print_to_stdstream``, always to stdout and
    with no setting to change it (Ray 2.60); its other messages already go to stderr.
    """
    try:
        worker = importlib.import_module("ray._private.worker")
    except ImportError:
        worker = None
    printer = getattr(worker, "print_to_stdstream", None)
    if worker is None or printer is None:  # another Ray's layout: leave it as it is
        yield
        return

    def on_stderr(data: dict[str, Any], ignore_prefix: bool) -> None:
        printer({**data, "is_err": True}, ignore_prefix)

    vars(worker)["print_to_stdstream"] = on_stderr  # Ray's module global, looked up at each call
    try:
        yield
    finally:
        vars(worker)["print_to_stdstream"] = printer


def first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
