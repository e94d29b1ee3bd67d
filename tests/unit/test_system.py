"""The operating system and platform: os-release(5), and the platform string as Python writes it."""

from __future__ import annotations

import platform
import sys

import pytest

from mlflow_sysmetrics.collectors import system


def test_os_release_quoting() -> None:
    """Quotes and backslash escapes are undone; NAME VERSION stands in for PRETTY_NAME."""
    values = system.parse_os_release('PRETTY_NAME="Fancy \\"OS\\" 1"\nNAME=\'Plain\'\n# comment\nbad line\n')
    assert values == {"PRETTY_NAME": 'Fancy "OS" 1', "NAME": "Plain"}
    assert system.os_name_from_release({"NAME": "Rocky Linux", "VERSION_ID": "9.4"}) == "Rocky Linux 9.4"
    assert system.os_name_from_release({}) is None
    assert system.macos_name("15.1") == "macOS 15.1"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's platform string")
def test_platform_string_is_pythons_own() -> None:
    """sys.platform is what platform.platform() says, built without its `uname -p` process."""
    assert system.linux_platform() == platform.platform()


def test_platform_string_layout() -> None:
    """Python's layout: parts joined by '-', unsafe characters made '-', 'unknown' dropped."""
    assert system.platform_string("Linux", "6.8.0-1015-aws", "x86_64", "glibc2.39") == (
        "Linux-6.8.0-1015-aws-x86_64-with-glibc2.39"
    )
    assert system.platform_string("Linux", "5.4 (custom)", "unknown", "") == "Linux-5.4_-custom-with"
