"""mkdocs-gen-files script: one API page per module of grokcore, sweeps and analysis, found by walking
the packages at build time (mkdocstrings' own recipe), so a module renamed, split or added needs no
edit to the docs; reference/SUMMARY.md is the nav that literate-nav reads."""

from pathlib import Path

import mkdocs_gen_files

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("grokcore", "sweeps", "analysis")

nav = mkdocs_gen_files.Nav()
for package in PACKAGES:
    for path in sorted((ROOT / package).rglob("*.py")):
        module = path.relative_to(ROOT).with_suffix("")
        parts = tuple(module.parts)
        if parts[-1] == "__main__" or any(part.startswith("_") and part != "__init__" for part in parts):
            continue
        doc = Path("reference", *parts).with_suffix(".md")
        if parts[-1] == "__init__":
            parts = parts[:-1]
            doc = doc.with_name("index.md")
        nav[parts] = doc.relative_to("reference").as_posix()
        with mkdocs_gen_files.open(doc, "w") as f:
            f.write(f"::: {'.'.join(parts)}\n")
        mkdocs_gen_files.set_edit_path(doc, path.relative_to(ROOT))

with mkdocs_gen_files.open("reference/index.md", "w") as f:
    f.write(
        "# API reference\n\nGenerated from the docstrings of every module at build time. "
        "`grokcore` trains (pure PyTorch, no Ray), `sweeps` runs sweeps (Ray Tune, Optuna, the `grok` CLI), "
        "`analysis` reads the results and draws the report; [the design](../design.md) says how they fit.\n\n"
        + "".join(f"- [`{package}`]({package}/index.md)\n" for package in PACKAGES)
    )

with mkdocs_gen_files.open("reference/SUMMARY.md", "w") as f:
    f.write("* [Overview](index.md)\n")
    f.writelines(nav.build_literate_nav())
