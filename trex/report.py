"""A report built from sections, written twice: `name.md` with its figures as PNG files in `name_files/`,
and `name.html`, one self-contained page (images as data URIs, inline CSS, no script, no external resource)
that can be mailed or attached to an issue and still opens offline.

    r = Report("MNIST ambiguous 1 vs 7")
    r.add_section("Diagnostics")
    r.add_text("Confidence R-hat **1.05**; see the grid below.")
    r.add_table(rows, ["target", "within 0.1"], caption="per target")
    r.add_figure("runs/demo/ambiguous_1-7/grid.png", caption="best draws")
    r.write("runs/demo", "report")          # -> report.md, report_files/, report.html

Pure python + Pillow (a matplotlib dependency); Chromium is used only by `screenshot` and `dump_dom`.
"""
from __future__ import annotations

import base64
import html
import io
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from trex.summary import markdown_table

MiB = 1 << 20
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class ReportTooLarge(ValueError):
    """The HTML page would exceed its byte cap (raised before anything is written)."""


@dataclass
class _Block:
    kind: str            # "section" | "text" | "table" | "figure"
    text: str = ""       # section title, Markdown text, or caption
    rows: list = None    # table rows as lists of strings, in column order
    columns: list = None
    png: bytes = None    # figure, full resolution (the Markdown copy keeps it as is)
    anchor: str = ""


class Report:
    """Sections in the order they are added. `max_html_bytes` caps the page; `max_pixels` is the pixel
    budget of one embedded image (larger ones are downscaled in the HTML only)."""

    def __init__(self, title: str, max_html_bytes: int = 5 * MiB, max_pixels: int = 2_000_000):
        self.title = title
        self.max_html_bytes = max_html_bytes
        self.max_pixels = max_pixels
        self.blocks: list[_Block] = []

    def _anchor(self, kind: str) -> str:
        return f"{kind}-{sum(b.kind == kind for b in self.blocks) + 1}"

    def add_section(self, title: str) -> "Report":
        self.blocks.append(_Block("section", title, anchor=self._anchor("section")))
        return self

    def add_text(self, md: str) -> "Report":
        self.blocks.append(_Block("text", md.strip()))
        return self

    def add_table(self, rows, columns, caption: str = "") -> "Report":
        """`rows`: dicts keyed by column (missing keys show '-') or sequences in column order."""
        columns = [str(c) for c in columns]
        cells = []
        for r in rows:
            vals = [r.get(c, "-") for c in columns] if isinstance(r, Mapping) else list(r)
            if len(vals) != len(columns):
                raise ValueError(f"a table row has {len(vals)} cells for {len(columns)} columns: {vals!r}")
            cells.append([str(v) for v in vals])
        self.blocks.append(_Block("table", caption, rows=cells, columns=columns, anchor=self._anchor("table")))
        return self

    def add_figure(self, figure, caption: str = "", dpi: int = 120) -> "Report":
        """`figure`: a PNG file or a matplotlib Figure (rendered now, so closing it later is fine)."""
        if hasattr(figure, "savefig"):
            buf = io.BytesIO()
            figure.savefig(buf, format="png", dpi=dpi)
            png = buf.getvalue()
        else:
            png = Path(figure).read_bytes()
            if not png.startswith(PNG_MAGIC):
                raise ValueError(f"{figure} is not a PNG file")
        self.blocks.append(_Block("figure", caption, png=png, anchor=self._anchor("figure")))
        return self

    # --- Markdown ---------------------------------------------------------------------------------

    def markdown(self, files_dir: str) -> tuple[str, dict[str, bytes]]:
        """The Markdown text, and the figure files it refers to ({path relative to the .md: PNG bytes})."""
        out, files = [f"# {self.title}"], {}
        for b in self.blocks:
            if b.kind == "section":
                out.append(f"## {b.text}")
            elif b.kind == "text":
                out.append(b.text)
            elif b.kind == "table":
                # a '|' inside a cell would end the cell in Markdown
                rows = [dict(zip(b.columns, (c.replace("|", r"\|") for c in r))) for r in b.rows]
                out.append((f"*{b.text}*\n\n" if b.text else "") + markdown_table(rows, b.columns))
            else:
                rel = f"{files_dir}/{b.anchor}.png"
                files[rel] = b.png
                out.append(f"![{b.text}]({rel})" + (f"\n\n*{b.text}*" if b.text else ""))
        return "\n\n".join(out) + "\n", files

    # --- HTML ---------------------------------------------------------------------------------------

    def html(self) -> str:
        """The self-contained page. Raises ReportTooLarge past `max_html_bytes`."""
        toc, body, embedded = [], [], []
        for b in self.blocks:
            if b.kind == "section":
                toc.append(f'<li><a href="#{b.anchor}">{_esc(b.text)}</a></li>')
                body.append(f'<h2 id="{b.anchor}">{_esc(b.text)}</h2>')
            elif b.kind == "text":
                body.append(_text_html(b.text))
            elif b.kind == "table":
                toc.append(f'<li class="sub"><a href="#{b.anchor}">Table: {_esc(b.text or b.anchor)}</a></li>')
                body.append(_table_html(b))
            else:
                toc.append(f'<li class="sub"><a href="#{b.anchor}">Figure: {_esc(b.text or b.anchor)}</a></li>')
                png, (w, h) = fit_png(b.png, self.max_pixels)
                png = palette_png(png)
                uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
                embedded.append((len(uri), b.anchor))
                body.append(f'<figure id="{b.anchor}"><img src="{uri}" width="{w}" height="{h}" '
                            f'alt="{_esc(b.text)}"><figcaption>{_inline(b.text)}</figcaption></figure>')
        nav = f'<nav><h2>Contents</h2><ul>{"".join(toc)}</ul></nav>' if toc else ""
        page = _PAGE.format(title=_esc(self.title), css=_CSS, nav=nav, body="\n".join(body))
        size = len(page.encode("utf-8"))
        if size > self.max_html_bytes:
            figs = sorted(embedded, reverse=True)[:3]
            raise ReportTooLarge(
                f"the HTML report would be {size / MiB:.2f} MiB, over its cap of {self.max_html_bytes / MiB:.2f} MiB "
                f"(largest embedded figures: {', '.join(f'{a} {n / MiB:.2f} MiB' for n, a in figs) or 'none'}); "
                f"lower max_pixels (now {self.max_pixels}), drop figures, or raise max_html_bytes")
        return page

    def write(self, folder, name: str = "report") -> tuple[Path, Path]:
        """Write `name.md`, `name_files/*.png` and `name.html` into `folder`; returns (md, html) paths.
        The HTML is built first, so a report over its cap leaves nothing half-written."""
        folder = Path(folder)
        page = self.html()
        text, files = self.markdown(f"{name}_files")
        folder.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(folder / f"{name}_files", ignore_errors=True)  # no stale figures from an earlier write
        for rel, png in files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(png)
        md, page_path = folder / f"{name}.md", folder / f"{name}.html"
        md.write_text(text)
        page_path.write_text(page, encoding="utf-8")
        return md, page_path


def fit_png(png: bytes, max_pixels: int) -> tuple[bytes, tuple[int, int]]:
    """The PNG itself if within `max_pixels`, else downscaled (aspect kept) and re-encoded; and its size."""
    with Image.open(io.BytesIO(png)) as im:
        w, h = im.size
        if w * h <= max_pixels:
            return png, (w, h)
        f = (max_pixels / (w * h)) ** 0.5
        size = (max(1, int(w * f)), max(1, int(h * f)))
        if im.mode in ("L", "LA", "RGB", "RGBA"):
            mode = im.mode  # grey stays grey: a third of the bytes of the same picture in RGB
        else:  # palette, 1-bit, 16-bit: resampling needs plain channels
            mode = "RGBA" if "A" in im.getbands() or "transparency" in im.info else "RGB"
        small = im.convert(mode).resize(size, Image.LANCZOS)
        buf = io.BytesIO()
        small.save(buf, format="PNG", optimize=True)
        return buf.getvalue(), size


def _premultiplied(im) -> np.ndarray:
    """Pixels as floats, colour scaled by alpha: a transparent pixel's colour does not count."""
    a = np.asarray(im, dtype=np.float32)
    if a.shape[-1] == 4:
        a = np.concatenate([a[..., :3] * a[..., 3:] / 255.0, a[..., 3:]], -1)
    return a


def palette_png(png: bytes, colours: int = 256, max_error: float = 4.0) -> bytes:
    """An RGB(A) PNG in an adaptive palette of `colours` when that is smaller and close (mean absolute
    error per channel at most `max_error` of 255), else the PNG itself. A plot's antialiased dots and lines
    need few colours: a t-SNE map drops to a third of its bytes (209 to 70 KB, mean error 2), so a report
    of every run stays under its cap; noise or a photograph (error ~15) is left alone. Transparency is
    kept. Grey and palette images are left alone."""
    with Image.open(io.BytesIO(png)) as im:
        if im.mode not in ("RGB", "RGBA"):
            return png
        q = im.quantize(colours, method=Image.Quantize.FASTOCTREE)
        error = np.abs(_premultiplied(q.convert(im.mode)) - _premultiplied(im)).mean()
        if error > max_error:
            return png
        buf = io.BytesIO()
        q.save(buf, format="PNG", optimize=True)
    out = buf.getvalue()
    return out if len(out) < len(png) else png


# The text blocks are the report's own short prose, not arbitrary Markdown: paragraphs, "- " lists,
# `code`, **bold** and *italics* cover what the suite writes. Links become their text (no external href).
_INLINE = [(re.compile(r"`([^`]+)`"), r"<code>\1</code>"),
           (re.compile(r"\*\*([^*]+)\*\*"), r"<strong>\1</strong>"),
           (re.compile(r"(?<![\w*])\*([^*\s][^*]*)\*(?![\w*])"), r"<em>\1</em>"),
           (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1")]


def _esc(s: str) -> str:
    return html.escape(str(s), quote=True)


def _inline(s: str) -> str:
    s = _esc(s)
    for pat, rep in _INLINE:
        s = pat.sub(rep, s)
    return s


def _text_html(md: str) -> str:
    out = []
    for para in re.split(r"\n\s*\n", md):
        lines = [ln.strip() for ln in para.strip().splitlines()]
        if lines and all(ln.startswith("- ") for ln in lines):
            out.append("<ul>" + "".join(f"<li>{_inline(ln[2:])}</li>" for ln in lines) + "</ul>")
        elif lines:
            out.append(f"<p>{_inline(' '.join(lines))}</p>")
    return "\n".join(out)


def _table_html(b: _Block) -> str:
    head = "".join(f"<th>{_inline(c)}</th>" for c in b.columns)
    rows = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in b.rows)
    cap = f"<caption>{_inline(b.text)}</caption>" if b.text else ""
    return f'<div class="table" id="{b.anchor}"><table>{cap}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>'


# The Content-Security-Policy makes the browser itself refuse any resource that is not inline or a data
# URI, so a page that opens fine here cannot depend on the network somewhere else.
_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><style>{css}</style></head>
<body><main><h1>{title}</h1>
{nav}
{body}
</main></body></html>
"""

_CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; background: #fff; margin: 0; }
main { max-width: 1100px; margin: 0 auto; padding: 1.5em 2em 4em; }
h1 { font-size: 1.7em; border-bottom: 2px solid #ddd; padding-bottom: .3em; }
h2 { font-size: 1.3em; margin-top: 1.8em; border-bottom: 1px solid #eee; }
nav { background: #f6f8fa; border: 1px solid #e1e4e8; border-radius: 6px; padding: .2em 1.2em .6em; }
nav h2 { font-size: 1em; border: 0; margin: .6em 0 .2em; }
nav ul { margin: 0; padding-left: 1.2em; } nav li.sub { margin-left: 1.2em; font-size: .92em; }
a { color: #0366d6; text-decoration: none; } a:hover { text-decoration: underline; }
code { background: #f3f3f3; padding: .1em .3em; border-radius: 3px; font-size: .92em; }
.table { overflow-x: auto; margin: 1em 0; }
table { border-collapse: collapse; font-size: .9em; font-variant-numeric: tabular-nums; }
caption { caption-side: top; text-align: left; font-style: italic; padding: .3em 0; }
th, td { border: 1px solid #d0d7de; padding: .3em .6em; text-align: left; vertical-align: top; }
thead th { background: #eef1f4; position: sticky; top: 0; }
tbody tr:nth-child(even) { background: #f8f9fa; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: .9em; color: #555; margin-top: .3em; }
"""


# --- Chromium (headless) -------------------------------------------------------------------------------

def chromium() -> str | None:
    """The Chromium binary on PATH, or None."""
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


def _run_chromium(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    exe = chromium()
    if exe is None:
        raise FileNotFoundError("chromium is not on PATH (Debian: apt-get install chromium)")
    # a throw-away profile: no lock clash with another Chromium, nothing left in $HOME
    with tempfile.TemporaryDirectory() as profile:
        # --no-sandbox: Chromium refuses to run as root with its sandbox, and CI containers often lack the
        # user namespaces it needs; the pages opened here are our own files
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
               f"--user-data-dir={profile}", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)


def dump_dom(html_path, timeout: float = 60) -> str:
    """The page's DOM after it loaded (and its scripts ran), as Chromium serialises it."""
    url = Path(html_path).resolve().as_uri()
    return _run_chromium(["--virtual-time-budget=5000", "--dump-dom", url], timeout).stdout


def screenshot(html_path, png_path, width: int = 1200, height: int = 2000, timeout: float = 60) -> Path:
    """A PNG of the page's top `width` × `height` pixels (for the README)."""
    png_path = Path(png_path).resolve()
    png_path.parent.mkdir(parents=True, exist_ok=True)
    url = Path(html_path).resolve().as_uri()
    _run_chromium([f"--screenshot={png_path}", f"--window-size={width},{height}", url], timeout)
    if not png_path.exists():
        raise RuntimeError(f"chromium wrote no screenshot to {png_path}")
    return png_path
