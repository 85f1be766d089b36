"""The documentation holds: the README stays short with the two set-up commands first,
every link between the pages resolves, the module map is what the code is, and comments
in evt/ explain the code on its own terms."""

from __future__ import annotations

import ast
import io
import re
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
# pages other branches add (issue 16-19): linked before they land, checked once they exist
PAGES_TO_COME = {"compare.md", "bench.md", "pacing-and-detection.md", "plugins.md", "auditd.md", "verify.md"}
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_readme_is_short_and_starts_with_the_two_set_up_commands():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) < 400
    first_block = re.search(r"```bash\n(.*?)```", text, re.S).group(1).splitlines()
    assert [line.split()[:2] for line in first_block] == [["make", "run"], ["make", "test"]]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)}


def links() -> list[tuple[Path, str]]:
    found = []
    for page in PAGES:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
        found += [(page, target) for target in LINK.findall(text) if "://" not in target]
    return found


@pytest.mark.parametrize("page,target", links(), ids=lambda v: v.name if isinstance(v, Path) else v)
def test_every_link_between_pages_resolves(page, target):
    path, _, anchor = target.partition("#")
    resolved = (page.parent / path).resolve() if path else page
    if not resolved.exists():
        assert resolved.parent == DOCS and resolved.name in PAGES_TO_COME, f"{page.name}: {target} does not exist"
        return
    if anchor:
        assert anchor in anchors(resolved), f"{page.name}: no heading #{anchor} in {resolved.name}"


def test_the_slug_is_githubs():
    assert slug("evt compare") == "evt-compare"
    assert slug("How to find a tracer's limit") == "how-to-find-a-tracers-limit"
    assert slug("Make targets") == "make-targets"


def test_the_readme_and_the_index_link_every_page():
    for index in (ROOT / "README.md", DOCS / "index.md"):
        linked = {Path(t.partition("#")[0]).name for t in LINK.findall(index.read_text())}
        missing = {p.name for p in DOCS.glob("*.md")} - linked - {index.name}
        assert not missing, f"{index.name} does not link {sorted(missing)}"


def module_map_entries() -> set[str]:
    text = (DOCS / "architecture.md").read_text()
    block = re.search(r"<!-- module-map -->\n(.*?)<!-- /module-map -->", text, re.S).group(1)
    entries, parents = set(), []
    for line in block.splitlines():
        depth = (len(line) - len(line.lstrip())) // 2
        name = re.match(r"\s*- `([^`]+)`", line).group(1)
        parents = parents[:depth]
        if name.endswith("/"):
            parents.append(name)
            entries.add(name.rstrip("/") + "/__init__.py")
        else:
            entries.add(parents[-1] + name)
    return entries


def test_the_module_map_lists_every_module_and_nothing_else():
    on_disk = {p.relative_to(ROOT).as_posix() for p in (ROOT / "evt").rglob("*.py") if "__pycache__" not in p.parts}
    listed = module_map_entries()
    assert on_disk - listed == set(), "modules missing from docs/architecture.md: run `python3 scripts/module_map.py`"
    assert listed - on_disk == set(), "docs/architecture.md lists modules that do not exist"


def test_the_module_map_shows_each_docstring_as_the_code_has_it():
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "module_map.py"), "--check"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


FORBIDDEN = re.compile(
    r"(?i:\bthe seed\b|\bseed's\b|\bthe original\b|\boriginal's\b)|reference/|TRACEE\.md"
    r"|(?<![\w/])shared/|evt-tool\.md|DESIGN\.md"
)


def comments_and_docstrings(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every comment and docstring of a module: the prose that explains code."""
    source = path.read_text()
    found = [
        (tok.start[0], tok.string)
        for tok in tokenize.generate_tokens(io.StringIO(source).readline)
        if tok.type == tokenize.COMMENT
    ]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                found.append((node.body[0].lineno, doc))
    return found


def offending_texts(texts_of, pattern: re.Pattern) -> list[str]:
    """`path:line: text` of every text of evt/'s modules (as `texts_of` finds them) that `pattern` matches."""
    return [
        f"{path.relative_to(ROOT)}:{line}: {text.strip()[:100]}"
        for path in sorted((ROOT / "evt").rglob("*.py"))
        for line, text in texts_of(path)
        if pattern.search(text)
    ]


def test_comments_in_evt_explain_the_code_on_its_own_terms():
    offending = offending_texts(comments_and_docstrings, FORBIDDEN)
    assert offending == [], (
        "say what the behaviour is and why (e.g. 'as Tracee's Go evt does'), and point "
        "only at files in the repository:\n" + "\n".join(offending)
    )


# what a user reads names the tool it follows (Tracee's evt), never "the original"
USER_TEXT_FORBIDDEN = re.compile(r"(?i:\bthe original\b|\boriginal's\b|\bthe seed\b)")


def string_literals(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every string constant of a module: messages, help texts, docstrings."""
    return [
        (node.lineno, node.value)
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]


def test_messages_and_help_texts_name_tracees_evt_not_the_original():
    offending = offending_texts(string_literals, USER_TEXT_FORBIDDEN)
    assert offending == [], 'say "Tracee\'s evt" (the Go tool evt follows):\n' + "\n".join(offending)


def test_the_message_check_sees_f_strings_parts(tmp_path):
    module = tmp_path / "m.py"
    module.write_text('n = 3\nx = f"at most {n} (the original\'s limit)"\n')
    parts = [bool(USER_TEXT_FORBIDDEN.search(t)) for _, t in string_literals(module)]
    assert parts == [False, True]  # "at most ", then the literal part after {n}


def test_the_comment_check_sees_comments_and_docstrings(tmp_path):
    module = tmp_path / "m.py"
    module.write_text('"""As the original does."""\nx = "the original"  # the seed says so\n')
    texts = [text for _, text in comments_and_docstrings(module)]
    assert [bool(FORBIDDEN.search(t)) for t in texts] == [True, True]
    assert not any("x =" in t for t in texts)  # strings that are not docstrings (messages) are not prose


REPO_PATH = re.compile(r"`((?:evt|tests|scripts|benchmarks|conf|templates|triggers|hydra_plugins|docs)/[\w/.\-]*)`")
# paths that exist elsewhere: the results `make bench` writes, the data a wheel carries inside the package
NOT_IN_A_CHECKOUT = re.compile(r"^benchmarks/results/\w+\.json$|^evt/(conf|templates|triggers)$")


def test_every_repository_path_the_pages_name_exists():
    missing = []
    for page in PAGES:
        for path in REPO_PATH.findall(page.read_text()):
            if (
                not (ROOT / path).exists()
                and Path(path).name not in PAGES_TO_COME
                and not NOT_IN_A_CHECKOUT.match(path)
            ):
                missing.append(f"{page.name}: {path}")
    assert missing == []
