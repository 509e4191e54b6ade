"""A target for reentr's tests: prints `started pid=N gen=N`, then waits to be stopped.

--state DIR       count generations in DIR/gen; hold DIR/fifo-GEN's write end open (the test
                  holds the read end: EOF proves every holder, grandchild included, is gone)
--grandchild      start a grandchild in the same process group that inherits the FIFO
--ignore-term     ignore SIGTERM
--report SIG      print `got SIG` when SIG arrives, and keep running
--exit N          exit with status N at once
--chatter         print `out 1` (stdout), `err 1` (stderr), `out 2`, then `prompt> ` with no
                  newline, before the `started` line
"""

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--state")
parser.add_argument("--grandchild", action="store_true")
parser.add_argument("--ignore-term", action="store_true")
parser.add_argument("--report", action="append", default=[])
parser.add_argument("--exit", type=int)
parser.add_argument("--chatter", action="store_true")
args, rest = parser.parse_known_args()

gen = 0
fifo = None
if args.state:
    counter = os.path.join(args.state, "gen")
    gen = int(Path(counter).read_text()) + 1 if os.path.exists(counter) else 1
    Path(counter).write_text(str(gen))
    fifo = os.open(os.path.join(args.state, f"fifo-{gen}"), os.O_WRONLY)
if args.ignore_term:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
for name in args.report:
    signal.signal(
        getattr(signal, name), lambda n, f: print(f"got {signal.Signals(n).name}", flush=True)
    )
if args.grandchild:
    subprocess.Popen(
        [sys.executable, "-c", "import signal; signal.pause()"],
        pass_fds=(fifo,) if fifo is not None else (),
    )
if args.chatter:
    print("out 1", flush=True)
    print("err 1", file=sys.stderr, flush=True)
    print("out 2", flush=True)
    print("prompt> ", end="", flush=True)
print(f"started pid={os.getpid()} gen={gen} args={' '.join(rest)}", flush=True)
if args.exit is not None:
    sys.exit(args.exit)
while True:
    signal.pause()
