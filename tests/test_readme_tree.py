"""The README's module tree (section "Development", the `text` block that lists `molvae/`) names every module
of the package, and nothing else: a module added, moved or removed without its line fails here.

`python tests/test_readme_tree.py` prints the tree as the file system has it, with the README's descriptions
kept and `TODO` where a module has none yet, to paste into the README.
"""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
_NAME_WIDTH = 16  # descriptions start 2 spaces after the longer of this and the name


def package_modules() -> set[str]:
    """Every module of the package as a path relative to the checkout: {"molvae/chem.py", ...}."""
    return {p.relative_to(ROOT).as_posix() for p in (ROOT / "molvae").rglob("*.py") if "__pycache__" not in p.parts}


def tree_block(text: str) -> list[str]:
    """The lines of the `text` block of the Development section that starts with `molvae/`."""
    section = text[text.index("\n## Development"):]
    match = re.search(r"```text\n(molvae/\n.*?)```", section, re.S)
    assert match, "README.md: no ```text block starting with molvae/ in the Development section"
    return match.group(1).splitlines()


def readme_entries(lines: list[str]) -> dict[str, str]:
    """{path: description} for every module and folder line; the depth is the indentation (2 spaces a level)."""
    entries: dict[str, str] = {}
    folders: list[str] = []
    for line in lines:
        indent = len(line) - len(line.lstrip(" "))
        assert indent % 2 == 0, f"README tree: odd indentation in {line!r}"
        name, _, description = line.strip().partition(" ")
        folders = folders[: indent // 2]
        path = "/".join(folders + [name.rstrip("/")])
        entries[path + ("/" if name.endswith("/") else "")] = description.strip()
        if name.endswith("/"):
            folders.append(name.rstrip("/"))
    return entries


def render(descriptions: dict[str, str]) -> str:
    """The tree of the package's modules (folders first within a folder, as `find | sort` lists them
    below their parent), each with its description from `descriptions` or TODO."""
    lines = ["molvae/"]

    def walk(folder: Path, depth: int) -> None:
        children = sorted(p for p in folder.iterdir() if p.name != "__pycache__" and
                          (p.suffix == ".py" or (p.is_dir() and any(p.rglob("*.py")))))
        for child in children:
            rel = child.relative_to(ROOT).as_posix()
            if child.is_dir():
                lines.append("  " * depth + child.name + "/")
                walk(child, depth + 1)
            else:
                text = descriptions.get(rel, "TODO")
                lines.append("  " * depth + child.name.ljust(_NAME_WIDTH) + "  " + text)

    walk(ROOT / "molvae", 1)
    return "\n".join(lines)


def test_parser_reads_nesting() -> None:
    lines = ["molvae/", "  chem.py         RDKit", "  cli/", "    app.py          the app", "  files.py  files"]
    assert readme_entries(lines) == {"molvae/": "", "molvae/chem.py": "RDKit", "molvae/cli/": "",
                                     "molvae/cli/app.py": "the app", "molvae/files.py": "files"}


def test_readme_tree_lists_every_module_and_nothing_else() -> None:
    entries = readme_entries(tree_block(README.read_text()))
    listed = {path for path in entries if path.endswith(".py")}
    modules = package_modules()
    assert not modules - listed, f"modules missing from the README tree: {sorted(modules - listed)}"
    assert not listed - modules, f"README tree lines for modules that do not exist: {sorted(listed - modules)}"
    undescribed = sorted(path for path in listed if not entries[path] or entries[path] == "TODO")
    assert not undescribed, f"README tree lines without a description: {undescribed}"


if __name__ == "__main__":
    print(render(readme_entries(tree_block(README.read_text()))))
