"""The operating system, decided once for the whole package."""

from __future__ import annotations

import sys

LINUX = sys.platform.startswith("linux")
MACOS = sys.platform == "darwin"
WINDOWS = sys.platform in ("win32", "cygwin")

#: Name of the platform backend the collectors are chosen by.
NAME = "linux" if LINUX else "macos" if MACOS else "windows" if WINDOWS else "other"
