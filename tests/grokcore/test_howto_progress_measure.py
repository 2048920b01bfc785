"""docs/howto/progress-measure.md says what the code does: every block it quotes from a file is in that
file, the row it shows is the registry's, and its notebook example puts the column in progress rows."""

import contextlib
import io
import math
import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
PAGE = ROOT / "docs" / "howto" / "progress-measure.md"


def quoted_blocks() -> list[tuple[str, str]]:
    """(file, code) of every ```python block whose paragraph ends by naming a file: "`path`:"."""
    text = PAGE.read_text()
    out = []
    for match in re.finditer(r"`([\w/]+\.py)`[^`\n]*:\n\n```python\n(.*?)```", text, re.DOTALL):
        out.append((match.group(1), match.group(2)))
    return out


def test_the_page_quotes_the_files_it_names():
    blocks = quoted_blocks()
    assert {f for f, _ in blocks} == {
        "grokcore/progress/entropy.py",
        "grokcore/progress/columns.py",
        "grokcore/progress/registry.py",
    }
    for path, code in blocks:
        assert code in (ROOT / path).read_text(), f"{path} no longer holds:\n{code}"


def test_the_row_on_the_page_is_the_registrys():
    from grokcore.progress import columns as col
    from grokcore.progress.registry import BY_KEY

    row = BY_KEY["fourier_entropy"]
    assert (row.function, row.marker, row.default, row.switchable) == (
        "grokcore.progress.entropy:fourier_entropy_columns",
        col.EMBED_ENTROPY,
        False,
        True,
    )
    assert f"grok measure results/mysweep --measures {row.key}" in PAGE.read_text()


def test_the_notebook_example_puts_the_column_in_the_progress_rows():
    text = PAGE.read_text()
    example = text.split("In a notebook, on a trainer:\n\n```python\n", 1)[1].split("```", 1)[0]
    scope: dict = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(example, str(PAGE), "exec"), scope)  # noqa: S102 - the page's own example, run as written
    rows = scope["rows"]
    assert [r["epoch"] for r in rows] == [10, 20]
    value = float(out.getvalue())
    assert value == rows[-1]["fourier/embed_entropy"] and 0 < value < math.log(11 // 2)
    assert not any(k.startswith("llc/") for k in rows[-1])  # llc=False, as the example says
