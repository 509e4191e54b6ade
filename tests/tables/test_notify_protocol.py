"""systemd's notify protocol (sd_notify(3)), as reentr reads one message: a table."""

from __future__ import annotations

import pytest

from reentr.ready.notify import Message, parse


@pytest.mark.parametrize(("text", "message"), [
    (b"READY=1", Message(ready=True)),
    (b"STATUS=starting\nREADY=1\n", Message(ready=True)),
    (b"FDSTORE=1", Message(store=True, name="stored")),
    (b"FDSTORE=1\nFDNAME=conn", Message(store=True, name="conn")),
    (b"FDSTORE=1\nFDNAME=conn\nFDPOLL=0", Message(store=True, name="conn", poll=False)),
    (b"FDSTOREREMOVE=1\nFDNAME=conn", Message(remove=True, name="conn")),
    (b"READY=0\nFDSTORE=0", Message()),
])
def test_a_message_says_what_its_assignments_say(text: bytes, message: Message) -> None:
    assert parse(text) == message

@pytest.mark.parametrize(("text", "says"), [
    (b"FDSTOREREMOVE=1", "needs FDNAME="),
    (b"FDSTORE=1\nFDNAME=a:b", "is not a name"),
    (b"FDSTORE=1\nFDNAME=", "is not a name"),
    (b"FDSTORE=1\nFDNAME=" + b"x" * 256, "is not a name"),
    (b"FDSTORE=1\nFDNAME=caf\xc3\xa9", "is not a name"),
])
def test_a_bad_name_is_refused_with_the_reason(text: bytes, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse(text)
