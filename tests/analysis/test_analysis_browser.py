"""The report opens in headless Chromium: every figure is drawn, the page is not blank, the console is silent.

A negative control first shows that the same check sees a console error and an
uncaught exception, and that the screenshot reader sees what was drawn; a check
that could not fail would prove nothing.
"""

import html
import re

import numpy as np
from analysis_chromium import ink, load_page, needs_chromium, read_png

from analysis.report import write_report

pytestmark = needs_chromium


def test_negative_control_sees_errors_and_pixels(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text(
        '<html><body style="margin:0;background:#fff">'
        '<div style="width:100%;height:300px;background:rgb(255,0,0)"></div>'
        '<script>console.error("deliberate console error"); notAFunction();</script></body></html>'
    )
    shot = tmp_path / "bad.png"
    loaded = load_page(page, tmp_path / "profile", screenshot=shot, window=(800, 600), scale=1)
    assert any("deliberate console error" in line for line in loaded.console)
    assert any("notAFunction is not defined" in line for line in loaded.console)
    image = read_png(shot)
    assert image.shape[:2] == (600, 800)
    assert tuple(image[10, 10, :3]) == (255, 0, 0) and tuple(image[500, 10, :3]) == (255, 255, 255)


def test_report_renders_in_headless_chromium(grid_sweep_dir, tmp_path):
    index = write_report(grid_sweep_dir, out_dir=tmp_path / "report", png=False)
    ids = re.findall(r'<div id="([^"]+)" class="plotly-graph-div"', index.read_text(encoding="utf-8"))
    assert len(ids) >= 8

    dom = load_page(index, tmp_path / "profile-dom", dump_dom=True)
    assert dom.console == [], f"console output from the report: {dom.console}"
    for figure_id in ids:
        # plotly adds js-plotly-plot to a div it has drawn into, and an SVG for the plot.
        drawn = re.search(rf'<div id="{re.escape(figure_id)}" class="plotly-graph-div js-plotly-plot"', dom.stdout)
        assert drawn, f"figure {figure_id} was not drawn"
    assert dom.stdout.count('class="main-svg"') >= len(ids)
    assert "heatmaplayer" in dom.stdout  # the phase diagrams are heatmaps
    assert '<span id="members-shown">60 of 60 members shown</span>' in dom.stdout  # the table's script ran

    shot = tmp_path / "report.png"
    screenshot = load_page(index, tmp_path / "profile-shot", screenshot=shot)
    assert screenshot.console == [], f"console output from the report: {screenshot.console}"
    image = read_png(shot)
    nonwhite, colours = ink(image)
    assert nonwhite > 0.1 and colours > 200, f"the screenshot looks blank: {nonwhite:.3f} ink, {colours} colours"
    # Ink all down the page, not only a title: every fifth of the screenshot holds something.
    fifths = np.array_split(image[..., :3].min(axis=-1) < 245, 5)
    assert all(part.mean() > 0.02 for part in fifths)


def _figure_markup(dom: str, figure_id: str) -> str:
    """The rendered markup of one figure: from its div to the next figure's div."""
    start = dom.index(f'<div id="{figure_id}"')
    following = dom.find('class="plotly-graph-div', dom.index(">", start))
    return dom[start : following if following > 0 else len(dom)]


def _rendered(markup: str, group: str) -> list[str]:
    """The text plotly drew in each <g class=group> (data-unformatted keeps '<br>' line breaks)."""
    return [
        html.unescape(t) for t in re.findall(rf'<g class="{group}"[^>]*><text[^>]*data-unformatted="([^"]*)"', markup)
    ]


def test_tick_labels_and_cell_texts_read_back_from_the_rendered_page(tmp_path):
    """What a reader sees in the browser is what the data says: every swept value labelled (0.3 reads 0.3,
    not '3'), each phase-map cell names its phase and counts, a tie reads 'mixed', and log epoch axes are
    labelled in increasing full numbers."""
    import analysis_synthetic as synthetic
    from analysis_synthetic import Member

    tfs, wds = (0.3, 0.5, 0.7), (0.03, 0.1, 0.3, 1.0, 3.0)

    def gen_epoch(tf, wd, seed):
        if tf == 0.3 or (tf == 0.5 and wd == 0.03 and seed == 0):  # the second: a 1-1 tie in its cell
            return None
        return 1500 if wd < 1 else 300  # memorised at 100: grokking vs comprehension

    members = [
        Member(
            config={**synthetic.SMALL, "train_fraction": tf, "weight_decay": wd, "seed": s},
            mem_epoch=100,
            gen_epoch=gen_epoch(tf, wd, s),
        )
        for tf in tfs
        for wd in wds
        for s in (0, 1)
    ]
    index = write_report(synthetic.write_sweep(tmp_path, "ticks", members), out_dir=tmp_path / "report", png=False)
    dom = load_page(index, tmp_path / "profile", dump_dom=True)
    assert dom.console == [], f"console output from the report: {dom.console}"

    phase_map = _figure_markup(dom.stdout, "phase__train_fraction__weight_decay__phase")
    assert _rendered(phase_map, "xtick") == ["0.3", "0.5", "0.7"]
    assert _rendered(phase_map, "ytick") == ["0.03", "0.1", "0.3", "1", "3"]
    expected = []
    for wd in wds:
        for tf in tfs:
            if tf == 0.3:  # nobody generalised in the 5,000 epochs: the cell says so
                expected.append("memorisation 2/2<br>2/2 censored at 5,000")
            elif tf == 0.5 and wd == 0.03:
                expected.append("mixed<br>grokking 1/2<br>memorisation 1/2<br>1/2 censored at 5,000")
            else:
                expected.append("grokking 2/2" if wd < 1 else "comprehension 2/2")
    assert sorted(_rendered(phase_map, "textpoint")) == sorted(expected)
    legend = re.findall(r'class="legendtext"[^>]*data-unformatted="([^"]*)"', phase_map)
    assert {"comprehension", "grokking", "memorisation", "mixed", "censored at the budget"} <= set(legend)

    times = _figure_markup(dom.stdout, "phase__train_fraction__weight_decay__gen_epoch")
    assert _rendered(times, "ytick") == ["0.03", "0.1", "0.3", "1", "3"]
    texts = _rendered(times, "textpoint")
    assert texts.count("> 5000<br>0/2 generalised") == 5 and "1500<br>1/2 generalised" in texts
    assert texts.count("300<br>2/2 generalised") == 4 and texts.count("1500<br>2/2 generalised") == 5

    curve = _figure_markup(dom.stdout, "curves__grokking")
    for axis in ("xtick", "x2tick", "ytick"):
        labels = [float(t) for t in _rendered(curve, axis)]
        assert len(labels) >= 2 and labels == sorted(labels) and len(set(labels)) == len(labels), (axis, labels)


def test_members_table_sorts_and_filters_in_the_browser(grid_times, tmp_path):
    """Click the gen_epoch header, then type a phase into the filter, in Chromium: the page's own script
    sorts numerically with missing values last and keeps only matching rows."""
    from analysis.report import _members_section

    drive = """
    <script>
      var headers = Array.prototype.slice.call(document.querySelectorAll('#members thead th'));
      var col = headers.findIndex(function (th) { return th.textContent === 'gen_epoch'; });
      headers[col].click();
      var rows = Array.prototype.slice.call(document.querySelectorAll('#members tbody tr'));
      var first = rows.slice(0, 2).map(function (r) { return r.cells[col].textContent; });
      var last = rows[rows.length - 1].cells[col].textContent;
      var input = document.getElementById('members-filter');
      input.value = 'memorisation';
      input.dispatchEvent(new Event('input'));
      var shown = rows.filter(function (r) { return r.style.display !== 'none'; }).length;
      var out = document.createElement('pre');
      out.id = 'result';
      out.textContent = first.join(',') + '|' + last + '|' + shown;
      document.body.appendChild(out);
    </script>"""
    page = tmp_path / "members.html"
    page.write_text(
        f'<html><head><meta charset="utf-8"></head><body>{_members_section(grid_times)}{drive}</body></html>',
        encoding="utf-8",
    )
    dom = load_page(page, tmp_path / "profile", dump_dom=True)
    assert dom.console == [], dom.console
    first, last, shown = re.search(r'<pre id="result">([^<]*)</pre>', dom.stdout).group(1).split("|")
    # The earliest generalisation is 500 epochs (weight decay 3); members that never generalised sort last.
    assert first == "500,500" and last == "—"
    assert shown == "28"  # the 28 memorising members of the grid
