"""What each command's `--help` says after its options, as entr's man page does after its
own: keys, exit status, the other commands, and examples. A section is a title and rows of
(term, what it means)."""

from __future__ import annotations

Section = tuple[str, list[tuple[str, str]]]
EXAMPLES = "Examples"
"""A section of (command line, what it does), shown as a man page shows them."""

_EXIT_ROWS = [
    ("0", "q or SIGHUP"),
    ("1", "an error (one line on stderr says which and how to fix it)"),
    ("2", "-d saw a directory gain or lose a file"),
    ("N", "with -z, the utility's status (128+N if killed by signal N)"),
    ("130", "Ctrl-C (SIGINT), once the utility has stopped: reentr ends by SIGINT, so a shell "
            "loop around it stops"),
    ("143", "SIGTERM, once the utility has stopped"),
]

_KEYS = ("Keys (when a terminal is present)", [
    ("space, or rs Enter", "run the utility now (restart it with -r)"),
    ("q", "quit"),
    ("Ctrl-Z", "suspend reentr and the utility together; fg resumes both"),
])

SECTIONS: dict[str, list[Section]] = {
    "entr-mode": [
        ("Arguments of the utility", [
            ("/_", "the first argument that is exactly /_ becomes the first changed file"),
        ]),
        _KEYS,
        ("Exit status", _EXIT_ROWS),
        ("Commands", [
            ("reentr watch", "watch trees, with git's ignores, and run a command after --"),
            ("reentr bench", "measure restarts of the sample app, or of your own"),
            ("reentr explain", "say whether a path is watched, and which rule decided"),
            ("reentr up", "run the services of reentr.toml, each restarted alone"),
            ("reentr restart", "restart one service of a running reentr up"),
            ("", "each has --help"),
        ]),
        ("Shell completion", [
            ("--install-completion", "add one line to your shell's startup file (bash, zsh, "
                                     "fish)"),
            ("--show-completion", "print the completion script instead"),
        ]),
        (EXAMPLES, [
            ("ls *.py | reentr -r python app.py", "restart a server on every save"),
            ("ls *.c | reentr -s 'make && ./test \"$0\"'", "a shell command; $0 is the changed "
                                                          "file"),
            ("ls *.go | reentr --build 'go build -o app .' -r ./app",
             "build, then restart only if the build succeeds"),
            ("ls *.py | reentr -r --socket 8000 --ready-url http://127.0.0.1:8000/ "
             "python app.py", "hold the port across restarts; ready once it answers"),
            ("ls *.conf | reentr --signal SIGHUP ./server", "ask a server to reload itself"),
            ("while true; do ls -d src/* | reentr -d make; done",
             "list the files again when one is added"),
        ]),
    ],
    "watch": [
        ("The command", [
            ("/_", "the first word that is exactly /_ becomes the first changed file"),
            ("$REENTR_CHANGED",
             "the files changed since the last start, one per line (32 KiB at most)"),
            ("$REENTR_CHANGED_FILE", "a file that lists every one of them"),
            ("reentr -- watch ...", "runs a utility named watch in entr mode"),
        ]),
        _KEYS,
        ("Exit status", [row for row in _EXIT_ROWS if row[0] != "2"]),
        (EXAMPLES, [
            ("reentr watch src -- make", "run make whenever a file under src changes"),
            ("reentr watch -e go,mod,sum --build 'go build -o app .' -r -- ./app",
             "the Go loop: build, then restart"),
            ("reentr watch -r --socket 8000 --ready-url http://127.0.0.1:8000/ -- "
             "gunicorn app:app", "no refused connection while it restarts"),
            ("reentr watch --handoff --socket 8000 --ready-line 'Uvicorn running' -- "
             "uvicorn --fd 3 app:app", "the old server serves until the new one does"),
            ("reentr watch --ignore 'generated/' -e py -- pytest -q", "tests on every save"),
            ("reentr watch --events restarts.jsonl -r -- ./server",
             "every restart's stages as JSON lines"),
            ("reentr watch --list", "the files reentr would react to"),
        ]),
    ],
    "bench": [
        (EXAMPLES, [
            ("reentr bench", "the built-in app, in all four modes"),
            ("reentr bench --port 8000 --edit app.py -- python app.py",
             "your own app (it must listen on --port); app.py's bytes are restored"),
            ("reentr bench --runs 50 --mode socket,handoff --json figures.json",
             "more edits, two modes, every figure as JSON"),
        ]),
    ],
    "explain": [
        (EXAMPLES, [
            ("reentr explain build/app.log", "which ignore file, line and pattern decided"),
            ("reentr explain -e go src/main.go src/notes.md", "with the filters of a watch"),
        ]),
    ],
}
