#!/usr/bin/env python3
"""Write reentr's shell completion scripts into this folder, from the installed reentr:

    python completions/generate.py

tests/test_completions.py regenerates them and fails if these files differ.
"""

from pathlib import Path

from reentr.cli.completion import COMPLETION_FILES, completion_script

for shell, name in COMPLETION_FILES.items():
    (Path(__file__).parent / name).write_text(completion_script(shell))
