"""A griffe extension for the documentation site: Sphinx cross-reference roles in docstrings
(``:class:`~symplearn.FlowMap```, ``:meth:`vector_field```) become code spans (`FlowMap`,
`vector_field`), as Sphinx would print them, instead of showing as raw text.

``~a.b.C`` keeps the last component, ``text <target>`` keeps the text. Used by mkdocs.yml
(``mkdocstrings`` handler option ``extensions``); the library does not import it.
"""

from __future__ import annotations

import re

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|meth|func|mod|attr|data|exc|obj|const|type):`([^`]+)`")


def _text(match: re.Match) -> str:
    target = match.group(1).strip()
    explicit = re.fullmatch(r"(.+?)\s*<[^>]+>", target)
    if explicit:
        return f"`{explicit.group(1)}`"
    if target.startswith("~"):
        target = target[1:].rsplit(".", 1)[-1]
    return f"`{target}`"


def convert(text: str) -> str:
    """Docstring text with every Sphinx role written as a markdown code span."""
    return _ROLE.sub(_text, text)


class SphinxRoles(griffe.Extension):
    """Rewrites the roles of every docstring once it is loaded."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = convert(obj.docstring.value)
