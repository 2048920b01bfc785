"""mkdocs-gen-files script: the reproductions into the site. mkdocs serves docs/ only, and each
reproductions/NAME/ folder keeps its README beside the spec, script and figures it links to, so the
folders are copied whole at build time (README.md becomes the folder's index.md) rather than moved
or symlinked: a fresh clone builds, the images and spec links resolve, and a new folder needs no edit."""

import re
from pathlib import Path

import mkdocs_gen_files

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "reproductions"
SKIP = {"__pycache__"}


def site_name(path: Path) -> str:
    return "index.md" if path.name == "README.md" else path.name


def folder_links_to_index(text: str) -> str:
    """`[nanda](nanda/)` names a folder, which a site page cannot link to; its index page it can."""
    return re.sub(r"\]\(((?!https?:)[^)\s#]+)/\)", r"](\1/index.md)", text)


nav = mkdocs_gen_files.Nav()
for path in sorted(SOURCE.rglob("*")):
    rel = path.relative_to(SOURCE)
    if not path.is_file() or SKIP & set(rel.parts) or path.name.startswith("_"):
        continue
    doc = Path("reproductions", *rel.parts[:-1], site_name(path))
    if path.suffix == ".md":
        with mkdocs_gen_files.open(doc, "w") as f:
            f.write(folder_links_to_index(path.read_text()))
        mkdocs_gen_files.set_edit_path(doc, path.relative_to(ROOT))
        title = rel.parts[:-1] if path.name == "README.md" else (*rel.parts[:-1], path.stem)
        nav[title or ("Overview",)] = doc.relative_to("reproductions").as_posix()
    else:
        with mkdocs_gen_files.open(doc, "wb") as f:
            f.write(path.read_bytes())

with mkdocs_gen_files.open("reproductions/SUMMARY.md", "w") as f:
    f.writelines(nav.build_literate_nav())
