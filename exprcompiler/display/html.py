"""Small HTML pieces shared by the display modules (see display/__init__.py): escaping,
tables, the size notice of a value too large to show, and the guard that keeps a
display method from raising."""

from __future__ import annotations

import functools
import html
from typing import Callable, Optional, Sequence

# Inline styles only: a notebook's output area keeps them, and no stylesheet is needed.
TABLE = ('<table style="border-collapse: collapse; font-family: monospace; text-align: left; '
         'margin: 0.2em 0 0.8em 0">')
CELL = 'style="padding: 0.1em 0.8em; text-align: {align}; white-space: pre"'


def esc(text) -> str:
    """Text for HTML and XML element content or a quoted attribute."""
    return html.escape(str(text), quote=True)


def table(header: Sequence[str], rows: Sequence[Sequence[str]], *, caption: str = "",
          right: Sequence[int] = ()) -> str:
    """An HTML table of plain-text cells (escaped here); columns in `right` are
    right-aligned (numbers)."""
    def cells(tag: str, row) -> str:
        return "".join(f"<{tag} {CELL.format(align='right' if k in right else 'left')}>{esc(c)}</{tag}>"
                       for k, c in enumerate(row))
    parts = [TABLE]
    if caption:
        parts.append(f'<caption style="text-align: left; font-weight: bold">{esc(caption)}</caption>')
    if header:
        parts.append(f"<thead><tr>{cells('th', header)}</tr></thead>")
    parts.append("<tbody>" + "".join(f"<tr>{cells('td', row)}</tr>" for row in rows) + "</tbody>")
    parts.append("</table>")
    return "".join(parts)


def pre(text: str) -> str:
    return f"<pre>{esc(text)}</pre>"


def paragraph(text: str) -> str:
    return f"<p>{esc(text)}</p>"


def safe_display(method: Callable) -> Callable:
    """A `_repr_*_` method (or a function of the object it shows) that never raises: an
    error becomes the text repr and a one-line note in HTML (functions named *html*),
    or None for other formats, so the notebook falls back to the text repr; a failing
    display must not hide the value itself."""
    @functools.wraps(method)
    def guarded(self, *args, **kwargs) -> Optional[str]:
        try:
            return method(self, *args, **kwargs)
        except Exception as err:  # noqa: BLE001 - any failure: show the text instead
            if "html" not in method.__name__:
                return None
            note = f"(no rich display: {type(err).__name__}: {str(err)[:200]})"
            try:
                text = repr(self)
            except Exception:  # noqa: BLE001
                text = object.__repr__(self)
            return pre(text) + paragraph(note)
    return guarded
