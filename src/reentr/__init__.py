"""reentr: watch files, build, and restart or signal a program, and time every restart."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reentr.sockets import inherited_fds, listen_sockets

__all__ = ["inherited_fds", "listen_sockets"]
__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """`reentr.listen_sockets` and `reentr.inherited_fds`, imported when a program first asks
    for one: reentr's own start imports no socket module unless it holds sockets."""
    if name in __all__:
        from reentr import sockets

        return getattr(sockets, name)
    raise AttributeError(f"module 'reentr' has no attribute {name!r}")
