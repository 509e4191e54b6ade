"""Tables for the pure parsing of signals, durations and statuses."""

from __future__ import annotations

import signal

import pytest

from reentr.config import parse_duration, parse_signal, shell_status
from reentr.errors import UsageError
from reentr.report import describe_status


@pytest.mark.parametrize(
    ("text", "expected"),
    [("SIGHUP", signal.SIGHUP), ("HUP", signal.SIGHUP), ("hup", signal.SIGHUP),
     ("SigTerm", signal.SIGTERM), ("1", signal.SIGHUP), ("15", signal.SIGTERM),
     (" usr1 ", signal.SIGUSR1)],
)
def test_signal_names(text: str, expected: signal.Signals) -> None:
    assert parse_signal(text, "--signal") is expected


@pytest.mark.parametrize("text", ["SIGNOPE", "", "999", "-1", "SIG"])
def test_unknown_signals_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match=r"--signal: unknown signal"):
        parse_signal(text, "--signal")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5", 5.0), ("1.5", 1.5), ("500ms", 0.5), ("2s", 2.0), ("1m", 60.0), (" 3 s ", 3.0)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, "--stop-timeout") == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["soon", "-1s", "5h", ""])
def test_bad_durations(text: str) -> None:
    with pytest.raises(UsageError, match=r"--stop-timeout: .* is not a duration"):
        parse_duration(text, "--stop-timeout")


@pytest.mark.parametrize(
    ("status", "said", "shell"),
    [(0, "exit status 0", 0), (3, "exit status 3", 3), (-9, "killed by SIGKILL", 137),
     (-15, "killed by SIGTERM", 143)],
)
def test_statuses(status: int, said: str, shell: int) -> None:
    assert describe_status(status) == said
    assert shell_status(status) == shell
