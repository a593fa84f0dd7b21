"""Sphinx fixes for the course's site (loaded by _config.yml's ``sphinx: local_extensions``).

Sphinx 7.4 (the line Jupyter Book 1 requires) writes every inline script that an extension adds
after the builder starts twice: once registered with the file name ``None`` and once with ``""``.
sphinx-thebe's ``const THEBE_JS_URL = ...`` then raises "Identifier 'THEBE_JS_URL' has already
been declared" on every page (found by tests/test_site.py). Each page keeps one copy.

myst-nb's ``nb_merge_streams`` joins a cell's stream outputs with a newline after each piece, so
a progress bar that redraws its line with carriage returns (tqdm, in the Trainer) shows every
redraw, hundreds of lines per training cell. The pieces are joined as written first, and each
line keeps what a terminal would show: the text after its last carriage return.
"""

from __future__ import annotations

from myst_nb.core import render

_coalesce_streams = render.coalesce_streams


def _join_streams_as_a_terminal_shows_them(outputs: list) -> list:
    joined, streams = [], {}
    for output in outputs:
        name = output.get("name") if output["output_type"] == "stream" else None
        if name in streams:
            streams[name]["text"] += output["text"]
            continue
        if name is not None:
            output = streams[name] = output.copy()
        joined.append(output)
    for output in streams.values():
        lines = output["text"].split("\n")
        output["text"] = "\n".join(line.rstrip("\r").rsplit("\r", 1)[-1] for line in lines)
    return _coalesce_streams(joined)


def _drop_repeated_scripts(app, pagename, templatename, context, doctree) -> None:
    seen, unique = set(), []
    for script in context.get("script_files", []):
        key = (script.filename or "", script.priority, tuple(sorted(script.attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    render.coalesce_streams = _join_streams_as_a_terminal_shows_them
    app.connect("html-page-context", _drop_repeated_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
