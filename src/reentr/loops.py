"""The feedback-loop guard: which changed paths were written by reentr's own runs, and when a
path that keeps being rewritten by the runs it triggers stops counting as a change.

A command that writes into its own watched tree (a build output, a log, a generated file)
would otherwise run forever: the run writes the file, the write starts the next run. Pure:
the policy feeds it the moments its processes started, became ready and ended, and the write
time of every changed path.

A change is the runs' own when the path was written while a run could have written it:
- while a build ran, or a utility that runs to completion (without `-r`);
- while a restarted target was starting: from its start until its readiness probe succeeded,
  or until it exited, if it exited by itself. A target without a readiness probe that keeps
  running has no such span: reentr cannot tell its start-up from the time after, when the
  user edits.
A path whose last `ROUNDS` changes were all the runs' own is muted, but not yet given up: a
user who saves a file again and again while its builds run (an editor's autosave, a few quick
saves during a slow build) looks the same so far. Its changes made while a run could write
them are held (a build under way for an older content is stopped, as for any change: make would
otherwise take its output for newer than the save), and once the runs are over and the path
has been quiet for `QUIET_S` (`due`), one run is made for the path alone, on its content of
then: the user's last save, if the saves were the user's, whom that pause lets finish. A loop
shows itself there: if that run, and `CHECKS` such runs in a row, write the path again by
themselves, reentr says so (once for a path) and reacts no more to the path's changes made
while a run could write them. If one does not, the path counts again. At any point, a change
made outside every span (nothing of reentr's could have written it: the user) counts, resets
the count, and ends the muting.

A restarted target without a readiness probe that keeps running has no such span, so a
program that writes a file in its tree as it starts (a log) restarts itself for ever, dozens of
times a second. reentr cannot tell that write from a user's save made just as the program
started (a script that edits as soon as the program answers, `reentr bench` itself), so it
mutes nothing there, but a path whose last `STORM_ROUNDS` changes each came within `STORM_NS`
of such a start is said once: such a loop reaches that at once and never stops.
"""

from __future__ import annotations

import enum

from reentr.records import evolve, record

ROUNDS = 3
"""How many of a path's changes in a row may be the runs' own before it stops counting
(changes, not runs: one run's write that reaches reentr in two batches counts twice)."""
CHECKS = 2
"""How many runs made for a muted path alone must write it again before it is a loop."""
STORM_ROUNDS = 20
STORM_NS = 500_000_000
"""How soon after a start without a probe a write counts towards a storm (half a second)."""
KEEP_NS = 60_000_000_000
"""How long an ended span is kept to judge changes detected after it (a minute)."""
SLACK_NS = 10_000_000
"""The kernel stamps a file's modification time from a coarse clock (one tick, up to 10 ms
before the write), so a write just after a start may carry a time just before it."""


class Span(enum.Enum):
    """What part of a process's life counts as the time it could write its own trigger."""

    LIFE = "life"
    """A build, or a utility that runs to completion: its whole life."""
    STARTUP = "startup"
    """A restarted target with a readiness probe: from its start until it is ready."""
    SELF_EXIT = "self-exit"
    """A restarted target without a probe: its life, but only if it ends by itself."""


@record
class Run:
    pid: int
    kind: Span
    start_ns: int
    end_ns: int | None = None


@record
class Guard:
    runs: tuple[Run, ...] = ()
    rounds: tuple[tuple[str, int], ...] = ()
    """Per path, how many of its latest changes in a row were the runs' own."""
    storms: tuple[tuple[str, int], ...] = ()
    """Per path, how many of its latest changes in a row came just after a start without a
    probe."""
    muted: frozenset[str] = frozenset()
    """Paths whose changes made while a run could write them are held, or, once `looping`,
    dropped."""
    held: tuple[tuple[str, int, int], ...] = ()
    """Muted paths with a change held back, with when it was written and when it was seen
    (the latest): a run is made for them once the runs are over and they have been quiet."""
    hold: int = 0
    """Which holding this is (counts every held change: a timer names it, `due`)."""
    checking: frozenset[str] = frozenset()
    """Muted paths whose run of their own was asked for, and has not written them yet."""
    check: int = 0
    """Which asking that was (a timer names it: `settled`)."""
    check_ran: bool = False
    """A run has started since: once it is over, and its writes have had time to be seen,
    the paths it did not write count again (`settled`)."""
    rewrites: tuple[tuple[str, int], ...] = ()
    """Per muted path, how many runs made for it alone wrote it again, in a row."""
    looping: frozenset[str] = frozenset()
    """Muted paths that `CHECKS` runs of their own wrote again: a loop."""
    said: frozenset[str] = frozenset()
    """The paths said to loop: each is said once, whatever becomes of it."""
    stormed: frozenset[str] = frozenset()
    """The paths said to have changed just after each start, `STORM_ROUNDS` times in a row."""


def started(guard: Guard, pid: int, kind: Span, at_ns: int) -> Guard:
    """A process of reentr's started at `at_ns`."""
    kept = tuple(r for r in guard.runs
                 if r.end_ns is None or at_ns - r.end_ns < KEEP_NS)
    return evolve(guard, runs=(*kept, Run(pid, kind, at_ns)),
                  check_ran=guard.check_ran or bool(guard.checking))


def ready(guard: Guard, pid: int, at_ns: int) -> Guard:
    """The target `pid` became ready: its start-up is over."""
    return _end(guard, pid, at_ns, (Span.STARTUP,))


def ended(guard: Guard, pid: int, at_ns: int, *, by_itself: bool) -> Guard:
    """The process `pid` exited at `at_ns`, on its own or because reentr stopped it."""
    if not by_itself:
        # Stopped by reentr: a target without a probe never had a start-up span.
        guard = evolve(guard, runs=tuple(
            r for r in guard.runs if not (r.pid == pid and r.kind is Span.SELF_EXIT)))
    return _end(guard, pid, at_ns, (Span.LIFE, Span.STARTUP, Span.SELF_EXIT))


def _end(guard: Guard, pid: int, at_ns: int, kinds: tuple[Span, ...]) -> Guard:
    return evolve(guard, runs=tuple(
        evolve(r, end_ns=at_ns)
        if r.pid == pid and r.end_ns is None and r.kind in kinds else r
        for r in guard.runs))


def own(guard: Guard, written_ns: int) -> bool:
    """Whether a write at `written_ns` happened while one of reentr's runs could make it."""
    for run in guard.runs:
        if written_ns < run.start_ns - SLACK_NS:
            continue
        if run.end_ns is None:
            if run.kind is not Span.SELF_EXIT:
                return True
        elif written_ns <= run.end_ns:
            return True
    return False


def just_started(guard: Guard, written_ns: int) -> bool:
    """Whether a write came within `STORM_NS` of the start of a target without a probe that
    still runs."""
    return any(run.kind is Span.SELF_EXIT and run.end_ns is None
               and run.start_ns - SLACK_NS <= written_ns <= run.start_ns + STORM_NS
               for run in guard.runs)


def sift(
    guard: Guard, paths: tuple[str, ...], written_ns: tuple[int, ...], detected_ns: int = 0
) -> tuple[Guard, tuple[str, ...], tuple[str, ...]]:
    """The guard after this batch (seen at `detected_ns`), the paths that still count, and
    the paths found looping now, to be said (once for a path)."""
    rounds = dict(guard.rounds)
    storms = dict(guard.storms)
    kept: list[str] = []
    looping_now: list[str] = []
    stormed: list[str] = []
    for path, written in zip(paths, written_ns, strict=True):
        if path in guard.muted:
            if not own(guard, written):
                guard = _unmuted(guard, path)  # nothing of reentr's could write it: the user
                rounds.pop(path, None)
                kept.append(path)
            else:
                guard, looping = _muted_change(guard, path, written, detected_ns)
                looping_now += looping
            continue
        if just_started(guard, written):
            storms[path] = storms.get(path, 0) + 1
            if storms[path] >= STORM_ROUNDS:
                del storms[path]
                stormed.append(path)
        else:
            storms.pop(path, None)
        if not own(guard, written):
            rounds.pop(path, None)
            kept.append(path)
            continue
        rounds[path] = rounds.get(path, 0) + 1
        if rounds[path] >= ROUNDS:
            del rounds[path]
            guard = _hold(evolve(guard, muted=guard.muted | {path}), path, written, detected_ns)
        else:
            kept.append(path)
    guard = evolve(guard, rounds=tuple(rounds.items()),
                                storms=tuple(storms.items()),
                                stormed=guard.stormed | frozenset(stormed))
    return guard, tuple(kept), tuple(looping_now)


def _hold(guard: Guard, path: str, written_ns: int, detected_ns: int) -> Guard:
    return evolve(guard, hold=guard.hold + 1, held=(
        *(h for h in guard.held if h[0] != path), (path, written_ns, detected_ns)))


def _muted_change(
    guard: Guard, path: str, written_ns: int, detected_ns: int
) -> tuple[Guard, list[str]]:
    """A muted path changed while a run could write it: held for a run of its own, or, when
    that run is the one that wrote it, counted towards a loop."""
    if path in guard.looping:
        return guard, []
    if path not in guard.checking:
        return _hold(guard, path, written_ns, detected_ns), []
    rewrites = dict(guard.rewrites)
    rewrites[path] = rewrites.get(path, 0) + 1
    guard = evolve(guard, checking=guard.checking - {path})
    if rewrites[path] >= CHECKS:
        del rewrites[path]
        said = [] if path in guard.said else [path]
        return evolve(guard, rewrites=tuple(rewrites.items()), looping=guard.looping | {path},
                      said=guard.said | {path}), said
    return _hold(evolve(guard, rewrites=tuple(rewrites.items())), path, written_ns,
                 detected_ns), []


def _unmuted(guard: Guard, path: str) -> Guard:
    return evolve(guard, muted=guard.muted - {path},
                  held=tuple(h for h in guard.held if h[0] != path),
                  looping=guard.looping - {path}, checking=guard.checking - {path},
                  rewrites=tuple(r for r in guard.rewrites if r[0] != path))


def running(guard: Guard) -> bool:
    """Whether a run is under way during which a write would be its own."""
    return any(run.end_ns is None and run.kind is not Span.SELF_EXIT for run in guard.runs)


def due(guard: Guard, hold: int) -> tuple[Guard, tuple[tuple[str, int, int], ...]]:
    """`QUIET_S` after holding `hold` began (a later held change makes a later holding), with
    nothing of reentr's running (the policy asks only then: no build, no utility, no target
    starting): the muted paths with a change held back, which get a run of their own now,
    each with when it was written and seen (the change to run for)."""
    if hold != guard.hold or running(guard) or not guard.held:
        return guard, ()
    held = tuple(sorted(guard.held, key=lambda h: h[1]))
    return evolve(guard, held=(), checking=guard.checking | {path for path, _, _ in held},
                  check=guard.check + 1, check_ran=False), held


def settled(guard: Guard, check: int) -> Guard:
    """`SETTLE_S` after the run made for the paths of asking `check` was over (nothing of
    reentr's running since): those it did not write, which would have been seen by now,
    count again."""
    if check != guard.check or not guard.check_ran or running(guard):
        return guard
    for path in guard.checking:
        guard = _unmuted(guard, path)
    return evolve(guard, check_ran=False)


QUIET_S = 0.5
"""How long a held path must have been quiet, nothing of reentr's running, before its run of
its own: a user saving again and again has most likely stopped by then."""
SETTLE_S = 0.5
"""How long after a run made for muted paths alone its writes are waited for: more than the
widest quiet window (100 ms), with room for a loaded machine."""
