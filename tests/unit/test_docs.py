"""The documentation holds to the code: what it states that could drift, a test keeps true.

The tag and metric tables are held by test_tags.py; the pages' snippets and the ``summary``
sample run in tests/integration/test_docs.py. Here: the README's shape, the one install line,
the one version, the samples' keys, and the pages' wording.
"""

from __future__ import annotations

import re

import pytest

import mlflow_sysmetrics
from mlflow_sysmetrics import tags as T
from tests.pages import DOCS, PAGES, REPO, output_sample, section

README = REPO / "README.md"
CONTRIBUTING = REPO / "CONTRIBUTING.md"
CHANGELOG = REPO / "CHANGELOG.md"
REQUIREMENTS = sorted(REPO.glob("requirements*.txt"))
#: The project's working notes, which user text never carries.
WORKING_NOTES = re.compile(
    r"this round|development machine|build machines|targets? (is|are)n?'?t? ?(not )?met", re.IGNORECASE
)


def _quick_start() -> list[str]:
    """The README's two contributor commands, in order."""
    block = section(README, "## For contributors: quick start").split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line for line in block.splitlines() if line.startswith("python3 -m venv")]
    assert len(commands) == 2, block
    return commands


def test_the_readme_is_a_first_screen_for_users() -> None:
    """Under 200 lines; a user's part first (install, the variable, show), the contributors' last."""
    text = README.read_text()
    assert len(text.splitlines()) < 200
    headings = re.findall(r"^## (.+)$", text, flags=re.M)
    assert headings[-2:] == ["For contributors: quick start", "License"]
    users = text.split("\n## For contributors", 1)[0]
    for needed in (
        "pip install mlflow-sysmetrics",
        "MLFLOW_RUN_CONTEXT_PROVIDER=sysmetrics",
        "$ mlflow-sysmetrics show",
    ):
        assert needed in users
    for contributors_only in ("pytest", "requirements-dev.txt", ".venv/bin/"):
        assert contributors_only not in users


def test_the_readme_links_every_page() -> None:
    """Each page of the site is linked from the README's first screen (the site's home aside)."""
    text = README.read_text()
    for page in sorted(DOCS.glob("*.md")):
        if page.name != "index.md":
            assert f"(docs/{page.name})" in text, f"the README does not link docs/{page.name}"


def test_the_quick_start_is_what_ci_runs() -> None:
    """Command 2 is CI's first step word for word; command 1 sets up the same way and runs the demo."""
    demo, suite = _quick_start()
    ci = (REPO / ".ci" / "run").read_text()
    assert suite in ci.splitlines()
    assert (
        demo
        == "python3 -m venv .venv && .venv/bin/pip install -e '.[mlflow]' && .venv/bin/mlflow-sysmetrics demo"
    )


def test_the_requirements_give_the_quick_starts_install_line() -> None:
    """requirements-dev.txt's header says how to install what the suite needs as command 2 does, and so does every other that says it."""
    install = _quick_start()[1].split(" && ")[1].removeprefix(".venv/bin/")
    assert install.startswith("pip install -e ")
    stated = {
        path.name: [
            line.lstrip("#").strip() for line in path.read_text().splitlines() if "pip install -e" in line
        ]
        for path in REQUIREMENTS
    }
    assert stated["requirements-dev.txt"] == [install]
    for name, lines in stated.items():
        assert set(lines) <= {install}, name


def test_the_changelogs_newest_release_is_the_package_version() -> None:
    """The version is said once, in the package; the CHANGELOG's newest release heading matches it."""
    headings = re.findall(r"^## \[([^\]]+)\]", CHANGELOG.read_text(), flags=re.M)
    releases = [h for h in headings if h != "Unreleased"]
    assert headings[0] in ("Unreleased", releases[0])
    assert releases[0] == mlflow_sysmetrics.__version__


def test_no_page_states_a_version_of_the_package() -> None:
    """The pages name no release of this package but 0.1.3 (the one it replaces): the CHANGELOG does."""
    pattern = re.compile(r"mlflow-sysmetrics`?\s+v?(\d+\.\d+(?:\.\d+)?)")
    for page in PAGES:
        text = page.read_text()
        assert set(pattern.findall(text)) <= {"0.1.3"}, page.name
        version = re.escape(mlflow_sysmetrics.__version__)
        assert not re.search(rf"(?<![\d.]){version}(?![\d])", text), page.name


@pytest.mark.parametrize("path", [*PAGES, CHANGELOG, CONTRIBUTING, *REQUIREMENTS], ids=lambda p: p.name)
def test_user_text_carries_no_working_notes(path) -> None:  # type: ignore[no-untyped-def]
    """What a user reads says what the package does and where a figure was measured, not how the work went."""
    found = [line for line in path.read_text().splitlines() if WORKING_NOTES.search(line)]
    assert found == []


@pytest.mark.parametrize("page", [README, DOCS / "cli.md"], ids=lambda p: p.name)
def test_the_show_sample_follows_the_table(page) -> None:  # type: ignore[no-untyped-def]
    """The documented output of `show`: table keys, each under its group's heading, in the table's order."""
    lines = output_sample(page, "mlflow-sysmetrics show")[1:]
    keys: list[str] = []
    group = None
    for line in lines:
        if line and not line.startswith(" "):
            group = line
        elif line:
            key = line.split()[0]
            assert T.TABLE[key].group == group, key
            keys.append(key)
    assert len(keys) > 10
    assert T.order(keys) == keys


def test_the_oldest_mlflow_is_the_one_ci_tests() -> None:
    """The MLflow the pages call the oldest supported is the one pyproject requires and CI installs."""
    oldest = re.search(
        r"^mlflow==(\d+\.\d+)\.\d+$", (REPO / ".ci" / "constraints-oldest.txt").read_text(), re.M
    )
    assert oldest is not None
    version = oldest.group(1)
    assert f'"mlflow-skinny>={version}"' in (REPO / "pyproject.toml").read_text()
    assert f"MLflow {version} and newer" in README.read_text()
    assert f"**MLflow** {version} and newer" in (DOCS / "platforms.md").read_text()


def test_contributing_names_every_module_in_its_layout() -> None:
    """The layout in CONTRIBUTING names each module of the package, so a new one is placed there too."""
    layout = section(CONTRIBUTING, "## The layout")
    package = REPO / "mlflow_sysmetrics"
    for path in sorted(package.rglob("*.py")):
        name = path.parent.name if path.name == "__init__.py" else path.stem
        if path.name == "__main__.py" or (path.parent == package and path.name == "__init__.py"):
            continue
        assert re.search(rf"(?<![\w.]){re.escape(name)}\b", layout), f"{path.relative_to(REPO)}"
