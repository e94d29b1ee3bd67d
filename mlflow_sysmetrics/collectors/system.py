"""The ``system`` collector: the operating system and the platform string."""

from __future__ import annotations

import os

from .. import tags as T
from .._context import Context

# platform is imported where used: Linux builds its platform string without it (see
# linux_platform).


def parse_os_release(text: str) -> dict[str, str]:
    """``KEY=value`` pairs of an os-release file, quotes and backslash escapes undone."""
    values: dict[str, str] = {}
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, raw = line.partition("=")
        raw = raw.strip()
        if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
            quote = raw[0]
            raw = raw[1:-1]
            if quote == '"' and "\\" in raw:
                out = []
                i = 0
                while i < len(raw):
                    if raw[i] == "\\" and i + 1 < len(raw):
                        out.append(raw[i + 1])
                        i += 2
                        continue
                    out.append(raw[i])
                    i += 1
                raw = "".join(out)
        values[key.strip()] = raw
    return values


def os_name_from_release(values: dict[str, str]) -> str | None:
    """A readable OS name: ``PRETTY_NAME``, else ``NAME VERSION``, else what there is."""
    pretty = values.get("PRETTY_NAME", "").strip()
    if pretty:
        return pretty
    name = values.get("NAME", "").strip() or values.get("ID", "").strip()
    version = values.get("VERSION", "").strip() or values.get("VERSION_ID", "").strip()
    text = f"{name} {version}".strip()
    return text or None


def platform_string(system: str, release: str, machine: str, libc: str) -> str:
    """Python's :func:`platform.platform` layout: the parts joined by ``-``, made file-name safe.

    ``Linux-6.8.0-1015-aws-x86_64-with-glibc2.39``: spaces become ``_``; ``/ \\ : ; " ( )``
    become ``-``; the word ``unknown`` is dropped; runs of ``-`` fold into one.
    """
    text = "-".join(part.strip() for part in (system, release, machine, "with", libc) if part)
    text = text.replace(" ", "_")
    for character in '/\\:;"()':
        text = text.replace(character, "-")
    text = text.replace("unknown", "")
    while "--" in text:
        text = text.replace("--", "-")
    return text.rstrip("-")


def linux_platform() -> str:
    """:func:`platform.platform`'s string for Linux, without the process it starts.

    Python 3.11 and 3.12 build it from ``uname`` and the C library's name and version, and to
    fill in the processor they run ``uname -p`` (a millisecond or more, and ``subprocess``
    imported) whose answer they then drop on the distributions we know: it prints
    ``unknown`` on Debian, Ubuntu and Alpine, and the machine again on the Red Hat family.
    The C library comes from ``confstr`` as Python's own :func:`platform.libc_ver` takes it
    (``glibc 2.39``); where that is not known (musl) Python's function is asked.
    """
    uname = os.uname()
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (AttributeError, ValueError, OSError):
        libc = ""
    name, _, version = libc.partition(" ")
    if not version:
        import platform

        name, version = platform.libc_ver()
    return platform_string(uname.sysname, uname.release, uname.machine, name + version)


def collect_linux(ctx: Context) -> dict[str, str]:
    """``sys.platform`` and ``sys.os`` (from ``/etc/os-release``, else ``/usr/lib/os-release``)."""
    found = {T.PLATFORM: linux_platform()}
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        text = ctx.root.read(path)
        if text is not None:
            name = os_name_from_release(parse_os_release(text))
            if name:
                found[T.OS] = name
                break
    return found


def macos_name(release: str) -> str | None:
    """``macOS 15.1`` from :func:`platform.mac_ver`'s release."""
    return f"macOS {release}" if release else None


def windows_name(release: str, version: str) -> str | None:
    """``Windows 11`` from :func:`platform.win32_ver`: builds from 22000 on are Windows 11.

    Windows 11 still reports itself as release ``10`` to older Pythons, and its registry
    ``ProductName`` says "Windows 10" too; the build number is what tells them apart.
    """
    if not release:
        return None
    try:
        build = int(version.split(".")[2])
    except (IndexError, ValueError):
        build = 0
    if release == "10" and build >= 22000:
        release = "11"
    return f"Windows {release}"


def collect_macos(ctx: Context) -> dict[str, str]:
    """``sys.platform`` and ``sys.os`` on macOS."""
    import platform

    found = {T.PLATFORM: platform.platform()}
    name = macos_name(platform.mac_ver()[0])
    if name:
        found[T.OS] = name
    return found


def collect_windows(ctx: Context) -> dict[str, str]:
    """``sys.platform`` and ``sys.os`` on Windows."""
    import platform

    found = {T.PLATFORM: platform.platform()}
    release, version, _, _ = platform.win32_ver()
    name = windows_name(release, version)
    if name:
        found[T.OS] = name
    return found


def collect_other(ctx: Context) -> dict[str, str]:
    """``sys.platform`` and ``sys.os`` where no better source is known."""
    import platform

    return {T.PLATFORM: platform.platform(), T.OS: f"{platform.system()} {platform.release()}".strip()}
