"""An HTTP server for reentr's tests: serves `VERSION PID`, VERSION read from ./version.txt
at start (the "binary" a build step produced), on 127.0.0.1:$PORT."""

import http.server
import os
from pathlib import Path

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
