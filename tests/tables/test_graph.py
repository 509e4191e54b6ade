"""The order of several services, as tables: start, wait for a restart, stop (graph.py)."""

from __future__ import annotations

import pytest

from reentr.graph import Graph

# store <- api <- web, and a worker that depends on store alone.
SERVICES = Graph.of([("store", ()), ("api", ("store",)), ("worker", ("store",)),
                     ("web", ("api",))])


@pytest.mark.parametrize(("began", "ready", "stopping", "startable"), [
    (set(), set(), set(), ["store"]),
    ({"store"}, set(), set(), []),
    ({"store"}, {"store"}, set(), ["api", "worker"]),
    ({"store", "api"}, {"store"}, set(), ["worker"]),
    ({"store", "api", "worker"}, {"store", "api"}, set(), ["web"]),
    ({"store", "api", "worker"}, {"store", "api"}, {"web"}, []),
    ({"store", "api", "worker", "web"}, {"store", "api", "worker", "web"}, set(), []),
])
def test_a_service_starts_once_what_it_depends_on_is_ready(
    began: set[str], ready: set[str], stopping: set[str], startable: list[str]
) -> None:
    assert SERVICES.startable(began, ready, stopping) == startable


@pytest.mark.parametrize(("name", "restarting", "waits"), [
    ("web", {"store"}, True),   # through api
    ("web", {"api"}, True),
    ("web", {"worker"}, False),
    ("api", {"web"}, False),    # a dependent restarting holds nothing back
    ("api", {"api"}, False),    # nor does the service itself
    ("store", {"api", "web", "worker"}, False),
    ("worker", set(), False),
])
def test_a_change_waits_while_what_it_depends_on_restarts(
    name: str, restarting: set[str], waits: bool
) -> None:
    assert SERVICES.waits(name, restarting) is waits


@pytest.mark.parametrize(("told", "gone", "stoppable"), [
    (set(), set(), ["worker", "web"]),
    ({"worker", "web"}, {"worker"}, []),
    ({"worker", "web"}, {"worker", "web"}, ["api"]),
    ({"worker", "web", "api"}, {"worker", "web", "api"}, ["store"]),
    ({"worker", "web", "api", "store"}, {"worker", "web", "api", "store"}, []),
])
def test_a_service_stops_once_its_dependents_are_gone(
    told: set[str], gone: set[str], stoppable: list[str]
) -> None:
    assert SERVICES.stoppable(told, gone) == stoppable


def test_upstream_is_every_service_depended_on_directly_or_not() -> None:
    assert SERVICES.upstream("web") == {"api", "store"}
    assert SERVICES.upstream("store") == set()
