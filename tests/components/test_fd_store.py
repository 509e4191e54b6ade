"""The file-descriptor store and the notify socket, against real descriptors and real
processes: duplicates, the limit, hang-ups, who holds what, who may speak."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from conftest import Pair
from helpers import DEADLINE, notify, wait_for
from reentr import sockets
from reentr.ready.notify import Notifier

pytestmark = [pytest.mark.timeout(240)]

Slots = sockets.Slots

@pytest.fixture
def slots() -> Iterator[Slots]:
    """Slots far above this process's own descriptors (a target's begin at 3)."""
    made = sockets.Slots(8, base=900)
    yield made
    made.close()

def test_the_same_open_file_is_kept_once_under_its_first_name(pair: Pair) -> None:
    store = sockets.Store()
    fd, _other = pair()
    store.add([fd, os.dup(fd)], "first", poll=True, by=1)
    store.add([os.dup(fd)], "second", poll=True, by=1)
    other, _other2 = pair()
    store.add([other], "second", poll=True, by=1)
    assert store.names() == ["first", "second"]
    store.close()

def test_the_limit_refuses_the_rest_and_closes_it(pair: Pair) -> None:
    store = sockets.Store(limit=2)
    made = [pair() for _ in range(3)]
    refused = store.add([fd for fd, _ in made], "conn", poll=True, by=1)
    assert refused == 1 and len(store) == 2
    assert made[2][1].recv(1) == b""  # its peer sees the end: reentr holds no copy
    store.close()

def test_a_hang_up_drops_it_unless_it_is_not_polled(slots: Slots, pair: Pair) -> None:
    store = sockets.Store()
    polled, peer = pair()
    unpolled, peer2 = pair()
    state = os.memfd_create("state")  # not pollable: kept, polled or not
    store.add([polled], "a", poll=True, by=1)
    store.add([unpolled], "b", poll=False, by=1)
    store.add([state], "state", poll=True, by=1)
    peer.close()
    peer2.close()
    wait_for(lambda: select_readable(store.fileno()), what="the hang-up to be reported")
    assert store.drop_hung_up() == ["a"]
    store.returned(1)
    numbers, names = store.lend(slots, 0)
    assert names == ["b", "state"] and numbers == (900, 901)
    store.lent(None)
    slots.release(numbers)
    store.close()

def select_readable(fd: int) -> bool:
    from reentr.signals import readable
    return bool(readable([fd], 0))

def test_what_a_running_target_holds_is_passed_to_no_other(slots: Slots, pair: Pair) -> None:
    store = sockets.Store()
    stored_by_old, _p1 = pair()
    store.add([stored_by_old], "conn", poll=True, by=100)  # stored by target 100, running
    assert store.lend(slots, 0) == ((), [])  # a handoff's new target: nothing
    store.lent(200)
    store.returned(100)  # the old one is gone
    numbers, names = store.lend(slots, 1)  # after one held socket
    assert names == ["conn"] and numbers == (901,)
    store.lent(300)
    slots.release(numbers)
    assert store.lend(slots, 0) == ((), [])  # 300 runs and holds it
    store.lent(None)
    store.close()

def test_closing_the_store_ends_every_connection_it_alone_holds(pair: Pair) -> None:
    store = sockets.Store()
    made = [pair() for _ in range(3)]
    store.add([fd for fd, _ in made], "conn", poll=True, by=1)
    store.close()
    for _, peer in made:
        peer.settimeout(DEADLINE)
        assert peer.recv(1) == b""


def test_a_process_outside_the_targets_group_can_neither_store_nor_make_it_ready(
        pair: Pair) -> None:
    said: list[str] = []
    store = sockets.Store()
    notifier = Notifier(store, said.append)
    readied: list[int] = []
    target = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"],
                              start_new_session=True)
    try:
        notifier.admit(target.pid)
        notifier.expect(target.pid, readied.append)
        fd, peer = pair()
        notify(notifier.path, "READY=1\nFDSTORE=1\nFDNAME=intruder", [fd])  # from this test
        os.close(fd)
        wait_for(lambda: said, what="the refusal")
        notifier.drain()
        assert "not in the target's process group" in said[0]
        assert len(store) == 0 and readied == []
        peer.settimeout(DEADLINE)
        assert peer.recv(1) == b""  # the descriptor it sent was closed
    finally:
        target.kill()
        target.wait()
        notifier.close()
        store.close()

def test_a_message_sent_before_reentr_knew_the_target_counts() -> None:
    """A program can send before reentr has noted its PID: the message is kept until then."""
    store = sockets.Store()
    notifier = Notifier(store, lambda text: None)
    code = ("import array, os, socket, sys, signal\n"
            "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
            "s.connect(sys.argv[1])\n"
            "fd = os.memfd_create('state')\n"
            "s.sendmsg([b'FDSTORE=1\\nFDNAME=state\\nREADY=1'],"
            " [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', [fd]))])\n"
            "print('sent', flush=True)\n"
            "signal.pause()\n")
    target = subprocess.Popen([sys.executable, "-c", code, notifier.path],
                              start_new_session=True, stdout=subprocess.PIPE)
    try:
        assert target.stdout is not None and target.stdout.readline() == b"sent\n"
        notifier.drain()
        assert len(store) == 0  # not yet known as a target
        readied: list[int] = []
        notifier.admit(target.pid)
        notifier.expect(target.pid, readied.append)
        assert store.names() == ["state"] and len(readied) == 1
    finally:
        target.kill()
        target.communicate()
        notifier.close()
        store.close()
