"""The built site as a reader sees it: every page of ``_build/html`` in headless Chromium.

Run after the book build (``scripts/test.sh``). The site is served on 127.0.0.1 and every page is
opened in Debian's chromium, driven over the DevTools protocol on a pipe (standard library only);
other hosts are unreachable from the browser, so the result never depends on a CDN. Checks: no
JavaScript error and no failed request of our own pages, Markdown tables rendered as ``<table>``
(no paragraph of raw ``| a | b |`` text; the comparison table of every chapter that shows it),
every image loaded, no code line wider than its block, a progress bar shown once (its last state,
not each redraw). Full-page screenshots are written to
``_build/screenshots/`` as build artefacts. Skips with the reason without chromium or a build.
"""

from __future__ import annotations

import base64
import fcntl
import functools
import http.server
import json
import os
import queue
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from restorelab import pretrained

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
WIDTH, HEIGHT = 1280, 900  # a laptop window; the page's text column is about 750 px of it
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--remote-debugging-pipe", f"--window-size={WIDTH},{HEIGHT}",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # only the site itself loads
]  # fmt: skip

pytestmark = pytest.mark.site

# Runs in the page once it has loaded: waits for every image, then reports what the tests check.
INSPECT = """(async () => {
  const images = [...document.images];
  images.forEach(img => { img.loading = "eager"; });
  await Promise.all(images.map(img => img.complete ? null
      : new Promise(done => { img.onload = img.onerror = done; })));
  const pipeRow = /^\\s*\\|.*\\|\\s*$/m;
  return {
    brokenImages: images.filter(img => img.naturalWidth === 0).map(img => img.src),
    rawTables: [...document.querySelectorAll("p")]
        .filter(p => pipeRow.test(p.textContent) && (p.textContent.match(/\\|/g) || []).length >= 4)
        .map(p => p.textContent.trim().slice(0, 80)),
    tableHeaders: [...document.querySelectorAll("table")]
        .map(t => [...t.querySelectorAll("th")].map(th => th.textContent.trim())),
    repeatedProgress: [...document.querySelectorAll("pre")]  // a progress bar's every redraw
        .filter(pre => (pre.textContent.match(/\\| *\\d+\\/\\d+ \\[/g) || []).length > 3)
        .map(pre => pre.textContent.trim().split("\\n")[0].slice(0, 80)),
    overflowingCode: [...document.querySelectorAll("pre")]
        .filter(pre => pre.scrollWidth > pre.clientWidth + 1)
        .map(pre => pre.textContent.trim().split("\\n")[0].slice(0, 80)),
  };
})()"""


class Chromium:
    """Headless Chromium and one tab, driven over the DevTools protocol on a pipe."""

    def __init__(self, executable: str, profile: Path, log: Path) -> None:
        to_browser, self._send_fd = os.pipe()
        self._receive_fd, from_browser = os.pipe()
        # the protocol's pipe is the browser's file descriptors 3 (in) and 4 (out): the child's
        # ends move above 9 first, so that making 3 and 4 never overwrites one of them
        to_browser, from_browser = (_above_nine(fd) for fd in (to_browser, from_browser))
        command = (
            f'exec "$0" "$@" 3<&{to_browser} 4>&{from_browser} {to_browser}<&- {from_browser}>&-'
        )
        with open(log, "wb") as stderr:
            self.process = subprocess.Popen(
                ["bash", "-c", command, executable, *FLAGS, f"--user-data-dir={profile}"],
                pass_fds=(to_browser, from_browser), stdin=subprocess.DEVNULL,
                stdout=stderr, stderr=stderr,
            )  # fmt: skip
        os.close(to_browser)
        os.close(from_browser)
        self._messages: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self._next_id = 0
        self.events: list[dict] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        attached = self.call("Target.attachToTarget", targetId=target, flatten=True)
        self.session = attached["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable", session=self.session)

    def _read(self) -> None:
        buffer = b""
        while chunk := os.read(self._receive_fd, 1 << 16):
            buffer += chunk
            *complete, buffer = buffer.split(b"\0")
            for message in complete:
                self._messages.put(json.loads(message))
        self._messages.put(None)  # the browser closed the pipe

    def _next_message(self, timeout: float) -> dict:
        try:
            message = self._messages.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"chromium sent nothing for {timeout} s") from None
        if message is None:
            raise RuntimeError("chromium exited; see _build/screenshots/chromium.log")
        return message

    def call(self, method: str, session: str | None = None, timeout: float = 60, **params):
        """Send one command and return its result; events that arrive meanwhile are kept."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._send_fd, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._next_message(timeout)
            if reply.get("id") != self._next_id:
                self.events.append(reply)
            elif "error" in reply:
                raise RuntimeError(f"{method}: {reply['error']}")
            else:
                return reply["result"]

    def open(self, url: str, loads: int = 1, timeout: float = 60) -> None:
        """Load ``url`` in the tab and wait for ``loads`` load events (2: the page redirects).

        ``events`` then holds the events of this page only.
        """
        self.events = []
        self.call("Page.navigate", session=self.session, url=url)
        while True:  # the last load, then the frame stops loading (nothing of it arrives later)
            methods = [event.get("method") for event in self.events]
            loaded = [i for i, method in enumerate(methods) if method == "Page.loadEventFired"]
            if len(loaded) >= loads and "Page.frameStoppedLoading" in methods[loaded[-1] :]:
                return
            self.events.append(self._next_message(timeout))

    def evaluate(self, expression: str):
        reply = self.call("Runtime.evaluate", session=self.session, expression=expression,
                          awaitPromise=True, returnByValue=True)  # fmt: skip
        if "exceptionDetails" in reply:
            raise RuntimeError(f"page script failed: {reply['exceptionDetails']}")
        return reply["result"]["value"]

    def screenshot(self, path: Path) -> None:
        """The whole page, not only the window, as a PNG."""
        size = self.call("Page.getLayoutMetrics", session=self.session)["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": WIDTH, "height": size["height"], "scale": 1}
        shot = self.call("Page.captureScreenshot", session=self.session, format="png",
                         captureBeyondViewport=True, clip=clip)  # fmt: skip
        path.write_bytes(base64.b64decode(shot["data"]))

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=10)
        except (RuntimeError, TimeoutError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        os.close(self._send_fd)


def _above_nine(fd: int) -> int:
    """A copy of ``fd`` numbered 10 or more (``fd`` is closed)."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


def own_errors(events: list[dict], origin: str) -> list[str]:
    """JavaScript errors raised by our pages' scripts and failed requests for our own files."""
    errors = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            frames = details.get("stackTrace", {}).get("callFrames", [])
            url = details.get("url") or (frames[0]["url"] if frames else "")
            text = details.get("exception", {}).get("description") or details.get("text", "")
            if not url or url.startswith(origin):
                errors.append(
                    f"uncaught {text.splitlines()[0]} ({url}:{details.get('lineNumber')})"
                )
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            url = entry.get("url", "")
            # the browser asks for /favicon.ico by itself; the site has none and links none
            if url.startswith(origin) and url != origin + "favicon.ico":
                errors.append(f"{entry['source']}: {entry['text']} ({url})")
    return errors


def site_pages() -> list[Path]:
    """Every HTML page of the build (not the files under _static/, _sources/, ...)."""
    return sorted(
        path for path in HTML.rglob("*.html")
        if not any(part.startswith("_") for part in path.relative_to(HTML).parts)
    )  # fmt: skip


def page_of(notebook: Path) -> str:
    """The page built from ``notebook``, relative to _build/html."""
    return notebook.relative_to(ROOT).with_suffix(".html").as_posix()


def pages_showing_the_comparison_table() -> list[str]:
    """The pages of the book whose notebook displays ``comparison_table(...)``."""
    return sorted(
        page_of(path) for path in (ROOT / "book").glob("*.ipynb")
        if "comparison_table(" in path.read_text()
    )  # fmt: skip


@pytest.fixture(scope="module")
def site() -> dict[str, dict]:
    """What every page showed in Chromium, by its path relative to _build/html."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip("chromium is not installed (scripts/setup.sh installs it where apt is)")
    if not (HTML / "index.html").is_file():
        pytest.skip(f"no built site in {HTML}: run `jupyter-book build .` first")
    handler = functools.partial(QuietHandler, directory=str(HTML))
    server = QuietServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    origin = f"http://127.0.0.1:{server.server_address[1]}/"
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    browser = Chromium(executable, SCREENSHOTS / "profile", SCREENSHOTS / "chromium.log")
    try:
        seen = {}
        for path in site_pages():
            name = path.relative_to(HTML).as_posix()
            redirects = 'http-equiv="Refresh"' in path.read_text()  # the site's index.html
            browser.open(origin + name, loads=2 if redirects else 1)
            seen[name] = browser.evaluate(INSPECT)
            seen[name]["errors"] = own_errors(browser.events, origin)
            browser.screenshot(
                SCREENSHOTS / (name.removesuffix(".html").replace("/", "__") + ".png")
            )
    finally:
        browser.close()
        server.shutdown()
        shutil.rmtree(SCREENSHOTS / "profile", ignore_errors=True)
    return seen


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # the test reports what failed, not every request
        pass


class QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:  # a tab that moved on hung up
        pass


def test_every_chapter_and_lab_has_a_page(site):
    notebooks = [*(ROOT / "book").glob("*.ipynb"), *(ROOT / "labs").glob("*.ipynb")]
    missing = {page_of(path) for path in notebooks} - set(site)
    assert not missing, f"no page in {HTML} for {sorted(missing)}"


def problems(site: dict[str, dict], key: str) -> dict[str, list]:
    """The pages whose inspection found something under ``key``, with what it found."""
    return {page: seen[key] for page, seen in site.items() if seen[key]}


def test_every_page_loads_without_a_javascript_error_of_ours(site):
    failures = problems(site, "errors")
    assert not failures, failures


def test_markdown_tables_render_as_tables(site):
    raw = problems(site, "rawTables")
    assert not raw, f"paragraphs of raw Markdown table rows: {raw}"
    for page in pages_showing_the_comparison_table():
        headers = site.get(page, {}).get("tableHeaders", [])
        assert any({"setting", "PSNR", "SSIM"} <= set(row) for row in headers), (
            f"{page} shows no comparison <table> (its tables' headers: {headers})"
        )


def test_every_image_loads(site):
    broken = problems(site, "brokenImages")
    assert not broken, broken


def test_code_fits_its_block(site):
    wide = problems(site, "overflowingCode")
    assert not wide, f"code blocks wider than the page column: {wide}"


def test_progress_bars_show_their_last_state_only(site):
    repeated = problems(site, "repeatedProgress")
    assert not repeated, f"outputs that list a progress bar's every redraw: {repeated}"


FIGURE_CALLS = ("_figure(", "draw_data_path(", "plt.subplots(", "plt.figure(")


def executed_chapters() -> list[tuple[str, dict]]:
    """(file name, executed notebook) of each chapter the build showed.

    The build takes a chapter's outputs from its cache (``_build/.jupyter_cache``, filled by
    ``scripts/execute_book.py`` or by the build itself); the copies it leaves in
    ``_build/jupyter_execute`` hold the sources only, so the outputs are read from the cache.
    """
    import nbformat
    from jupyter_cache import get_cache

    cache_folder = ROOT / "_build" / ".jupyter_cache"
    if not cache_folder.is_dir():
        pytest.skip(f"no executed chapters in {cache_folder}: run `jupyter-book build .` first")
    cache = get_cache(cache_folder)
    chapters = []
    for path in sorted((ROOT / "book").glob("0*.ipynb")):
        try:
            _, executed = cache.merge_match_into_notebook(nbformat.read(path, as_version=4))
        except KeyError:
            pytest.fail(f"{path.name} has no executed version in {cache_folder}")
        chapters.append((path.name, executed))
    return chapters


def test_every_figure_a_chapter_draws_reaches_its_page():
    """Each code cell of a chapter that draws a figure shows an image in the executed notebook.

    (A figure helper that left matplotlib out of interactive mode once made every later figure
    of a page silently disappear: no error, no image.) The one exception: a cell whose output
    says that its GPU reference is pending draws that reference's figure only once it exists.
    """
    missing = []
    for name, notebook in executed_chapters():
        for number, cell in enumerate(notebook.cells):
            draws = cell.cell_type == "code" and any(call in cell.source for call in FIGURE_CALLS)
            outputs = cell.get("outputs", [])
            images = [o for o in outputs if "image/png" in o.get("data", {})]
            pending = any(pretrained.PENDING in str(o.get("data", {}).get("text/markdown", "")) for o in outputs)
            if draws and not images and not pending:
                missing.append(f"{name} cell {number}: {cell.source.splitlines()[0][:60]}")
    assert not missing, "figures drawn but not shown:\n" + "\n".join(missing)
