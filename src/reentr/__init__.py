"""reentr: watch files, build, and restart or signal a program, and time every restart."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reentr.sockets import listen_sockets

__all__ = ["listen_sockets"]
__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """`reentr.listen_sockets`, imported when a program first asks for it: reentr's own start
    imports no socket module unless it holds sockets."""
    if name == "listen_sockets":
        from reentr.sockets import listen_sockets

        return listen_sockets
    raise AttributeError(f"module 'reentr' has no attribute {name!r}")
