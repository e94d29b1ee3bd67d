"""The replayed machines' index (``tests/fixtures/README.md``) and each machine's ``expected.json``."""

from __future__ import annotations

import json
import re

import pytest

from mlflow_sysmetrics import tags as T
from tests.conftest import FIXTURES, replayed_machines
from tests.fresh import REPO

#: Folders of descriptions a stand-in library reads, not machines a replay points at.
STAND_IN_DESCRIPTIONS = {"nvml", "amdsmi"}
#: The test that replays every machine whose expected.json names tags, without naming them.
REPLAY_ALL = "tests/unit/test_replayed_machines.py"


def _index() -> dict[str, list[str]]:
    """The index's rows: each machine's name and the files its last column names."""
    rows = {}
    for line in (FIXTURES / "README.md").read_text().splitlines():
        found = re.fullmatch(r"\| `([^`]+)` \| [^|]+ \| (.*) \|", line)
        if found:
            assert found[1] not in rows, f"{found[1]} has two rows"
            rows[found[1]] = re.findall(r"`([^`]+)`", found[2])
    return rows


def _folders() -> set[str]:
    return {path.name for path in FIXTURES.iterdir() if path.is_dir()}


def _machines() -> list[str]:
    return sorted(_folders() - STAND_IN_DESCRIPTIONS)


def test_the_index_names_every_fixture_folder_and_only_those() -> None:
    """One row for each folder under tests/fixtures, and none for a folder that is not there."""
    assert sorted(_index()) == sorted(_folders())


def test_each_file_the_index_names_exists_and_uses_the_machine() -> None:
    """A file in a row's last column is there and names the machine (or replays every machine it holds)."""
    wrong = []
    for machine, files in _index().items():
        assert files, f"{machine}: no test uses it"
        for name in files:
            path = REPO / name
            if not path.is_file():
                wrong.append(f"{machine}: {name} does not exist")
            elif name == REPLAY_ALL:
                if machine not in replayed_machines():
                    wrong.append(f"{machine}: {name} does not replay it (no tags in its expected.json)")
            elif not re.search(r"[\"'/]" + re.escape(machine) + r"[\"'/.]", path.read_text()):
                wrong.append(f"{machine}: {name} does not name it")
    assert wrong == []


@pytest.mark.parametrize("machine", _machines())
def test_every_machine_has_its_expected_tags_beside_its_readme(machine: str) -> None:
    """expected.json: tags of the table, each a string or null (absent), and the environment as strings."""
    folder = FIXTURES / machine
    assert (folder / "README.md").is_file()
    document = json.loads((folder / "expected.json").read_text())
    assert set(document) <= {"tags", "environment"}
    tags = document["tags"]
    assert sorted(set(tags) - set(T.TABLE)) == []
    assert all(value is None or isinstance(value, str) for value in tags.values())
    environment = document.get("environment", {})
    assert all(isinstance(value, str) for value in environment.values())


@pytest.mark.parametrize("machine", _machines())
def test_every_expected_tag_is_in_the_readmes_list(machine: str) -> None:
    """Each value expected.json holds is written in its README's "What the tests expect" (no value without a source)."""
    readme = (FIXTURES / machine / "README.md").read_text()
    expectations = readme[readme.index("What the tests expect") :]
    missing = [
        f"{key} {value}"
        for key, value in json.loads((FIXTURES / machine / "expected.json").read_text())["tags"].items()
        if value is not None and f"`{value}`" not in expectations
    ]
    assert missing == []
