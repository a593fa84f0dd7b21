"""Sphinx fixes for the course's site (loaded by _config.yml's ``sphinx: local_extensions``).

Sphinx 7.4 (the line Jupyter Book 1 requires) writes every inline script that an extension adds
after the builder starts twice: once registered with the file name ``None`` and once with ``""``.
sphinx-thebe's ``const THEBE_JS_URL = ...`` then raises "Identifier 'THEBE_JS_URL' has already
been declared" on every page (found by tests/test_site.py). Each page keeps one copy.
"""

from __future__ import annotations


def _drop_repeated_scripts(app, pagename, templatename, context, doctree) -> None:
    seen, unique = set(), []
    for script in context.get("script_files", []):
        key = (script.filename or "", script.priority, tuple(sorted(script.attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", _drop_repeated_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
