"""reentr: watch files, build, and restart or signal a program, and time every restart."""

from reentr.sockets import listen_sockets

__all__ = ["listen_sockets"]
__version__ = "0.1.0"
