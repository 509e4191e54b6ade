"""reentr: watch files, build, and restart or signal a program, and time every restart."""

__version__ = "0.1.0"
