"""A service of a `reentr up` project for reentr's tests: serves `VERSION PID NAME` on the socket
reentr holds for it (fd 3), or on 127.0.0.1:$PORT when run alone.

NAME is the service's directory; VERSION is read from ./version.txt when it starts (`crash`
exits with status 3 at once). With $UPSTREAM (a URL), it asks that service on every request
and appends its answer after ` -> `, so `api` answers `one 123 api -> one 456 store`. On
SIGTERM it finishes the request in progress, then exits.
"""

import http.server
import os
import signal
import sys
import threading
import urllib.request
from pathlib import Path

import reentr

NAME = Path.cwd().name
VERSION = Path("version.txt").read_text().strip() if Path("version.txt").exists() else "one"
if VERSION == "crash":
    sys.exit(3)
UPSTREAM = os.environ.get("UPSTREAM")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"{VERSION} {os.getpid()} {NAME}"
        if UPSTREAM:
            with urllib.request.urlopen(UPSTREAM, timeout=5) as answer:
                body += " -> " + answer.read().decode()
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


inherited = reentr.listen_sockets()
server = http.server.HTTPServer(
    ("127.0.0.1", int(os.environ.get("PORT", "0"))), Handler, bind_and_activate=not inherited
)
if inherited:
    server.socket.close()
    server.socket = inherited[0]
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
print(f"serving {VERSION}", flush=True)
server.serve_forever(poll_interval=0.01)
server.server_close()
