"""The vocabulary of the loop: events that happened (past tense) and actions to carry out.

Threads and signal handlers only ever create events and put them on the runner's queue;
`policy.step` turns each event into actions; `runner.py` carries the actions out.
"""

from __future__ import annotations

import enum
import signal
from typing import Protocol

from reentr.records import evolve, record
from reentr.timing import Timeline


class Role(str, enum.Enum):
    """Which of reentr's two kinds of child a process is."""

    BUILD = "build"
    TARGET = "target"


class Timer(str, enum.Enum):
    """What a timer is for."""

    GRACE = "grace"
    """The stop signal's grace: when it ends, SIGKILL."""
    BACKOFF = "backoff"
    """`--on-exit restart`: the wait before starting a target that exited by itself."""
    DELAY = "delay"
    """`--delay-run`: the wait before a start."""
    LOOP_HOLD = "loop-hold"
    """The loop guard's quiet wait before a held path's run of its own (`loops.due`); its
    `pid` names which holding."""
    LOOP_CHECK = "loop-check"
    """The loop guard's wait for the writes of a run made for muted paths (`loops.settled`);
    its `pid` names which asking."""


class Note(str, enum.Enum):
    """What a status line says (`Say`); `report.py` words each."""

    CHANGED = "changed"
    EXITED = "exited"
    START_FAILED = "start-failed"
    BUILD_FAILED = "build-failed"
    BUILD_SUCCEEDED = "build-succeeded"
    KILLED = "killed"
    SIGNALLED = "signalled"
    HANDED_OFF = "handed-off"
    ROLLED_BACK = "rolled-back"
    LOOP = "loop"
    STORM = "storm"
    OUTPUTS = "outputs"
    NOT_CHANGES = "not-changes"
    PORT_TAKEN = "port-taken"
    DIRECTORY_ALTERED = "directory-altered"
    WATCHER_FAILED = "watcher-failed"


# Events ---------------------------------------------------------------------------------------


@record
class Began:
    """The loop started and the watch is in place (under `reentr up`: the service's
    dependencies are ready too)."""

    service: str | None = None


@record
class Traits:
    """What a changed path's content and the tree's history say of who wrote it, as the
    watcher saw them (`outputs.py` judges). The defaults say nothing."""

    read: bool = False
    """Its content was looked at: `empty`, `binary` and `generated` are known."""
    created: bool = False
    """The batch saw it made."""
    gone: bool = False
    """It no longer exists."""
    empty: bool = False
    binary: bool = False
    """A NUL byte in its first 8,000 bytes (git's test)."""
    generated: bool = False
    """It says so near its top (`@generated`, `DO NOT EDIT`)."""
    cache: str | None = None
    """The directory tagged as a cache (CACHEDIR.TAG) it lies in."""
    named: str | None = None
    """The outermost directory it lies in, below a watched root, whose name is one that build
    tools give their outputs (`dist/`, `build/`, `out/`: `watch/traits.py`)."""
    born: tuple[tuple[str, int, int], ...] = ()
    """The directories above it that appeared while reentr watched, the outermost first, each
    with when it appeared (from its modification time) and when reentr first saw it
    (monotonic ns)."""

    def text(self) -> bool:
        """Text with content, as an editor writes."""
        return self.read and not (self.gone or self.empty or self.binary or self.generated)


@record
class FilesChanged:
    """A batch of changes to watched files, gathered by the watcher."""

    paths: tuple[str, ...]
    """Absolute paths, the leading edge (the file written first) first."""
    detected_ns: int
    written_ns: tuple[int, ...] = ()
    """When each path was written (its modification time on the monotonic clock, never after
    `detected_ns`); `detected_ns` for each when not given."""
    scope: str | None = None
    """The service whose tree wants these paths (`reentr up`); None for a single run."""
    traits: tuple[Traits, ...] = ()
    """Each path's traits, in the order of `paths`; () when the watcher gave none."""
    held: bool = False
    """`reentr up`: its service waits for those it depends on to restart for this change
    too: it builds now, and swaps its target once `Released`."""

    def written(self) -> tuple[int, ...]:
        return self.written_ns or (self.detected_ns,) * len(self.paths)

    def only(self, paths: tuple[str, ...]) -> FilesChanged:
        """This change with only `paths` (in their order there), their write times and
        traits."""
        index = {path: i for i, path in enumerate(self.paths)}
        written = self.written()
        return evolve(
            self, paths=paths, written_ns=tuple(written[index[p]] for p in paths),
            traits=tuple(self.traits[index[p]] for p in paths) if self.traits else ())


@record
class DirectoryAltered:
    """`-d`: a watched directory gained or lost an entry."""


@record
class KeyPressed:
    key: str


@record
class SignalReceived:
    signum: int


@record
class ProcessStarted:
    role: Role
    pid: int
    at_ns: int
    kept: int = 0
    """How many descriptors of the store (`--fd-store`) it was given."""


@record
class ProcessStartFailed:
    role: Role
    reason: str
    service: str | None = None


@record
class ProcessExited:
    """The process group's leader exited; others in its group may still be running."""

    role: Role
    pid: int
    status: int
    """`Popen.returncode`: the exit status, or -N when killed by signal N."""
    ran_s: float = 0.0
    """How long the process ran."""
    at_ns: int = 0
    """When reentr saw it exit, on the monotonic clock."""


@record
class GroupEmptied:
    """The last live process of the group led by `pid` is gone."""

    role: Role
    pid: int


@record
class JobStopped:
    """A utility that holds the terminal was stopped by it (Ctrl-Z): the job stops with it."""

    pid: int


@record
class Warned:
    """A thread has something to tell the user (the notify socket refused a message, the
    guardian was replaced): the loop says it, in the service's name when it has one."""

    text: str
    service: str | None = None


@record
class TargetReady:
    """The readiness probe succeeded for the target `pid`."""

    pid: int
    at_ns: int


@record
class TargetServes:
    """`--handoff`: after the target `pid` was ready and its predecessor was told to stop, a
    connection to the held socket was taken by a process of its group (`at_ns`), which is
    when clients meet the new version; `at_ns` is None where that cannot be seen (a Unix
    socket, no /proc) or was not seen in time."""

    pid: int
    at_ns: int | None


@record
class ReadyTimedOut:
    """The target `pid` did not become ready within the probe's timeout."""

    pid: int


@record
class TimerFired:
    name: Timer
    pid: int
    service: str | None = None
    """The service whose policy set it (`reentr up`): a timer is its service's, whatever
    became of the process it names (the back-off's target is gone, a delay names none)."""


@record
class WatcherFailed:
    reason: str


@record
class Released:
    """`reentr up`: the services that the held change's service depends on serve again: it
    may stop its old target and start the new one."""

    service: str
    at_ns: int


@record
class RestartAsked:
    """`reentr restart NAME`, from another terminal, asked the running `reentr up` to restart
    a service; or space did, for each service in dependency order (`by_key`)."""

    service: str
    by_key: bool = False


class Queue(Protocol):
    """Where events go: the runner's `EventQueue`, whose `put` is safe in a signal handler."""

    def put(self, item: Event) -> None: ...


Event = (
    Began
    | FilesChanged
    | DirectoryAltered
    | KeyPressed
    | SignalReceived
    | ProcessStarted
    | ProcessStartFailed
    | ProcessExited
    | GroupEmptied
    | JobStopped
    | Warned
    | TargetReady
    | TargetServes
    | ReadyTimedOut
    | TimerFired
    | WatcherFailed
    | RestartAsked
    | Released
)


# Actions --------------------------------------------------------------------------------------


@record
class Start:
    role: Role
    trigger: str | None = None
    """The leading-edge changed file, for `/_` and `$0`; None before the first change."""
    changed: tuple[str, ...] = ()
    """Every file changed since the target last started, the leading edge first."""


@record
class SignalGroup:
    """Send `signum` to the whole process group of `pid`."""

    role: Role
    pid: int
    signum: signal.Signals
    stop: bool = False
    """This is the stop signal of a stop with escalation, not `--signal`."""


@record
class SetTimer:
    name: Timer
    pid: int
    seconds: float


@record
class ClearScreen:
    level: int


@record
class Say:
    """A status line for the user; `report.py` words it."""

    what: Note
    role: Role | None = None
    status: int | None = None
    detail: str = ""
    """Words of the OS or the user's: a reason a start failed, a path, an address."""
    paths: tuple[str, ...] = ()
    pid: int | None = None
    """The target that serves (a handoff, a roll-back), if any."""
    seconds: float | None = None
    """How long it was given (`KILLED`: the stop timeout)."""
    signum: int | None = None
    """The signal sent (`SIGNALLED`)."""


@record
class Triggered:
    """A change (or the space key) was accepted: a restart's timeline begins."""

    change: FilesChanged | None = None
    """The change, less the paths the loop guard mutes: the first of them is the trigger."""
    let_through: bool = False
    """A change the loop guard held until the runs were over: the time since it was seen is
    a wait (`Timeline.taken`), not its detection."""


@record
class Restarted:
    """Restart number `number` has served: its line, its `restart` event, its summary row."""

    number: int
    timeline: Timeline


@record
class Exit:
    status: int


Action = Start | SignalGroup | SetTimer | ClearScreen | Say | Triggered | Restarted | Exit
