"""`reentr bench`: run reentr on a real app, make real edits, and measure from the outside how
long each edit takes to be served and how many requests fail meanwhile, mode by mode."""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import TextIO, TypeVar

from reentr import process
from reentr.errors import ReentrError
from reentr.ready import sockdiag
from reentr.records import record
from reentr.timing import percentile

T = TypeVar("T")

MODES = {
    "plain": ["-r", "--ready-url", "http://127.0.0.1:{port}/"],
    "signal": ["--signal", "SIGHUP", "--ready-port", "{port}"],
    "socket": ["-r", "--socket", "{port}", "--ready-url", "http://127.0.0.1:{port}/"],
    "handoff": ["--handoff", "--socket", "{port}", "--ready-url", "http://127.0.0.1:{port}/"],
}
"""Each mode's reentr options. `signal` needs an app that reloads itself on SIGHUP; `socket`
and `handoff` an app that serves on the socket it inherits (LISTEN_FDS), and for `handoff`
one whose answer names its PID (the new target's readiness): the sample app does all three.
With the socket held, reentr's own socket completes every connect, so a port probe would
prove nothing: those modes probe the URL. So does `plain`, where the port would do, but where
a server that binds it before it can answer (gunicorn's master, before its workers boot)
would be reported ready early: the outside observer waits for an answer, and so must the
figure bench prints beside it."""
READY_TIMEOUT_S = 30.0
POLL_S = 0.001
_IDENTIFY_NS = 2_000_000_000
"""How long after reentr reported a restart the bench looks for an answer from the new target
before it counts from the report instead."""
"""The client sends its next request this long after the previous one ended."""


@dataclass
class Edit:
    """One edit, measured from the outside."""

    edit_to_ready_ms: float
    """From the edit to the arrival of the first answer that has its result."""
    failed_requests: int
    longest_request_ms: float
    """The longest any request took meanwhile: how long a client stalled."""
    printed_total_ms: float | None = None
    """What reentr itself printed for this restart (its `--events` stream)."""
    second_observer_ms: float | None = None
    """`--observers 2`: edit -> served as the second client measured it."""


@dataclass
class Result:
    mode: str
    edits: list[Edit] = field(default_factory=list)
    reported: int = 0
    """The restarts reentr reported in all (one per edit when it counts right)."""


@record
class Plan:
    """What to bench: the command (None: the sample app), where it listens, what to edit."""

    command: tuple[str, ...] | None
    port: int | None
    edit: Path | None
    runs: int
    modes: tuple[str, ...]
    observers: int = 1


def run(plan: Plan, out: TextIO) -> list[Result]:
    """Bench every mode of `plan` in turn, print a table and histograms to `out`."""
    with tempfile.TemporaryDirectory(prefix="reentr-bench-") as tmp:
        work = Path(tmp)
        port = plan.port or _free_port()
        if plan.command is None:
            command: tuple[str, ...] = (sys.executable, "-m", "reentr.sample_app", str(port))
            edited = work / "version.txt"
            what = f"the sample app (python -m reentr.sample_app) on 127.0.0.1:{port}"
        else:
            assert plan.edit is not None
            command, edited, what = plan.command, plan.edit, f"'{' '.join(plan.command)}'"
            original = edited.read_bytes()
        out.write(f"reentr bench: {plan.runs} edits of {edited.name} per mode, {what}; a client "
                  f"polls 127.0.0.1:{port} every {POLL_S * 1000:g} ms\n")
        out.flush()
        out.write(f"\nedit → served, ms{'':<10}{'p50':>7}{'p95':>7}{'max':>7}   failed requests"
                  "   longest stall   printed vs measured, p50   restarts reported"
                  + ("   observer vs observer, p50" if plan.observers > 1 else "") + "\n")
        results = []
        try:
            for mode in plan.modes:
                results.append(_bench_mode(mode, plan, command=command, edited=edited,
                                           port=port, work=work))
                _print_row(results[-1], out)
        finally:
            if plan.command is not None:
                # Your file as it was, to the byte, however the bench ends (Ctrl-C included).
                edited.write_bytes(original)
        out.write("\n")
        for result in results:
            _print_histogram(result, out)
        return results


def write_json(results: list[Result], path: str) -> None:
    text = json.dumps({"modes": [asdict(r) for r in results]}, indent=1)
    if path == "-":
        sys.stdout.write(text + "\n")
    else:
        Path(path).write_text(text + "\n")


@record
class _Request:
    began: int
    ended: int
    body: str | None
    """None: the request failed."""
    group: int | None = None
    """The process group of reentr's target whose process answered, when known."""


class _Client:
    """Polls GET / in a thread; remembers each request: when it began and ended, the answer,
    and which of the target's process groups (`groups`, the newest last) answered it."""

    def __init__(self, port: int, groups: Callable[[], list[int]] = list):
        self.port = port
        self.groups = groups
        self.lock = threading.Lock()
        self.log: list[_Request] = []
        self.stop = threading.Event()
        self.identifies = sys.platform == "linux"
        """Whether the answering process is looked up (sock_diag): until the kernel refuses."""
        self.thread = threading.Thread(target=self._run, daemon=True, name="reentr-bench-client")
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            began = time.monotonic_ns()
            body, group = self._get()
            with self.lock:
                self.log.append(_Request(began, time.monotonic_ns(), body, group))
            self.stop.wait(POLL_S)

    def _get(self) -> tuple[str | None, int | None]:
        """GET /: the answer (None if the request failed), and which group took it."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2.0)
        try:
            connection.connect()
            group = self._group(connection.sock)
            connection.request("GET", "/")
            response = connection.getresponse()
            body = response.read().decode(errors="replace") if response.status < 400 else None
            return body, group if body is not None else None
        except (OSError, http.client.HTTPException):
            return None, None
        finally:
            connection.close()

    def _group(self, connection: socket.socket | None) -> int | None:
        """Which target group took the connection, looked up once it is taken and before the
        request goes (a few tenths of a millisecond): see `sockdiag.holder`."""
        groups = self.groups()
        if not self.identifies or connection is None or not groups:
            return None
        try:
            return sockdiag.holder(connection, groups, wait_s=2.0)
        except OSError:
            self.identifies = False  # no sock_diag here: served is known another way
            return None

    def since(self, t_ns: int) -> list[_Request]:
        with self.lock:
            return [entry for entry in self.log if entry.began >= t_ns]

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5.0)


def _bench_mode(
    mode: str, plan: Plan, *, command: Sequence[str], edited: Path, port: int, work: Path
) -> Result:
    events = work / f"events-{mode}.jsonl"
    sample = plan.command is None
    if sample:
        edited.write_text("0")
    options = [word.replace("{port}", str(port)) for word in MODES[mode]]
    argv = [sys.executable, "-m", "reentr", "-n", "-q", *options, "--events", str(events),
            *command]
    restarts = _Restarts(events)
    result = Result(mode)
    # Your app runs where you are, as you would run it; the sample app in the bench's folder.
    cwd = work if sample else Path.cwd()
    with _reentr(argv, edited, cwd, work / f"reentr-{mode}.log") as log, \
            _polling(port, restarts.targets, plan.observers) as clients:
        client = clients[0]
        _wait(partial(_answered, client, events, log), "the app to answer", log)
        _wait(restarts.ready, "reentr to find the app ready", log)
        for number in range(1, plan.runs + 1):
            content = str(number).encode() if sample else edited.read_bytes()
            before = time.monotonic_ns()
            edited.write_bytes(content)
            written = _written_at(edited, before, time.monotonic_ns())
            version = content.decode() if sample else None
            served = _wait(partial(_unless_ended, restarts, mode, number, log,
                                   partial(_served_at, client, before, version, restarts,
                                           number, signalled=mode == "signal")),
                           f"edit {number} to be served", log)
            meanwhile = [r for r in client.since(before) if r.began < served]
            failed = sum(1 for r in meanwhile if r.body is None)
            longest = max((r.ended - r.began for r in meanwhile), default=0)
            edit = Edit(round((served - written) / 1e6, 3), failed, round(longest / 1e6, 3))
            for other in clients[1:]:
                seen = _wait(partial(_served_at, other, before, version, restarts, number,
                                     signalled=mode == "signal"),
                             f"edit {number} to be seen by the second client", log)
                edit.second_observer_ms = round((seen - written) / 1e6, 3)
            result.edits.append(edit)
            _wait(partial(restarts.done_ns, number), f"reentr's report of edit {number}", log)
    totals = restarts.totals()  # reentr has exited: every restart it reported is written
    for edit, total in zip(result.edits, totals, strict=False):
        edit.printed_total_ms = total
    result.reported = len(totals)
    return result


def _unless_ended(
    restarts: _Restarts, mode: str, number: int, log: Path, served: Callable[[], int | None]
) -> int | None:
    """`served()`, unless the app has exited and reentr has not started it again: then the
    bench ends at once, saying why, rather than wait out its 30 s."""
    found = served()
    status = restarts.ended() if found is None else None
    if status is None:
        return found
    how = (f"killed by {signal.Signals(-status).name}" if status < 0
           else f"exit status {status}")
    hint = ("; --mode signal sends SIGHUP, which an app that does not reload on it dies of: "
            "use --mode plain" if mode == "signal" and status == -signal.SIGHUP else "")
    raise ReentrError(f"bench: the app exited ({how}) during edit {number} of mode {mode}, "
                      f"and reentr did not start it again{hint}{_log_tail(log)}")


def _written_at(path: Path, before: int, after: int) -> int:
    """When the edit was written (monotonic ns): the file's modification time, where the
    kernel's clock places it between `before` and `after`, else `before`. The write itself
    can wait for the interpreter's lock, which the bench's clients hold between requests,
    for up to 5 ms: the edit is when the kernel wrote it, as reentr counts it too."""
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        return before
    at = time.monotonic_ns() - (time.time_ns() - mtime)
    return at if before <= at <= after else before


def _served_at(
    client: _Client, before: int, version: str | None, restarts: _Restarts, number: int,
    *, signalled: bool = False,
) -> int | None:
    """When the first answer with the edit's result arrived: the outside `ready`. (Not when
    its request began: with the socket held, a request made during the restart waits in the
    backlog and is answered by the new target.)

    The sample app names its version, so that is the first answer with the new version. Any
    other app: the first answer from the process group of the target started for the edit,
    as the kernel tells who holds each connection (Linux); elsewhere, or under `--signal`
    (the same process reloads), the first answer to a request made after reentr reported
    the restart, which leans on reentr's own report.
    """
    if version is not None:
        for request in client.since(before):
            if request.body is not None and request.body.split()[0] == version:
                return request.ended
        return None
    if client.identifies and not signalled:
        started = restarts.targets()
        if len(started) <= number:
            return None  # the target for this edit has not started yet
        new = started[number]  # the first start is number 0
        # A request made a little before the edit may wait in the socket's queue for the new
        # target (the HTTP timeout is 2 s).
        for request in client.since(before - 2_000_000_000):
            if request.group == new:
                return request.ended
        done = restarts.done_ns(number)
        if done is None or time.monotonic_ns() - done < _IDENTIFY_NS:
            return None
        # Answers, but none known to come from the new target (its processes' descriptors
        # cannot be read, say): the figure leans on reentr's report from now on.
        client.identifies = False
    done = restarts.done_ns(number)
    return None if done is None else _answer(client, done)


def _answer(client: _Client, since_ns: int) -> int | None:
    for request in client.since(since_ns):
        if request.body is not None:
            return request.ended
    return None


class _Restarts:
    """The `restart` events of reentr's `--events` stream, read as the file grows."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()  # the client's thread reads it too (`targets`)
        self._offset = 0
        self._partial = b""
        self._done: dict[int, tuple[int, float]] = {}
        """Restart number -> (when reentr reported it, monotonic ns; the total it printed)."""
        self._targets: list[int] = []
        """The PID (and process group) of each start of the target, in order."""
        self._ready = False
        """Whether reentr has found a start of the target ready."""
        self._exited: dict[int, int] = {}
        """The status of each start of the target that has exited."""
        self._stopped: set[int] = set()
        """The starts reentr stopped itself (a restart), whose exit is no news."""

    def _read(self) -> None:
        with self._lock:
            try:
                with open(self.path, "rb") as stream:
                    stream.seek(self._offset)
                    chunk = stream.read()
            except OSError:
                return
            self._offset += len(chunk)
            *lines, self._partial = (self._partial + chunk).split(b"\n")
            for line in lines:
                record = json.loads(line)
                if record["event"] == "restart":
                    # Its wall-clock time, moved onto the monotonic clock.
                    ago_ns = int((time.time() - float(record["time"])) * 1e9)
                    self._done[record["number"]] = (time.monotonic_ns() - ago_ns,
                                                    float(record["total_ms"]))
                elif record["event"] == "spawned" and record["role"] == "target":
                    self._targets.append(int(record["pid"]))
                elif record["event"] == "ready" and record["role"] == "target":
                    self._ready = True
                elif record["event"] == "exited" and record["role"] == "target":
                    self._exited[int(record["pid"])] = int(record["status"])
                elif record["event"] == "signal" and record["stop"]:
                    self._stopped.add(int(record["pid"]))

    def ready(self) -> bool:
        """Whether reentr has found a start of the target ready: an edit before that would
        stop a start that never served, which is no restart."""
        self._read()
        with self._lock:
            return self._ready

    def ended(self) -> int | None:
        """The status of the last start of the target if it has exited by itself (not
        stopped by reentr for a restart, which starts another), else None."""
        self._read()
        with self._lock:
            last = self._targets[-1] if self._targets else None
            if last is None or last in self._stopped:
                return None
            return self._exited.get(last)

    def targets(self) -> list[int]:
        """Every start of the target so far, the newest last (each leads its group)."""
        self._read()
        with self._lock:
            return list(self._targets)

    def done_ns(self, number: int) -> int | None:
        """When reentr reported restart `number`, or None if it has not yet."""
        self._read()
        done = self._done.get(number)
        return None if done is None else done[0]

    def totals(self) -> list[float]:
        """The total of every restart, in order."""
        self._read()
        return [self._done[n][1] for n in sorted(self._done)]


def _answered(client: _Client, events: Path, log: Path) -> int | None:
    """When the app first answered; if it has exited before, the bench ends at once, with what
    the app said last."""
    answered = _answer(client, 0)
    if answered is not None:
        return answered
    try:
        text = events.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        record = json.loads(line)
        if record["event"] == "exited" and record["role"] == "target":
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            raise ReentrError(f"bench: the app exited before it answered (status "
                              f"{record['status']})" + (f": {' | '.join(tail)}" if tail else ""))
    return None


@contextlib.contextmanager
def _reentr(argv: list[str], edited: Path, cwd: Path, log: Path) -> Iterator[Path]:
    with open(log, "wb") as sink:
        child = process.start_helper(argv, stdin=f"{edited}\n".encode(), output=sink.fileno(),
                                     cwd=cwd)
    try:
        yield log
    finally:
        process.stop_helper(child)


@contextlib.contextmanager
def _polling(port: int, groups: Callable[[], list[int]], count: int) -> Iterator[list[_Client]]:
    clients = [_Client(port, groups) for _ in range(count)]
    try:
        yield clients
    finally:
        for client in clients:
            client.close()


def _wait(predicate: Callable[[], T | None], what: str, log: Path) -> T:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise ReentrError(f"bench: gave up after {READY_TIMEOUT_S:g}s waiting for {what}"
                              + _log_tail(log))
        time.sleep(POLL_S)
    return value


def _log_tail(log: Path) -> str:
    """The last lines of what reentr and the app wrote, for a line that says why the bench
    ended."""
    tail = log.read_text(errors="replace").strip().splitlines()[-3:]
    return f"; the log (reentr's and the app's) ends: {' | '.join(tail)}" if tail else ""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _print_row(result: Result, out: TextIO) -> None:
    times = [e.edit_to_ready_ms for e in result.edits]
    failed = [e.failed_requests for e in result.edits]
    printed = [abs(e.printed_total_ms - e.edit_to_ready_ms) for e in result.edits
               if e.printed_total_ms is not None]
    agree = f"{percentile(printed, 50):.1f} ms, max {max(printed):.0f}" if printed else "-"
    label = f"{result.mode} ({len(times)} edits)"
    failures = f"{sum(failed)} ({sum(failed) / len(failed):.1f}/edit)"
    stall = f"{max(e.longest_request_ms for e in result.edits):.0f} ms"
    spread = [abs(e.second_observer_ms - e.edit_to_ready_ms) for e in result.edits
              if e.second_observer_ms is not None]
    observers = (f"{'':<16}{percentile(spread, 50):.1f} ms, max {max(spread):.0f}"
                 if spread else "")
    out.write(f"{label:<27}{percentile(times, 50):>7.0f}{percentile(times, 95):>7.0f}"
              f"{max(times):>7.0f}   {failures:<17} {stall:<16}{agree:<27}"
              f"{result.reported} of {len(times)}{observers}\n")
    out.flush()


def _print_histogram(result: Result, out: TextIO, bins: int = 8, width: int = 40) -> None:
    """Bins of whole milliseconds, each [start, end): the first holds the fastest edit, the
    last the slowest, and there are no more bins than the range needs."""
    times = [e.edit_to_ready_ms for e in result.edits]
    low, top = math.floor(min(times)), math.floor(max(times)) + 1
    step = max(math.ceil((top - low) / bins), 1)
    counts = [0] * math.ceil((top - low) / step)
    for value in times:
        counts[int((value - low) // step)] += 1
    out.write(f"{result.mode}: edit → served, ms\n")
    for i, count in enumerate(counts):
        start = low + i * step
        bar = "#" * max(round(count / max(counts) * width), 1 if count else 0)
        span = f"[{start}, {start + step})"
        out.write(f"  {span:>14} {count:>4}  {bar}\n")
    out.flush()

