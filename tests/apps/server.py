"""An HTTP server for reentr's tests: serves `VERSION PID` on 127.0.0.1:$PORT.

VERSION is the constant below (edit it to make a new version, as in the README's example),
unless ./version.txt exists: then it is what a build step wrote there.
"""

import http.server
import os
from pathlib import Path

VERSION = "one"
if Path("version.txt").exists():
    VERSION = Path("version.txt").read_text().strip()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"{VERSION} {os.getpid()}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


server = http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
print(f"serving {VERSION}", flush=True)
server.serve_forever()
