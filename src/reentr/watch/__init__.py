"""Watching files: the watcher thread (`loop`), the kernel wakeup (`wakeup`), the poller
(`poller`), watchfiles (`backend`, its only importer), ignore-aware tree tracking (`tree`) and
entr's `-d` listing (`listing`). It puts `FilesChanged` batches on the runner's queue."""

from reentr.watch.loop import watching

__all__ = ["watching"]
