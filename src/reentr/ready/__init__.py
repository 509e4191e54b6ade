"""Readiness: when a started target is ready (`probes`), who took a connection on the held
socket (`sockdiag`), and the sd_notify socket (`notify`)."""

from reentr.ready.notify import Notifier
from reentr.ready.probes import Waiter
from reentr.ready.sockdiag import Taker

__all__ = ["Notifier", "Taker", "Waiter"]
