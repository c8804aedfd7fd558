"""README.md's walkthroughs, checked for what can be checked without running them: every shell variable
is set before it is used, nothing links outside the repository, every file and setting it names exists.

The walkthroughs themselves were run word for word against `make run`; these keep the structure that
lets them be pasted from doing so."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from app.settings import SETTINGS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
SKIPPED_DIRS = {".git", ".venv", "var", "node_modules", "test-artifacts", "__pycache__", ".pytest_cache"}
# Hosts a reader may paste as they are (this machine), and the reserved example names (RFC 2606).
LOCAL_HOSTS = {"localhost", "127.0.0.1"}
EXAMPLE_HOSTS = re.compile(r"(^|\.)example(\.(com|org|net))?$")
# What the shell or the walkthrough's environment sets: never assigned in the README.
SHELL_SET = {"HOME", "PATH", "PWD"}
# Files a walkthrough writes itself (not in the repository).
WRITTEN_BY_WALKTHROUGHS = {"receiver.py"}


def shell_blocks() -> list[str]:
    """The ```sh and ```bash blocks, in order."""
    return re.findall(r"^```(?:sh|bash)\n(.*?)^```", README, re.DOTALL | re.MULTILINE)


def unquoted(script: str) -> tuple[str, str]:
    """(what the shell expands: outside single quotes, without comments; the same, double quotes too)."""
    expands, bare = [], []
    quote, comment = "", False
    for i, ch in enumerate(script):
        if comment:
            comment = ch != "\n"
            if not comment:
                expands.append(ch)
                bare.append(ch)
            continue
        if quote == "'":
            quote = "" if ch == "'" else quote
            continue
        if quote == '"':
            quote = "" if ch == '"' and script[i - 1] != "\\" else quote
            expands.append(ch)
            bare.append(" ")
            continue
        if ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or script[i - 1] in " \t\n"):
            comment = True
            continue
        expands.append(ch)
        bare.append(ch if ch not in "'\"" else " ")
    return "".join(expands), "".join(bare)


def assignments_and_uses() -> list[tuple[str, str]]:
    """("set" | "use", name) in README order."""
    events: list[tuple[int, str, str]] = []
    offset = 0
    for block in shell_blocks():
        expands, bare = unquoted(block)
        # VAR=..., export VAR=..., `export A B=...`, prefix assignments and `for VAR in`, outside quotes.
        for m in re.finditer(r"(?:^|[\s;&|(])(?:export\s+(?:[A-Za-z_]\w*\s+)*)?([A-Za-z_]\w*)=", bare):
            events.append((offset + m.start(1), "set", m.group(1)))
        for m in re.finditer(r"\bexport\s+((?:[A-Za-z_]\w*\s*)+)", bare):
            for name in m.group(1).split():
                events.append((offset + m.start(1), "set", name))
        for m in re.finditer(r"\bfor\s+([A-Za-z_]\w*)\s+in\b", bare):
            events.append((offset + m.start(1), "set", m.group(1)))
        for m in re.finditer(r"\$\{?([A-Za-z_]\w*)", expands):
            events.append((offset + m.start(1), "use", m.group(1)))
        offset += len(block) + 1
    return [(kind, name) for _, kind, name in sorted(events)]


def test_every_shell_variable_is_set_before_it_is_used():
    documented = {setting.env for setting in SETTINGS} | SHELL_SET
    seen: set[str] = set()
    unset = []
    for kind, name in assignments_and_uses():
        if kind == "set":
            seen.add(name)
        elif name not in seen and name not in documented:
            unset.append(name)
    assert unset == []


def test_the_checker_sees_quotes_and_assignments():
    expands, bare = unquoted("""A=1 B="$A" python3 -c 'print("$C")' # $D\nexport E F=2\necho "$G" ${H}""")
    assert "$C" not in expands and "$D" not in expands and "$G" in expands and "${H}" in expands
    assert "$A" not in bare


def test_no_walkthrough_needs_jq():
    assert not any(re.search(r"\|\s*jq\b", block) for block in shell_blocks())


def urls() -> list[str]:
    return re.findall(r"https?://[^\s)`\"'<>\]]+", README)


def test_links_stay_on_this_machine():
    """Markdown links and autolinks point into the repository (anchors, files) or at localhost."""
    outside = [
        target
        for target in re.findall(r"\]\(([^)\s]+)\)|<(https?://[^>]+)>", README)
        for target in target
        if target.startswith("http") and urlsplit(target).hostname not in LOCAL_HOSTS
    ]
    assert outside == []


def test_urls_name_this_machine_or_an_example_host():
    foreign = []
    for url in urls():
        host = urlsplit(url).hostname or ""
        if host in LOCAL_HOSTS or EXAMPLE_HOSTS.search(host) or host in ("", "...") or "$" in url:
            continue
        foreign.append(url)
    assert foreign == []


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def test_anchor_links_name_a_heading():
    anchors = {slug(h) for h in re.findall(r"^#{1,6} (.+)$", README, re.MULTILINE)}
    assert set(re.findall(r"\]\(#([^)]+)\)", README)) <= anchors


def repo_files() -> set[str]:
    found: set[str] = set()
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS]
        rel = Path(folder).relative_to(ROOT)
        found |= {str(rel / name) if str(rel) != "." else name for name in files}
    return found


def test_files_it_names_are_in_the_repository():
    """Paths into the tree (`app/media/egress.py`, `api/errors.py` inside app/) and documents (`*.md`,
    `*.txt`) exist; routes (`/rrweb/record.js`) and what a run writes (`var/...`) are not files here."""
    files = repo_files()
    folders = {str(parent) for f in files for parent in Path(f).parents if str(parent) != "."}
    names = {Path(f).name for f in files} | WRITTEN_BY_WALKTHROUGHS
    tops = {Path(folder).name for folder in folders}
    mentioned = re.findall(r"`([\w.-]+/[\w./-]*|[\w.-]+\.(?:md|txt))`", README)
    missing = [
        m
        for m in mentioned
        if ("/" not in m and m not in names)
        or (
            "/" in m
            and m.split("/")[0] in tops
            and not any(p == m.rstrip("/") or p.endswith("/" + m.rstrip("/")) for p in files | folders)
        )
    ]
    assert missing == []
    assert not re.search(r"(?<!\.)\.\./", README)  # nothing outside the repository ("..." may elide)


@pytest.mark.parametrize("prefix", ["MEETREC_", "S3_", "REDIS_", "DATABASE_", "PROMETHEUS_"])
def test_every_variable_it_names_is_read_somewhere(prefix):
    """A setting of the configuration table, or a variable the tests or the docker files read."""
    settings = {setting.env for setting in SETTINGS}
    named = set(re.findall(rf"\b{prefix}[A-Z0-9_]+\b", README)) - settings
    elsewhere = "\n".join(
        (ROOT / f).read_text(errors="replace")
        for f in repo_files()
        if f.startswith(("tests/", "docker/", ".ci/")) and not f.endswith(("test_readme_walkthrough.py",))
    )
    assert {name for name in named if name not in elsewhere} == set()


def test_the_troubleshooting_ports_are_the_defaults():
    section = README.split("\n## Troubleshooting\n", 1)[1].split("\n## ", 1)[0]
    defaults = {setting.env: str(setting.default) for setting in SETTINGS}
    assert ("| 8080 |" in section) and defaults["PORT"] == "8080"
    assert ("| 6390 |" in section) and defaults["MEETREC_REDIS_PORT"] == "6390"
    assert ("| 8333 |" in section) and defaults["MEETREC_S3_PORT"] == "8333"
