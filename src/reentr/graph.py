"""The order of several services (`reentr up`): which may start, which waits for another's
restart, which stops next. Pure: the runner asks, with the services' names in the sets it
keeps, and does what it is told.

- A service starts once every service it depends on is ready.
- A change (or a restart asked) for a service waits while a service it depends on, directly
  or not, is restarting: a change several services want restarts them in dependency order.
- On the way out, a service is stopped once every service that depends on it is gone.
"""

from __future__ import annotations

from collections.abc import Set

from reentr.records import record


@record
class Graph:
    order: tuple[str, ...]
    """The services, each after those it depends on (as configfile.services orders them)."""
    depends: tuple[tuple[str, ...], ...]
    """What each service of `order` depends on, directly."""

    @classmethod
    def of(cls, services: list[tuple[str, tuple[str, ...]]]) -> Graph:
        """From (name, depends-on) pairs in dependency order."""
        return cls(tuple(name for name, _ in services), tuple(deps for _, deps in services))

    def _depends(self, name: str) -> tuple[str, ...]:
        return self.depends[self.order.index(name)]

    def startable(self, began: Set[str], ready: Set[str], stopping: Set[str]) -> list[str]:
        """Those not begun nor stopping whose dependencies are all ready, in order."""
        return [name for name, deps in zip(self.order, self.depends, strict=True)
                if name not in began and name not in stopping
                and all(dep in ready for dep in deps)]

    def upstream(self, name: str) -> set[str]:
        """Every service `name` depends on, directly or not."""
        found: set[str] = set()
        todo = list(self._depends(name))
        while todo:
            other = todo.pop()
            if other not in found:
                found.add(other)
                todo.extend(self._depends(other))
        return found

    def waits(self, name: str, restarting: Set[str]) -> bool:
        """Whether a change for `name` waits for a service it depends on to serve again."""
        return not self.upstream(name).isdisjoint(restarting)

    def stoppable(self, told: Set[str], gone: Set[str]) -> list[str]:
        """Those not yet told to stop whose dependents are all gone, in order."""
        return [name for name in self.order if name not in told and all(
            other in gone for other, deps in zip(self.order, self.depends, strict=True)
            if name in deps)]

    def blocked(self, name: str, began: Set[str]) -> list[str]:
        """The services not begun that wait, directly, for `name` to be ready."""
        return [other for other, deps in zip(self.order, self.depends, strict=True)
                if name in deps and other not in began]
