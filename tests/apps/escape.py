"""A target that starts a process which leaves its process group (a new session, as a daemon
does), says `escaped PID`, and then runs until it is stopped."""

import signal
import subprocess
import sys

daemon = subprocess.Popen(
    [sys.executable, "-c", "import signal; signal.pause()"], start_new_session=True,
)
print(f"escaped {daemon.pid}", flush=True)
signal.pause()
