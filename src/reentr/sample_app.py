"""The sample app of `reentr bench`: an HTTP server on 127.0.0.1:PORT that answers
`VERSION PID`, where VERSION is the content of ./version.txt. It reads the file when it starts,
and again on SIGHUP (the in-process reload path that `--signal SIGHUP` exercises).

    python -m reentr.sample_app PORT
"""

from __future__ import annotations

import http.server
import os
import signal
import sys
from pathlib import Path
from types import FrameType

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


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    _load()
    signal.signal(signal.SIGHUP, _load)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Handler)
    print(f"sample app {_version} serving on 127.0.0.1:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
