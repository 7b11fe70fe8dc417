"""The e-mail templates (include/templates): loaded and compiled once per process, CSS inlined.

The HTML templates' styles (``digest.css``) are inlined into ``style=""`` attributes once, when
the templates load (css-inline): mail clients drop ``<style>`` blocks. HTML templates are
autoescaped; text templates are plain.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import css_inline
import jinja2

_JINJA_STATEMENT = re.compile(r"{%.*?%}|{#.*?#}", re.S)


def inline_css(template_source: str, css: str, fragment: bool = False) -> str:
    """Inline ``css`` into the template's style attributes, keeping Jinja statements intact.

    Statements become HTML comments while the HTML parser runs (a comment is never moved,
    even inside a table), then are put back.
    """
    statements: list[str] = []

    def protect(match: re.Match[str]) -> str:
        statements.append(match.group(0))
        return f"<!--jinja-stmt-{len(statements) - 1}-->"

    protected = _JINJA_STATEMENT.sub(protect, template_source)
    if fragment:
        inlined = css_inline.inline_fragment(protected, css)
    else:
        inlined = css_inline.CSSInliner(extra_css=css).inline(protected)
    restored = re.sub(r"<!--jinja-stmt-(\d+)-->", lambda m: statements[int(m.group(1))], inlined)
    if _JINJA_STATEMENT.findall(restored) != statements:
        raise RuntimeError("CSS inlining changed the template's Jinja statements")
    return restored


@dataclass(frozen=True)
class Templates:
    html: jinja2.Template          # the whole HTML message (CSS inlined)
    topics_html: jinja2.Template   # the company's topics, HTML (CSS inlined)
    text: jinja2.Template          # the whole text/plain message
    topics_text: jinja2.Template   # the company's topics, text
    subject: jinja2.Template


def load(folder: Path) -> Templates:
    """The compiled templates of ``folder``, once per process and per version of its files."""
    stamp = tuple(sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file()))
    return _compile(str(folder), stamp)


@functools.lru_cache(maxsize=8)
def _compile(folder: str, stamp: tuple[tuple[str, int], ...]) -> Templates:
    """Compiling costs ~60 ms: a Renderer per batch (or per preview request) must not pay it."""
    loader = jinja2.FileSystemLoader(folder)
    # select_autoescape also escapes from_string() templates, which is how the CSS-inlined HTML is compiled.
    env = jinja2.Environment(
        loader=loader, autoescape=jinja2.select_autoescape(["html", "html.j2"]),
        trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined,
        auto_reload=False,  # the stamp above recompiles on a change; else each include stats its file per message
    )
    css = (Path(folder) / "digest.css").read_text(encoding="utf-8")
    return Templates(
        html=env.from_string(inline_css(loader.get_source(env, "digest.html.j2")[0], css)),
        topics_html=env.from_string(inline_css(loader.get_source(env, "_topics.html.j2")[0], css, fragment=True)),
        text=env.get_template("digest.txt.j2"),
        topics_text=env.get_template("_topics.txt.j2"),
        subject=env.get_template("subject.txt.j2"),
    )
