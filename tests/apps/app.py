"""A small HTTP app, as in the README: serves its VERSION on $PORT (127.0.0.1)."""

import http.server
import os

VERSION = "one"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"{VERSION} {os.getpid()}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


server = http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
print(f"serving {VERSION} on {server.server_port}", flush=True)
server.serve_forever()
