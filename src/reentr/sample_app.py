"""The sample app of `reentr bench`: an HTTP server on 127.0.0.1:PORT that answers
`VERSION PID`, where VERSION is the content of ./version.txt. It reads the file when it starts,
and again on SIGHUP (the in-process reload path that `--signal SIGHUP` exercises).

    python -m reentr.sample_app PORT

Under `reentr --socket` it serves on the socket it inherits instead of binding PORT. On
SIGTERM it stops accepting, finishes the requests it has begun, and exits, as a production
server does: that is what lets `--handoff` lose no request.
"""

from __future__ import annotations

import http.server
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from reentr.sockets import listen_sockets

_version = ""


def _load(signum: int = 0, frame: FrameType | None = None) -> None:
    global _version
    _version = Path("version.txt").read_text().strip() if Path("version.txt").exists() else "0"


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"{_version} {os.getpid()}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = False  # server_close() waits for the requests in progress


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    _load()
    signal.signal(signal.SIGHUP, _load)
    inherited = listen_sockets()
    server = _Server(("127.0.0.1", port), _Handler, bind_and_activate=not inherited)
    if inherited:
        server.socket.close()
        server.socket = inherited[0]
        server.server_address = server.socket.getsockname()

    def stop(signum: int, frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever to return, so it cannot run in this handler.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    how = "the inherited socket" if inherited else "127.0.0.1"
    print(f"sample app {_version} (pid {os.getpid()}) serving on {how}, port {port}",
          flush=True)
    server.serve_forever(poll_interval=0.05)
    server.server_close()


if __name__ == "__main__":
    main()
