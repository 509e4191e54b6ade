"""The real servers the README names, as its lines run them: the end-to-end tests
(tests/test_servers.py) and `benchmarks/servers.py` both take them from here.

Every server answers `VERSION PID`, VERSION read from ./version.txt when it starts, so an edit
of version.txt is a new version, and an answer names the process that served it.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

APPS = Path(__file__).resolve().parent

URL = "http://127.0.0.1:{port}/"


@dataclass(frozen=True)
class Server:
    name: str
    app: str
    """The file under tests/apps the project holds, under the name the command uses."""
    command: tuple[str, ...]
    """After `--`; `{python}` is this Python."""
    modes: dict[str, tuple[str, ...]]
    """reentr's options per mode, `{port}` the port: each with the probe the README gives."""
    needs: str
    """A Python module (`uvicorn`) or a program (`node`) that must be installed."""
    workers: int = 1
    """Processes that answer, each loading the app (and version.txt) when it boots."""
    resets_on_stop: bool = False
    """Its shutdown closes a connection it has accepted but not yet read: a client that
    hammers it sees a reset now and then (uvicorn: Kludex/uvicorn#2757, open)."""

    def argv(self, mode: str, port: int) -> list[str]:
        options = [word.format(port=port) for word in self.modes[mode]]
        return [*options, "--", *(word.format(python=sys.executable) for word in self.command)]

    def missing(self) -> str | None:
        """Why this server cannot run here, or None."""
        if self.needs == "node":
            found = shutil.which("node") is not None
            install = "Debian: apt-get install nodejs"
        else:
            found = importlib.util.find_spec(self.needs) is not None
            install = "pip install -e '.[dev]' installs it"
        return None if found else f"{self.needs} is not installed ({install})"


def _modes(restart: bool, handoff_probe: tuple[str, ...] = ("--ready-url", URL)
           ) -> dict[str, tuple[str, ...]]:
    modes = {
        "restart": ("-r", "--ready-url", URL),
        "socket": ("-r", "--socket", "{port}", "--ready-url", URL),
        "handoff": ("--handoff", "--socket", "{port}", *handoff_probe),
    }
    if not restart:
        del modes["restart"]  # it can only serve on an inherited socket
    return modes


SERVERS = {
    server.name: server for server in (
        # uvicorn's answers do not name its PID (a real app's would not either), so with
        # --handoff its readiness is the line it logs once it serves the socket.
        Server("uvicorn", "asgi_wsgi.py:app.py",
               ("{python}", "-m", "uvicorn", "--fd", "3", "app:asgi"),
               _modes(False, ("--ready-line", "Uvicorn running on")), "uvicorn",
               resets_on_stop=True),
        # Its workers answer: with --handoff, an answer that names a worker of the new master.
        Server("gunicorn", "asgi_wsgi.py:app.py",
               ("{python}", "-m", "gunicorn", "--workers", "2", "app:wsgi"),
               _modes(False), "gunicorn", workers=2),
        Server("python", "server.py:server.py", ("{python}", "server.py"), _modes(True),
               "http"),
        Server("node", "server.js:server.js", ("node", "server.js"), _modes(True), "node"),
    )
}


def make_project(root: Path, server: Server, version: str = "v0") -> None:
    """The server's app and version.txt in `root`."""
    source, _, name = server.app.partition(":")
    (root / name).write_bytes((APPS / source).read_bytes())
    (root / "version.txt").write_text(version)


def restart_totals(events: Path) -> list[float]:
    """The `total_ms` of each `restart` reentr has written to its `--events` file so far."""
    if not events.exists():
        return []
    # Whole lines only: reentr may be writing the next one.
    return [json.loads(line)["total_ms"] for line in events.read_text().split("\n")[:-1]
            if '"event": "restart"' in line]
