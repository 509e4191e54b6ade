"""Tables: `.env` files as foreman, honcho and python-dotenv read them, and Procfiles as foreman
and honcho read them; an error names the file and the line, never a value."""

from __future__ import annotations

import pytest

from reentr.dotenv import expand, parse_env, parse_procfile
from reentr.errors import UsageError


@pytest.mark.parametrize(("text", "expected"), [
    ("A=1\nB=two words\n", {"A": "1", "B": "two words"}),
    ("# a comment\n\n  A = 1  \n", {"A": "1"}),
    ("export A=1\n", {"A": "1"}),
    ("A='single $HOME \\n kept'\n", {"A": "single $HOME \\n kept"}),
    ('A="line\\nnext \\"quoted\\" \\\\"\n', {"A": 'line\nnext "quoted" \\'}),
    ("A=1 # a comment\n", {"A": "1"}),
    ("A=a#b\n", {"A": "a#b"}),  # a # inside a word is the value's
    ('A="x" # comment\n', {"A": "x"}),
    ("A=\n", {"A": ""}),
    ("HOST=db\nURL=postgres://${HOST}/app\n", {"HOST": "db", "URL": "postgres://db/app"}),
    ('FROM_ENV="${INHERITED}-x"\n', {"FROM_ENV": "given-x"}),
    ("MISSING=${NOT_SET}\n", {"MISSING": ""}),
    ("A=1\nA=2\n", {"A": "2"}),
])
def test_env_files_are_read_as_their_users_write_them(text: str, expected: dict[str, str]) -> None:
    assert parse_env(text, ".env", {"INHERITED": "given"}) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("just words\n", ".env:1: not KEY=value"),
    ("A=1\n9A=2\n", ".env:2: not KEY=value"),
    ('TOKEN="s3cr3t\n', ".env:1: the value of TOKEN opens a \" quote and does not close it"),
    ("TOKEN='s3cr3t' more\n", ".env:1: the value of TOKEN goes on after its closing quote"),
])
def test_a_bad_env_line_is_named_and_its_value_never_shown(text: str, message: str) -> None:
    with pytest.raises(UsageError) as raised:
        parse_env(text, ".env", {})
    assert str(raised.value).startswith(message)
    assert "s3cr3t" not in str(raised.value)


def test_a_procfile_is_read_as_foreman_reads_it() -> None:
    text = ("# processes\nweb: gunicorn app:app --bind 0.0.0.0:$PORT\n\n"
            "worker:python worker.py && echo done\nclock-2 :  ./clock  \n")
    assert parse_procfile(text, "Procfile") == [
        ("web", "gunicorn app:app --bind 0.0.0.0:$PORT"),
        ("worker", "python worker.py && echo done"),
        ("clock-2", "./clock"),
    ]


@pytest.mark.parametrize(("text", "message"), [
    ("web ./server\n", "Procfile:1: not 'name: command'"),
    ("web: a\nweb: b\n", "Procfile:2: the process 'web' is named twice"),
    ("# nothing\n", "Procfile: no processes"),
])
def test_a_bad_procfile_line_is_named(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_procfile(text, "Procfile")


def test_an_env_table_expands_names_from_itself_then_the_environment() -> None:
    table = {"URL": "http://${HOST}:${PORT}/", "HOST": "db", "COPY": "${HOST}", "RAW": "$HOME"}
    assert expand(table, {"PORT": "5432", "HOST": "outer"}) == {
        "URL": "http://outer:5432/", "HOST": "db", "COPY": "db", "RAW": "$HOME"}
