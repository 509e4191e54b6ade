"""Who took a connection, as `reentr bench` asks it of every request (`sockdiag.holder`):
real servers in process groups of their own, real connections, the kernel's answer."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from reentr.ready import sockdiag

pytestmark = [pytest.mark.timeout(30),
              pytest.mark.skipif(sys.platform != "linux", reason="sock_diag is Linux's")]

SERVER = """
import signal, socket, sys, threading
listener = socket.create_server(("127.0.0.1", 0))
kept = []
def serve():
    while True:
        kept.append(listener.accept()[0])  # held open, never read
threading.Thread(target=serve, daemon=True).start()
print(listener.getsockname()[1], flush=True)
signal.pause()
"""


@pytest.fixture
def servers() -> Iterator[list[tuple[int, int]]]:
    """Two servers, each the leader of its own process group: (pgid, port) each."""
    started = [subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE,
                                text=True, start_new_session=True) for _ in range(2)]
    try:
        found = []
        for proc in started:
            assert proc.stdout is not None
            found.append((proc.pid, int(proc.stdout.readline())))
        yield found
    finally:
        for proc in started:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            assert proc.stdout is not None
            proc.stdout.close()


def test_the_group_that_took_a_connection_is_named(servers: list[tuple[int, int]]) -> None:
    (first, first_port), (second, second_port) = servers
    with socket.create_connection(("127.0.0.1", first_port)) as connection:
        assert sockdiag.holder(connection, [first, second], wait_s=5.0) == first
        assert sockdiag.holder(connection, [second], wait_s=5.0) is None
    with socket.create_connection(("127.0.0.1", second_port)) as connection:
        assert sockdiag.holder(connection, [first, second], wait_s=5.0) == second
