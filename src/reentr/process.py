"""The only owner of child processes: start each in its own process group, signal the whole
group, and report through the runner's queue when the leader exits and when the group is gone."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO

from reentr.events import GroupEmptied, JobStopped, ProcessExited, Queue, Role
from reentr.kernel import libc
from reentr.report import describe_status
from reentr.signals import readable, start_thread

_LONGEST_LINE = 65536
"""The line probe looks at no more than this much of one line."""
_REST_OF_LINE_S = 0.002
"""How long output that ends mid-line waits for the rest of its line (`_pass_through`)."""
_ETXTBSY_TRIES = 10
"""entr retries exec on ETXTBSY too: a build may still be closing the binary it just wrote."""


_GUARDIAN = r"""
groups=" "
while IFS= read -r line; do
    case $line in
        +*) groups="$groups${line#+} " ;;
        -*) pgid=" ${line#-} "
            case $groups in
                *"$pgid"*) groups="${groups%%"$pgid"*} ${groups#*"$pgid"}" ;;
            esac ;;
    esac
done
for pgid in $groups; do
    kill -s KILL -- "-$pgid" 2>/dev/null
done
"""
"""The guardian, in the POSIX shell: it reads `+PGID` and `-PGID` lines until EOF, then kills
what is still listed. (A Python one took 10 ms of CPU at every start, beside the programs
starting on the same cores, and 8 MB more memory.)"""


_PR_SET_CHILD_SUBREAPER = 36
"""prctl(2), Linux 3.4."""

def own_descriptors() -> None:
    """Make every descriptor reentr inherited, beyond stdin, stdout and stderr,
    close-on-exec: no child gets one (`start` passes only what it is told to)."""
    try:
        found = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc: the usual range
        found = list(range(3, 1024))
    for fd in found:
        if fd > 2:
            with contextlib.suppress(OSError):  # the listing's own, now closed
                os.set_inheritable(fd, False)


def become_subreaper() -> bool:
    """On Linux, make reentr the child subreaper of its descendants: a process that leaves
    its group (`setsid`, `setpgid`) and outlives its parent becomes reentr's child, not
    init's, so reentr can still find and stop it. Whether that took effect."""
    found = libc()
    if found is None:
        return False
    try:
        return bool(found.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except AttributeError:
        return False


def strays(groups: set[int], guardian: Guardian) -> list[tuple[int, str]]:
    """reentr's children that it did not start, outside the process `groups` it supervises:
    descendants that left their group and whose parent has died (they came to reentr as its
    subreaper), with their command names. Each belongs to a run that is over. The dead among
    reentr's adopted children are reaped here."""
    found = []
    me = os.getpid()
    for pid, ppid, pgid, state, name in _children():
        if ppid != me or guardian.started(pid):
            continue
        if state in (b"Z", b"X"):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        elif pgid not in groups:
            found.append((pid, name.decode(errors="replace")))
    return found


def stop_strays(found: list[tuple[int, str]], grace: float, *, wait: bool) -> None:
    """SIGTERM to each stray and to its group when it leads one, SIGKILL to what is left after
    `grace` seconds, and reap them: in a thread, or before returning with `wait`."""
    for pid, _ in found:
        _signal_stray(pid, signal.SIGTERM)

    def finish() -> None:
        deadline = time.monotonic() + grace
        left = [pid for pid, _ in found]
        delay = 0.001
        while left:
            left = [pid for pid in left if not _reaped(pid)]
            if left and time.monotonic() > deadline:
                for pid in left:
                    _signal_stray(pid, signal.SIGKILL)
                deadline = float("inf")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    if wait:
        finish()
    else:
        start_thread(finish, name="reentr-strays")


def _signal_stray(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)


def _reaped(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == pid


def _children() -> Iterator[tuple[int, int, int, bytes, bytes]]:
    """(pid, parent pid, process group, state, command name) of each of reentr's children
    (`_children_of`; without `children` files, of every process /proc shows). The look
    follows the stop of a group, before the next start: a scan of every process took 1.7 ms
    there, on a machine running 100, and held up each restart with a build by as much."""
    children = _children_of(os.getpid())
    if children is None:
        yield from _processes()
        return
    for pid in sorted(set(children)):
        if (found := _stat(pid)) is not None:
            yield found


def _children_of(pid: int) -> list[int] | None:
    """The children of every thread of `pid` (a child is its parent thread's), from each
    thread's `children` in /proc: a few reads, however many processes the machine runs. []
    once `pid` is gone (or without /proc), None where the kernel keeps no such files."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", "rb") as f:
                found += [int(child) for child in f.read().split()]
        except OSError:
            if os.path.isdir(f"/proc/{pid}/task/{task}"):
                return None  # a kernel without them (else a thread that just ended)
    return found


def _processes() -> Iterator[tuple[int, int, int, bytes, bytes]]:
    """(pid, parent pid, process group, state, command name) of every process /proc shows."""
    # Listed whole before the first is given: a caller that stops early (`any`) leaves no
    # directory open behind it.
    try:
        with os.scandir("/proc") as entries:
            pids = [int(entry.name) for entry in entries if entry.name.isdigit()]
    except OSError:
        return
    for pid in pids:
        if (found := _stat(pid)) is not None:
            yield found


def _stat(pid: int) -> tuple[int, int, int, bytes, bytes] | None:
    """(pid, parent pid, process group, state, command name) from /proc/PID/stat, or None
    when it cannot be read (gone, or no /proc)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name is in parentheses and may contain anything, ")" included.
    name, fields = stat.split(b"(", 1)[1].rsplit(b")", 1)
    parts = fields.split()
    return (pid, int(parts[1]), int(parts[2]), parts[0], name) if len(parts) > 2 else None


class Guardian:
    """A tiny process that outlives reentr only to kill its children's process groups.

    reentr tells it every group it starts (`+PGID`) and every group that is gone (`-PGID`)
    through a pipe only reentr holds. When reentr ends, however it ends (SIGKILL included),
    the kernel closes the pipe; the guardian reads EOF and sends SIGKILL to every group still
    listed, grandchildren included. This replaces `PR_SET_PDEATHSIG`, which reaches only the
    direct child and needs code between fork and exec: that makes Python fork instead of
    vfork, which costs about 1.5 ms on every start.
    """

    def __init__(self, on_lost: Callable[[str], None] = lambda _: None) -> None:
        self._lock = threading.Lock()
        self._groups: set[int] = set()
        self._started: set[int] = set()
        """The PIDs of every process reentr started itself (its targets, builds, the
        guardian, notify-send), until reaped: a child of reentr that is not one of them is a
        descendant that outlived its parent (see `strays`)."""
        self._started_lock = threading.Lock()
        """Apart from `_lock`, which is held while a new guardian is started (`_watch`)."""
        self._closing = False
        self._on_lost = on_lost
        self._popen = self._start()

    def own(self, popen: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
        """Note a process reentr started (`forget` it once reaped)."""
        with self._started_lock:
            self._started.add(popen.pid)
        return popen

    def forget(self, popen: subprocess.Popen[bytes]) -> None:
        with self._started_lock:
            self._started.discard(popen.pid)

    def started(self, pid: int) -> bool:
        """Whether reentr started `pid` itself (and has not reaped it yet)."""
        with self._started_lock:
            return pid in self._started

    def _start(self) -> subprocess.Popen[bytes]:
        popen = self.own(subprocess.Popen(
            ["/bin/sh", "-c", _GUARDIAN], stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, start_new_session=True,
        ))
        start_thread(self._watch, popen, name="reentr-guardian")
        return popen

    def _watch(self, popen: subprocess.Popen[bytes]) -> None:
        """If the guardian dies while reentr runs (someone killed it), start another one and
        tell it every group: a SIGKILL of reentr must still take its children along."""
        status = popen.wait()
        self.forget(popen)
        with self._lock:
            if self._closing:
                return
            self._popen = self._start()
            for pgid in self._groups:
                self._write(f"+{pgid}\n")
        count = len(self._groups)
        self._on_lost(f"the guardian (pid {popen.pid}) ended ({describe_status(status)}); "
                      f"another one (pid {self._popen.pid}) now holds its {count} process "
                      f"group{'s' * (count != 1)}")

    def hold(self, pgid: int) -> None:
        with self._lock:
            self._groups.add(pgid)
            self._write(f"+{pgid}\n")

    def release(self, pgid: int) -> None:
        with self._lock:
            self._groups.discard(pgid)
            self._write(f"-{pgid}\n")

    def _write(self, line: str) -> None:
        stdin = self._popen.stdin
        assert stdin is not None
        with contextlib.suppress(OSError, ValueError):
            stdin.write(line.encode())
            stdin.flush()

    def close(self) -> None:
        """Let the guardian go: it kills what is still listed (nothing, after a clean stop)."""
        with self._lock, contextlib.suppress(OSError):
            self._closing = True
            assert self._popen.stdin is not None
            self._popen.stdin.close()
        try:
            self._popen.wait(5.0)
        except subprocess.TimeoutExpired:
            self._popen.kill()
            self._popen.wait()


@dataclass
class Child:
    role: Role
    popen: subprocess.Popen[bytes]
    started_ns: int

    @property
    def pid(self) -> int:
        return self.popen.pid


def start(
    role: Role,
    argv: Sequence[str],
    events: Queue,
    env: Mapping[str, str],
    guardian: Guardian,
    *,
    to_stderr: bool = False,
    on_line: Callable[[bytes], None] | None = None,
    pass_fds: Sequence[int] = (),
    tty: int | None = None,
    foreground: Callable[[], None] | None = None,
    cwd: str | None = None,
    label: bytes = b"",
) -> Child:
    """Start `argv` as the leader of a new session and process group, in `cwd` if given.

    The child's stdin is /dev/null: it is not in the terminal's foreground group, so it could
    not read the terminal anyway (entr does the same under -r). With `to_stderr`, its stdout
    goes to reentr's stderr too (the build's output: it is shown once, as it comes, in order).
    With `on_line` instead, stdout and stderr each go through a pipe of
    their own and on to reentr's stdout and stderr unchanged, chunk by chunk, and every
    complete line is also given to `on_line` (the line readiness probe). With a `label`
    (`reentr up`), both go through pipes too, and each line is written whole, behind the
    label, so that the lines of several services interleave but never mix. The descriptors in
    `pass_fds` stay open in the child at the same numbers (the `--socket` sockets).

    With `tty` (an interactive utility), the terminal is its stdin, and `foreground` runs in
    it before the exec: it puts the child in a process group of its own, in the same session,
    and makes that group the terminal's foreground. (That code between fork and exec makes
    Python fork rather than vfork: only such a utility pays for it.) A stop of it by the
    terminal (Ctrl-Z) is reported as `JobStopped`.

    Raises:
        OSError: the program could not be started (not found, not executable).
    """
    stdout: int | None = None
    stderr: int | None = None
    if on_line is not None or label:
        stdout = stderr = subprocess.PIPE
    elif to_stderr:
        stdout = 2
    # The descriptors to pass are made inheritable for the start, and every other one of
    # reentr's is close-on-exec (Python opens them so, and `own_descriptors` marks those it
    # inherited): so close_fds=False passes exactly these. With close_fds=True and pass_fds,
    # Python would close each of reentr's descriptors one by one in the child, 5 ms per start
    # with `--fd-store`'s 2,000, where the kernel drops close-on-exec ones at once.
    for fd in pass_fds:
        os.set_inheritable(fd, True)
    try:
        for attempt in range(_ETXTBSY_TRIES):
            try:
                popen = subprocess.Popen(
                    list(argv),
                    stdin=subprocess.DEVNULL if tty is None else tty,
                    stdout=stdout,
                    stderr=stderr,
                    env=dict(env),
                    start_new_session=tty is None,
                    preexec_fn=foreground,  # noqa: PLW1509 (it only sets the process group)
                    close_fds=False,
                    cwd=cwd,
                )
                break
            except OSError as error:
                if error.errno != errno.ETXTBSY or attempt == _ETXTBSY_TRIES - 1:
                    raise
                time.sleep(0.001)
    finally:
        for fd in pass_fds:
            os.set_inheritable(fd, False)
    child = Child(role, guardian.own(popen), time.monotonic_ns())
    guardian.hold(child.pid)
    if on_line is not None or label:
        for stream, fd in ((popen.stdout, 2 if to_stderr else 1), (popen.stderr, 2)):
            assert stream is not None
            if label:
                start_thread(_labelled, stream, fd, label, on_line, name=f"reentr-output-{fd}")
            else:
                assert on_line is not None
                start_thread(_pass_through, stream, fd, on_line, name=f"reentr-output-{fd}")
    start_thread(_reap, child, events, guardian, tty is not None,
                 name=f"reentr-{role.value}-reaper")
    return child


def _labelled(
    stream: IO[bytes], fd: int, label: bytes, on_line: Callable[[bytes], None] | None
) -> None:
    """Copy the child's output to reentr's `fd` a whole line at a time, each behind `label`
    (one write each: lines of several writers never mix), and hand each line to `on_line`. A
    line longer than `_LONGEST_LINE` is written in pieces, and the last one when the stream
    ends, even without its newline."""
    partial = b""
    with stream:
        while True:
            chunk = os.read(stream.fileno(), 65536)
            *lines, partial = (partial + chunk).split(b"\n")
            if not chunk and partial:
                lines, partial = [partial], b""
            while len(partial) > _LONGEST_LINE:
                lines.append(partial[:_LONGEST_LINE])
                partial = partial[_LONGEST_LINE:]
            if lines:
                with contextlib.suppress(OSError):  # nobody reads reentr's output: keep draining
                    _write_all(fd, b"".join(label + line + b"\n" for line in lines))
                if on_line is not None:
                    for line in lines:
                        on_line(line)
            if not chunk:
                return


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _pass_through(stream: IO[bytes], fd: int, on_line: Callable[[bytes], None]) -> None:
    """Copy the child's output to reentr's `fd` as it comes, and hand each complete line to
    `on_line`. A chunk that ends mid-line waits up to `_REST_OF_LINE_S` for the rest: a line
    written in two pieces (Python's unbuffered `print` writes the text, then the newline)
    then goes out whole, and no line of reentr's lands inside it; a prompt with no newline
    is held back no longer than that."""
    partial = b""
    source = stream.fileno()
    with stream:
        while chunk := os.read(source, 65536):
            give_up = time.monotonic() + _REST_OF_LINE_S
            while not chunk.endswith(b"\n") and (left := give_up - time.monotonic()) > 0 \
                    and readable([source], left):
                more = os.read(source, 65536)
                if not more:
                    break
                chunk += more
            with contextlib.suppress(OSError):  # nobody reads reentr's output: keep draining
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
            *lines, partial = (partial + chunk).split(b"\n")
            for line in lines:
                on_line(line)
            partial = partial[-_LONGEST_LINE:]


def _reap(child: Child, events: Queue, guardian: Guardian, job_control: bool) -> None:
    while job_control:
        # Not reaped here (WNOWAIT): Popen does that below, so that it knows the status.
        try:
            seen = os.waitid(os.P_PID, child.pid, os.WEXITED | os.WSTOPPED | os.WNOWAIT)
            if seen is None or seen.si_code != os.CLD_STOPPED:
                break
            os.waitid(os.P_PID, child.pid, os.WSTOPPED)  # this stop is taken: wait for the next
        except ChildProcessError:
            break
        events.put(JobStopped(child.pid))
    status = child.popen.wait()
    guardian.forget(child.popen)
    now = time.monotonic_ns()
    # Most often the group ended with its leader: that is known before the exit is put (one
    # system call), and the loop then takes both events at once, where it and this thread
    # would otherwise pass the interpreter's lock back and forth, 0.3-0.7 ms of a restart.
    left = _group_exists(child.pid)
    if not left:
        guardian.release(child.pid)
    events.put(ProcessExited(child.role, child.pid, status, (now - child.started_ns) / 1e9, now))
    if left:
        delay = 0.001
        while group_alive(child.pid):
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        guardian.release(child.pid)
    events.put(GroupEmptied(child.role, child.pid))


def start_helper(
    argv: Sequence[str], *, stdin: bytes, output: int, cwd: str | os.PathLike[str]
) -> subprocess.Popen[bytes]:
    """Start a program that reentr drives but does not supervise (`reentr bench` runs reentr
    itself so): in a process group of its own, `stdin` written and closed, its stdout and
    stderr to the file descriptor `output`. Stop it with `stop_helper`."""
    popen = subprocess.Popen(list(argv), stdin=subprocess.PIPE, stdout=output, stderr=output,
                             cwd=cwd, start_new_session=True)
    assert popen.stdin is not None
    with popen.stdin, contextlib.suppress(BrokenPipeError):
        popen.stdin.write(stdin)
    return popen


def stop_helper(popen: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGINT to the helper's group (reentr then stops its own children and exits), and
    SIGKILL if it is still there after `grace` seconds."""
    signal_group(popen.pid, signal.SIGINT)
    try:
        popen.wait(grace)
    except subprocess.TimeoutExpired:
        signal_group(popen.pid, signal.SIGKILL)
        popen.wait()


def output_of(argv: Sequence[str], cwd: str | os.PathLike[str]) -> str | None:
    """The stripped stdout of a quick query (`git config ...`); None if it fails or is absent.
    Waited for before it returns (10 s at most): no process of it outlives the call. reentr
    asks before it starts anything, so no `strays` look can see it meanwhile."""
    try:
        done = subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, timeout=10,
                              check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def notify_desktop(guardian: Guardian, title: str, body: str) -> None:
    """A desktop notification through `notify-send`, where it exists; where it does not,
    nothing at all (`--notify` on a server without a desktop is not an error). It is one of
    reentr's own processes (never taken for a stray), waited for in a thread, and killed if it
    has not ended in 10 s, so that a notification daemon that hangs cannot hold reentr."""
    program = shutil.which("notify-send")
    if program is None:
        return
    try:
        popen = guardian.own(subprocess.Popen(
            [program, "--app-name=reentr", title, body], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
    except OSError:
        return

    def reap() -> None:
        try:
            popen.wait(10)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()
        guardian.forget(popen)

    start_thread(reap, name="reentr-notify-send")


def suspend_self() -> None:
    """Stop reentr, as the terminal stops a job (SIGSTOP: it cannot be caught); this returns
    once something continues it (`fg`, `bg`, SIGCONT)."""
    os.kill(os.getpid(), signal.SIGSTOP)


def leader_exited(child: Child) -> bool:
    """Whether the child itself has exited, reaped or not (its group may live on)."""
    if child.popen.returncode is not None:
        return True
    found = _stat(child.pid)
    if found is None:
        return sys.platform == "linux"  # gone from /proc: reaped, its event on the way
    return found[3] in (b"Z", b"X")


def signal_group(pgid: int, signum: int) -> None:
    """Send `signum` to every process in the group; a group already gone is not an error."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def in_group(pid: int, pgid: int) -> bool:
    """Whether the process `pid` exists and belongs to the group `pgid`: one system call, so a
    readiness probe can ask it of every number an answer holds."""
    if pid <= 0:
        return False  # getpgid(0) is the caller's own group
    try:
        return os.getpgid(pid) == pgid
    except OSError:
        return False


def parent(pid: int) -> int | None:
    """The parent of `pid` (from /proc), or None when it cannot be told."""
    found = _stat(pid)
    return None if found is None else found[1]


def members(pgid: int) -> list[int]:
    """The processes of the group `pgid` that descend from its leader (`_children_of`;
    without `children` files every process /proc shows of the group; elsewhere none)."""
    found, todo = [], [pgid]
    while todo:
        pid = todo.pop()
        if not in_group(pid, pgid):
            continue
        found.append(pid)
        children = _children_of(pid)
        if children is None:  # no `children` files here
            return list(_live_in(pgid))
        todo += children
    return found


def _group_exists(pgid: int) -> bool:
    """Whether the group has any process left, zombies included."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def group_alive(pgid: int) -> bool:
    """Whether any live (not zombie) process is left in the group.

    `killpg(pgid, 0)` also succeeds for zombies, and orphaned zombies stay forever in a
    container whose PID 1 does not reap, so on Linux the group's members are read from /proc.
    """
    if not _group_exists(pgid):
        return False
    if not os.path.isdir("/proc/self"):
        return True
    return any(_live_in(pgid))


def _live_in(pgid: int) -> Iterator[int]:
    """Every live (not zombie) process /proc shows in the group `pgid`."""
    return (pid for pid, _, group, state, _ in _processes()
            if group == pgid and state not in (b"Z", b"X"))


def ignores_signal(pid: int, signum: int) -> bool:
    """Whether the process has `signum` ignored (SigIgn in /proc/PID/status), where readable."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("SigIgn:"):
                    return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    except (OSError, ValueError):
        pass
    return False


INHERITED_PROTOCOL = ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES")
"""Set for reentr by whatever started it, they describe reentr's sockets, not the child's:
passed on, a server would talk to another supervisor, or take descriptors it does not have.
reentr sets them itself for `--ready-notify` and `--socket`."""


def child_env(base: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """The child's environment: `base` without `INHERITED_PROTOCOL`, with entr's defaults for
    PAGER and SHELL, then `extra`."""
    env = {name: value for name, value in base.items() if name not in INHERITED_PROTOCOL}
    # entr sets these when unset, so a pager cannot block a run (entr(1), ENVIRONMENT).
    env.setdefault("PAGER", "/bin/cat")
    env.setdefault("SHELL", "/bin/sh")
    env.update(extra)
    return env
