"""A single self-contained HTML page: inline CSS, images as base64 data URIs, no scripts and no
external requests, so the file can be mailed, archived or opened offline as it is."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mtgan.atomic import write_text_atomic

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; color: #222;
       padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.6em; }
.sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th { background: #f3f3f3; }
td:first-child, th:first-child { text-align: left; }
figure { display: inline-block; margin: 0.5em 1em 0.5em 0; vertical-align: top; }
figcaption { color: #555; font-size: 0.85em; }
img { max-width: 100%; border: 1px solid #eee; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
.note { color: #555; font-size: 0.9em; }
"""


@dataclass
class Section:
    title: str
    body: str  # HTML


def esc(text: object) -> str:
    return html.escape(str(text))


def image(png: bytes, alt: str, caption: str | None = None, width: int | None = None) -> str:
    """An embedded PNG, with a caption under it when given."""
    data = base64.b64encode(png).decode("ascii")
    size = f' style="width:{width}px"' if width else ""
    tag = f'<img src="data:image/png;base64,{data}" alt="{esc(alt)}"{size}>'
    if caption is None:
        return tag
    return f"<figure>{tag}<figcaption>{esc(caption)}</figcaption></figure>"


def image_file(path: Path, caption: str | None = None, width: int | None = None) -> str:
    return image(path.read_bytes(), path.name, caption, width)


def table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def paragraph(text: str, cls: str = "note") -> str:
    return f'<p class="{cls}">{esc(text)}</p>'


def preformatted(text: str, summary: str | None = None) -> str:
    block = f"<pre>{esc(text)}</pre>"
    if summary is None:
        return block
    return f"<details><summary>{esc(summary)}</summary>{block}</details>"


def page(title: str, subtitle: str, sections: Sequence[Section]) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f'<p class="sub">{esc(subtitle)}</p>',
    ]
    for s in sections:
        parts.append(f"<section><h2>{esc(s.title)}</h2>{s.body}</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_page(path: Path, text: str) -> Path:
    return write_text_atomic(path, text)
