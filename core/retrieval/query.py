"""A person's or a model's search text made into an FTS5 query that cannot fail.

FTS5 has its own query language (AND, OR, NOT, NEAR, `*`, `^`, `:`, parentheses,
quotes), and text typed by a person or written by a model trips over it: `what's
"new`, `C++ OR`, `col:value`. Nothing of that language passes through. The text is cut
into words (letters and digits, as the index's tokenizer sees them); a "quoted
phrase" stays a phrase; each word or phrase is quoted; and they are joined with OR,
so a question finds the chunks that share most of its rarer words (BM25 ranks them).
Common English words are dropped unless nothing else is left.
"""

from __future__ import annotations

import re

MAX_TERMS = 32  # a pasted page does not become a query of thousands of terms

_WORD = re.compile(r"\w+", re.UNICODE)
_PHRASE = re.compile(r'"([^"]*)"')
_STOPWORDS = frozenset("""
a an and are as at be but by can could did do does for from had has have how i if in
into is it its me my no not of on or our so than that the their them then there these
they this to was we were what when where which who whom why will with would you your
""".split())


def match_expression(text: str) -> str | None:
    """An FTS5 MATCH expression for `text`, or None when it holds no word to search."""
    phrases = [" ".join(ws) for ws in map(_WORD.findall, _PHRASE.findall(text)) if ws]
    words = _WORD.findall(_PHRASE.sub(" ", text).replace('"', " "))
    kept = [w for w in words if w.lower() not in _STOPWORDS] or ([] if phrases else words)
    unique = list(dict.fromkeys(t.lower() for t in phrases + kept))[:MAX_TERMS]
    if not unique:
        return None
    return " OR ".join(f'"{t}"' for t in unique)
