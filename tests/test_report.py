"""The report: one self-contained HTML page (every figure a data URI, nothing fetched), a Markdown copy whose
figure links resolve, the size cap, and a real browser that loads every image without an error."""
import base64
import html
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from trex.report import MiB, Report, ReportTooLarge, chromium, dump_dom, screenshot  # noqa: E402


class Tags(HTMLParser):
    """Every (tag, attributes) of a page."""

    def __init__(self, page):
        super().__init__()
        self.tags = []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def png_file(path, w, h, noise=False):
    if noise:  # incompressible: the PNG is about w*h*3 bytes
        a = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    else:
        y, x = np.mgrid[0:h, 0:w]
        a = np.stack([x % 256, y % 256, (x + y) % 256], -1).astype(np.uint8)
    Image.fromarray(a).save(path)
    return path


def sample_report(tmp_path, big=(900, 600)):
    r = Report("Ambiguous 1 vs 7 <check escaping>")
    r.add_section("Diagnostics")
    r.add_text("Confidence R-hat **1.05**, see `diagnostics.md`.\n\n- one [external link](https://example.org)\n- two")
    r.add_table([{"target": "ambiguous:1,7", "within 0.1": 0.999}, {"target": "a|b"}], ["target", "within 0.1"],
                caption="per target")
    r.add_section("Figures")
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1, 2], [0, 1, 4])
    r.add_figure(fig, caption="a matplotlib figure")
    plt.close(fig)
    r.add_figure(png_file(tmp_path / "grid.png", *big), caption="a PNG file")
    return r


def test_html_embeds_every_figure_and_fetches_nothing(tmp_path):
    md, page_path = sample_report(tmp_path).write(tmp_path / "out", "report")
    page = page_path.read_text()
    tags = Tags(page).tags
    imgs = [a["src"] for t, a in tags if t == "img"]
    assert len(imgs) == 2
    for src in imgs:
        assert src.startswith("data:image/png;base64,")
        Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).verify()
    urls = [v for _, a in tags for k, v in a.items() if k in ("src", "href") and v]
    assert urls and not [u for u in urls if re.match(r"(https?:)?//", u)]  # the Markdown link became its text
    assert not [t for t, a in tags if t == "link" or (t == "script" and "src" in a)]
    assert "<check escaping>" not in page and "&lt;check escaping&gt;" in page
    # the table of contents: one entry per section, table and figure, each pointing at an id on the page
    ids = {a["id"] for _, a in tags if "id" in a}
    toc = [a["href"][1:] for t, a in tags if t == "a" and a.get("href", "").startswith("#")]
    assert len(toc) == 5 and set(toc) <= ids
    assert "<table>" in page and "<th>within 0.1</th>" in page and "<strong>1.05</strong>" in page


def test_markdown_links_resolve_to_the_full_size_figures(tmp_path):
    out = tmp_path / "out"
    (out / "report_files").mkdir(parents=True)
    (out / "report_files" / "stale.png").write_bytes(b"old")
    md, _ = sample_report(tmp_path).write(out, "report")
    text = md.read_text()
    refs = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(refs) == 2
    for ref in refs:
        assert not Path(ref).is_absolute() and (md.parent / ref).is_file()
    assert (md.parent / refs[1]).read_bytes() == (tmp_path / "grid.png").read_bytes()
    assert sorted(p.name for p in (out / "report_files").iterdir()) == sorted(Path(r).name for r in refs)
    assert r"| a\|b | - |" in text  # a '|' in a cell is escaped, a missing value shows '-'


def test_figures_over_the_pixel_budget_are_downscaled_in_the_html_only(tmp_path):
    r = Report("big", max_pixels=1_000_000)
    r.add_figure(png_file(tmp_path / "big.png", 3000, 2000), caption="3000 x 2000")
    md, page_path = r.write(tmp_path / "out", "r")
    (src,) = [a["src"] for t, a in Tags(page_path.read_text()).tags if t == "img"]
    w, h = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).size
    assert w * h <= 1_000_000 and w * h > 0.95e6 and abs(w / h - 1.5) < 0.01
    assert Image.open(md.parent / "r_files" / "figure-1.png").size == (3000, 2000)


def test_a_page_over_its_cap_is_refused_and_nothing_is_written(tmp_path):
    noise = png_file(tmp_path / "noise.png", 800, 800, noise=True)  # about 1.9 MB, 2.5 MB as base64
    r = Report("too big", max_html_bytes=2 * MiB).add_figure(noise, "noise")
    with pytest.raises(ReportTooLarge, match=r"over its cap of 2\.00 MiB.*figure-1"):
        r.write(tmp_path / "out", "r")
    assert not (tmp_path / "out").exists()
    r.max_html_bytes = 5 * MiB  # the default cap holds it
    assert r.write(tmp_path / "out", "r")[1].stat().st_size > 2 * MiB


def test_bad_inputs_fail_at_once(tmp_path):
    (tmp_path / "x.png").write_text("not a png")
    with pytest.raises(ValueError, match="not a PNG"):
        Report("t").add_figure(tmp_path / "x.png")
    with pytest.raises(ValueError, match="2 cells for 3 columns"):
        Report("t").add_table([[1, 2]], ["a", "b", "c"])


# --- in a real browser ------------------------------------------------------------------------------------

needs_chromium = pytest.mark.skipif(chromium() is None, reason="chromium is not on PATH (.ci/run installs Debian's)")

# Records uncaught errors and blocked (non-inline) resources, then on load writes how many images decoded.
PROBE = """<script>
var probe = {errors: [], blocked: []};
window.onerror = function (msg) { probe.errors.push(String(msg)); };
document.addEventListener("securitypolicyviolation", function (e) { probe.blocked.push(e.blockedURI); });
window.addEventListener("load", function () {
  var imgs = Array.from(document.images);
  probe.images = imgs.length;
  probe.loaded = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  var out = document.createElement("pre"); out.id = "probe"; out.textContent = JSON.stringify(probe);
  document.body.appendChild(out);
});
</script>"""


def probe(page_path, extra=""):
    page = page_path.read_text().replace("<body>", "<body>" + PROBE + extra, 1)
    probed = page_path.with_name("probed.html")
    probed.write_text(page)
    m = re.search(r'<pre id="probe">(.*?)</pre>', dump_dom(probed), re.S)
    assert m, "the probe never reported: the page's load event did not fire"
    return json.loads(html.unescape(m.group(1)))


@needs_chromium
def test_chromium_loads_every_image_without_an_error(tmp_path):
    _, page_path = sample_report(tmp_path).write(tmp_path / "out", "report")
    got = probe(page_path)
    assert got == {"errors": [], "blocked": [], "images": 2, "loaded": 2}
    # the probe itself can fail: an external image and a throwing script on the same page are caught
    bad = probe(page_path, '<img src="https://example.org/x.png"><script>throw new Error("boom")</script>')
    assert bad["images"] == 3 and bad["loaded"] == 2
    assert any("example.org" in u for u in bad["blocked"]) and any("boom" in e for e in bad["errors"])


@needs_chromium
def test_screenshot_of_the_report(tmp_path):
    _, page_path = sample_report(tmp_path).write(tmp_path / "out", "report")
    shot = screenshot(page_path, tmp_path / "report.png", width=1200, height=2000)
    im = np.asarray(Image.open(shot).convert("L"))
    assert im.shape == (2000, 1200)
    assert (im < 128).mean() > 0.01  # text and figures, not a blank page


@pytest.mark.parametrize("mode", ["L", "RGBA", "P"])
def test_downscaling_keeps_grey_grey_and_transparency(tmp_path, mode):
    from trex.report import fit_png
    im = Image.fromarray(np.random.default_rng(0).integers(0, 256, (400, 600, 4), dtype=np.uint8), "RGBA")
    im = im.convert(mode) if mode != "P" else im.convert("RGB").quantize(16)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    png, (w, h) = fit_png(buf.getvalue(), 60_000)
    small = Image.open(io.BytesIO(png))
    assert small.size == (w, h) and w * h <= 60_000 and abs(w / h - 1.5) < 0.02
    assert small.mode == {"L": "L", "RGBA": "RGBA", "P": "RGB"}[mode]


def test_a_plot_goes_into_the_page_in_a_palette_close_to_its_colours_and_with_its_transparency():
    from trex.report import palette_png
    rng = np.random.default_rng(0)
    colours = rng.integers(0, 256, (200, 4), dtype=np.uint8)
    colours[:50, 3] = 0  # some fully transparent
    colours[50:, 3] = 255
    pixels = colours[rng.integers(0, 200, (300, 400))]
    buf = io.BytesIO()
    Image.fromarray(pixels, "RGBA").save(buf, format="PNG")
    out = palette_png(buf.getvalue())
    assert len(out) < len(buf.getvalue())
    back = np.asarray(Image.open(io.BytesIO(out)).convert("RGBA"))
    opaque = pixels[..., 3] == 255
    assert np.abs(back[opaque].astype(int) - pixels[opaque]).mean() <= 4.0  # the promised bound
    assert len(np.unique(back.reshape(-1, 4), axis=0)) <= 256 and (back[~opaque][:, 3] == 0).all()
    noise = io.BytesIO()  # 16 M colours: a palette would be far off, so the PNG stays as it is
    Image.fromarray(rng.integers(0, 256, (100, 100, 3), dtype=np.uint8), "RGB").save(noise, format="PNG")
    assert palette_png(noise.getvalue()) == noise.getvalue()
    grey = io.BytesIO()
    Image.fromarray(pixels[..., 0], "L").save(grey, format="PNG")
    assert palette_png(grey.getvalue()) == grey.getvalue()  # grey is left as it is
