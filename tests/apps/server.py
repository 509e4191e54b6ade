"""An HTTP server for reentr's tests: serves `VERSION PID` on 127.0.0.1:$PORT.

VERSION is the constant below (edit it to make a new version, as in the README's example),
unless ./version.txt exists: then it is what a build step wrote there. Two versions misbehave
on purpose: `crash` exits with status 3 at once, `mute` serves but never says it is ready.

Under `reentr --socket` it serves on the inherited socket instead of binding $PORT; it says
`READY=1` on $NOTIFY_SOCKET when that is set; on SIGTERM it finishes the request in progress,
then exits, as a production server does. Each answer to reentr's readiness probe (its
User-Agent) prints a line naming the version and process that answered.
"""

import http.server
import os
import signal
import socket
import sys
import threading
from pathlib import Path

import reentr

VERSION = "one"
if Path("version.txt").exists():
    VERSION = Path("version.txt").read_text().strip()
if VERSION == "crash":
    sys.exit(3)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"{VERSION} {os.getpid()}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if self.headers.get("User-Agent") == "reentr-ready":
            print(f"answered reentr's probe: {VERSION} {os.getpid()}", flush=True)

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
if VERSION != "mute":
    print(f"serving {VERSION}", flush=True)
    if "NOTIFY_SOCKET" in os.environ:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
            notify.sendto(b"READY=1", os.environ["NOTIFY_SOCKET"])
server.serve_forever(poll_interval=0.01)
server.server_close()
