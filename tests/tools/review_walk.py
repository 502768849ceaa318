#!/usr/bin/env python3
"""A person's walk through a conflict e-mail's review link, in headless
Chromium: open the e-mail, click "take HubSpot's value", press the review
page's button, open the link once more, and visit any other pages asked for,
with a full-page screenshot of each page on the way.

    python3 tests/tools/review_walk.py --email PATH.html --shots DIR --name PREFIX \\
        [--link-text "take HubSpot's value"] [--visit LABEL=URL ...] [--timeout 20]

Prints one JSON object on stdout: the link followed and, for each page, its
step, URL, HTTP status (null for the e-mail's file:// page), title, text and
screenshot (DIR/PREFIX-STEP.png). Diagnostics go to stderr; any failure (no
such link, no button, a navigation that does not finish in --timeout
seconds, Chromium dying) exits non-zero with a message there.

It is for `make demo`: the Rust demo is to write the nightly e-mail's HTML
to a file, run this script on it against the local review function (a
broken token as a --visit), and check the statuses and texts it prints, and
that the store holds the conflict as resolved by the e-mail's recipient.

It talks the Chrome DevTools Protocol over --remote-debugging-pipe (NUL-
terminated JSON on the child's fds 3 and 4): no port for anything else on
the machine to reach, nothing to install beyond Debian's chromium and the
standard library. Pages are read through the DOM domain and parsed here, and
clicks are mouse events at an element's centre, never script: the review
pages' Content-Security-Policy forbids script, and a walk that ran some
would prove less about what a person sees.
"""

import argparse
import base64
import ctypes
import fcntl
import json
import math
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

CHROMIUM = "/usr/bin/chromium"
WIDTH, HEIGHT = 1280, 900
STEPS = ("email", "review", "resolved", "again")


class WalkError(Exception):
    """The walk cannot go on; the message says why, for a person."""


def log(message):
    print(f"review_walk: {message}", file=sys.stderr, flush=True)


def become_subreaper():
    """Chromium's helpers orphaned at its exit become our children, not
    init's, so stop() can wait for every one of them."""
    PR_SET_CHILD_SUBREAPER = 36
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    except (OSError, AttributeError) as e:
        log(f"not a subreaper ({e}): chromium's last helpers are left to init to reap")


class Browser:
    """Headless Chromium on a DevTools pipe, for the length of a `with`.

    Events that arrive while a caller waits for something else are kept, in
    order, for a later `wait_event`; every event also goes to `listeners`
    as it arrives, so bookkeeping (statuses) misses none.
    """

    def __init__(self, executable=CHROMIUM, timeout=20.0):
        self.executable = executable
        self.timeout = timeout
        self.listeners = []
        self._events = []
        self._inbox = queue.Queue()
        self._next_id = 0
        self._dir = None
        self._proc = None
        self._to_browser = None
        self._from_browser = None
        self._reader = None
        self._dead = False

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_):
        self.stop()

    @property
    def pid(self):
        return self._proc.pid if self._proc else None

    def start(self):
        if not os.access(self.executable, os.X_OK):
            raise WalkError(f"{self.executable} not found: `make chromium` installs Debian's package")
        become_subreaper()
        self._dir = Path(tempfile.mkdtemp(prefix="review-walk-"))
        (self._dir / "profile").mkdir()
        commands_r, self._to_browser = os.pipe()
        events_r, events_w = os.pipe()
        self._from_browser = events_r

        def wire():
            # In the child, before exec. Chromium wants commands on fd 3 and
            # answers on fd 4; os.pipe may have handed out 3 or 4 already
            # (even crosswise), so park both ends high first.
            cmd = fcntl.fcntl(commands_r, fcntl.F_DUPFD_CLOEXEC, 10)
            evt = fcntl.fcntl(events_w, fcntl.F_DUPFD_CLOEXEC, 10)
            os.dup2(cmd, 3)
            os.dup2(evt, 4)
            # close_fds would close 3 and 4 after this hook; do its work
            # here instead. Python's own descriptors are close-on-exec, so
            # only inherited ones (a make jobserver's, say) need closing.
            for name in os.listdir("/proc/self/fd"):
                fd = int(name)
                try:
                    if fd > 4 and os.get_inheritable(fd):
                        os.close(fd)
                except OSError:
                    pass  # listdir's own descriptor, gone already

        stderr = open(self._dir / "chromium.log", "wb")
        try:
            self._proc = subprocess.Popen(
                [
                    self.executable,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--hide-scrollbars",
                    "--force-device-scale-factor=1",
                    f"--window-size={WIDTH},{HEIGHT}",
                    f"--user-data-dir={self._dir / 'profile'}",
                    "--remote-debugging-pipe",
                ],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                preexec_fn=wire,
                close_fds=False,
                # Its own process group: Ctrl-C at a terminal reaches only
                # us (we stop it in order), and one signal reaches all of
                # its helper processes.
                start_new_session=True,
            )
        finally:
            stderr.close()
            # The child's ends: while we hold its write end, Chromium's
            # death would never show as end of file.
            os.close(commands_r)
            os.close(events_w)
        log(f"chromium started (pid {self._proc.pid})")
        self._reader = threading.Thread(target=self._read, name="cdp-reader", daemon=True)
        self._reader.start()

    def _read(self):
        # A full-page screenshot is megabytes in one message: its pieces
        # are joined once, at its NUL, not on every read.
        pieces = []
        try:
            while True:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    break
                *ends, rest = chunk.split(b"\0")
                for end in ends:
                    pieces.append(end)
                    self._inbox.put(json.loads(b"".join(pieces)))
                    pieces = []
                if rest:
                    pieces.append(rest)
        except (OSError, ValueError) as e:
            log(f"reading from chromium: {e}")
        finally:
            self._inbox.put(None)

    def _how_it_ended(self):
        """Without reaping Chromium: its pid, and so its process group's id,
        stays ours until stop()."""
        # The pipe closes a moment before the exit shows.
        deadline = time.monotonic() + 1
        while True:
            try:
                info = os.waitid(os.P_PID, self._proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return f"exit status {self._proc.returncode}"
            if info is not None:
                break
            if time.monotonic() > deadline:
                return "its pipe closed, the process still runs"
            time.sleep(0.02)
        if info.si_code in (os.CLD_KILLED, os.CLD_DUMPED):
            return f"killed by {signal.Signals(info.si_status).name}"
        return f"exit status {info.si_status}"

    def stop(self):
        proc, self._proc = self._proc, None
        if proc is not None:
            pid = proc.pid
            if proc.returncode is None:
                self._close_gracefully()
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
                        break
                    time.sleep(0.05)
            try:
                # Whatever is left, helpers included. The leader is at worst
                # an unreaped zombie here, so the group id cannot have
                # passed to anyone else.
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            self._reap(pid)
        for fd in (self._to_browser, self._from_browser):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._to_browser = self._from_browser = None
        if self._reader is not None:
            self._reader.join(timeout=2)
            self._reader = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            if self._dir.exists():
                log(f"could not remove {self._dir}")
            self._dir = None

    @staticmethod
    def _reap(group):
        """Waits for the group's orphans, ours as subreaper: the zygotes
        outlive the browser process by a moment, and an init that reaps
        lazily would show them as chromium zombies after we are gone."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                if os.waitpid(-group, os.WNOHANG) == (0, 0):
                    time.sleep(0.02)
            except ChildProcessError:
                return
        log(f"chromium's helpers (process group {group}) did not exit within 5 s")

    def _close_gracefully(self):
        if self._dead or self._to_browser is None:
            return
        try:
            self._next_id += 1
            message = {"id": self._next_id, "method": "Browser.close"}
            os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        except OSError:
            pass

    def _died(self):
        self._dead = True
        how = self._how_it_ended() if self._proc else "gone"
        tail = ""
        if self._dir is not None:
            try:
                lines = (self._dir / "chromium.log").read_text(errors="replace").splitlines()
                # No D-Bus in a container: Chromium complains of it always.
                tail = "\n".join([line for line in lines if "dbus" not in line][-10:])
            except OSError:
                pass
        return WalkError(f"chromium died ({how})" + (f"; its last words:\n{tail}" if tail else ""))

    def _next(self, deadline, waiting_for):
        if self._dead:
            raise self._died()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WalkError(f"{waiting_for}: nothing within {self.timeout:g} s")
        try:
            message = self._inbox.get(timeout=remaining)
        except queue.Empty:
            raise WalkError(f"{waiting_for}: nothing within {self.timeout:g} s") from None
        if message is None:
            raise self._died()
        if "method" in message:
            for listener in self.listeners:
                listener(message)
        return message

    def send(self, method, params=None, session=None):
        """The result of one command; events meanwhile are kept."""
        if self._dead:
            raise self._died()
        self._next_id += 1
        ident = self._next_id
        message = {"id": ident, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        try:
            while data:
                data = data[os.write(self._to_browser, data) :]
        except BrokenPipeError:
            raise self._died() from None
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._next(deadline, f"{method} got no answer")
            if reply.get("id") == ident:
                if "error" in reply:
                    error = reply["error"]
                    raise WalkError(f"{method}: {error.get('message')} {error.get('data', '')}".strip())
                return reply.get("result", {})
            if "method" in reply:
                self._events.append(reply)
            # else: the late answer to a command whose wait timed out

    def forget_events(self):
        """Drop the kept events: what happened before an action must not be
        taken for its outcome."""
        self._events.clear()

    def wait_event(self, name, predicate=None, session=None, what=None):
        """The first event `name` (of `session`) that satisfies `predicate`.

        Events are consumed in order: those kept before the match are
        dropped with it, so a later wait sees only what came after it.
        """

        def matches(event):
            return (
                event.get("method") == name
                and (session is None or event.get("sessionId") == session)
                and (predicate is None or predicate(event.get("params", {})))
            )

        for i, event in enumerate(self._events):
            if matches(event):
                del self._events[: i + 1]
                return event["params"]
        self._events.clear()
        deadline = time.monotonic() + self.timeout
        while True:
            event = self._next(deadline, what or f"waiting for {name}")
            if "method" in event and matches(event):
                return event.get("params", {})
            # Everything else before the match is of no further use.


class Tab:
    """One page target, attached flat: the browser, the session id, the
    main frame, and the HTTP status of each main-frame document by loader."""

    def __init__(self, browser):
        self.browser = browser
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        self.statuses = {}
        self.failures = {}
        browser.listeners.append(self._observe)
        # Headless Chromium takes room for a browser's toolbars out of the
        # window (1280x900 leaves 1280x813, and the toll varies by
        # version): the viewport is set, so the screenshots are as wide
        # and at least as tall as --window-size says.
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
        )
        self.send("Page.enable")
        self.send("Network.enable")
        self.frame = self.send("Page.getFrameTree")["frameTree"]["frame"]["id"]

    def send(self, method, params=None):
        return self.browser.send(method, params, self.session)

    def _observe(self, event):
        if event.get("sessionId") != self.session:
            return
        params = event.get("params", {})
        if event["method"] == "Network.responseReceived":
            if params.get("type") == "Document" and params.get("frameId") == self.frame:
                self.statuses[params.get("loaderId")] = params["response"]["status"]
        elif event["method"] == "Network.loadingFailed":
            if params.get("type") == "Document":
                self.failures[params.get("requestId")] = params.get("errorText")


def load(tab, action, what):
    """Runs `action` (which starts a navigation of the main frame) and waits
    for the new document's load: its URL and HTTP status."""
    browser = tab.browser
    browser.forget_events()
    tab.failures.clear()
    action()
    frame = browser.wait_event(
        "Page.frameNavigated",
        lambda p: p["frame"]["id"] == tab.frame and not p["frame"].get("parentId"),
        tab.session,
        f"{what}: no new page",
    )["frame"]
    browser.wait_event(
        "Page.loadEventFired", None, tab.session, f"{what}: the page did not finish loading"
    )
    url = frame["url"] + frame.get("urlFragment", "")
    status = tab.statuses.get(frame.get("loaderId"))
    if frame.get("unreachableUrl") and status is None:
        why = ", ".join(filter(None, tab.failures.values())) or "unreachable"
        raise WalkError(f"{what}: {frame['unreachableUrl']} could not be loaded ({why})")
    if urlsplit(url).scheme not in ("http", "https"):
        status = None
    return url, status


def navigate(tab, url, what):
    def go():
        result = tab.send("Page.navigate", {"url": url})
        error = result.get("errorText")
        # A 4xx or 5xx with an empty body is still a page with a status.
        if error and error != "net::ERR_HTTP_RESPONSE_CODE_FAILURE":
            raise WalkError(f"{what}: opening {url} failed: {error}")

    return load(tab, go, what)


def press(tab, node, what):
    """A left click at the element's centre, as a person makes it: were the
    element covered by another, or out of reach, the click would miss and
    the walk fail, where a scripted click() would still succeed."""
    tab.send("DOM.scrollIntoViewIfNeeded", {"nodeId": node})
    quad = tab.send("DOM.getBoxModel", {"nodeId": node})["model"]["border"]
    x, y = sum(quad[0::2]) / 4, sum(quad[1::2]) / 4
    log(f"{what}: clicking at ({x:.0f}, {y:.0f})")
    tab.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})
    for kind, buttons in (("mousePressed", 1), ("mouseReleased", 0)):
        tab.send(
            "Input.dispatchMouseEvent",
            {"type": kind, "x": x, "y": y, "button": "left", "buttons": buttons, "clickCount": 1},
        )


class PageText(HTMLParser):
    """A document's title and the text a reader sees, whitespace collapsed.
    Elements that are not inline end a word, so table cells do not run
    together as they would in textContent."""

    HIDDEN = {"head", "style", "script", "template", "noscript"}
    INLINE = {
        "a", "abbr", "b", "bdi", "bdo", "cite", "code", "data", "dfn", "em", "font", "i",
        "kbd", "label", "mark", "q", "s", "samp", "small", "span", "strong", "sub", "sup",
        "time", "u", "var", "wbr",
    }  # fmt: skip

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.hidden = 0
        self.in_title = False
        self.title_parts = []
        self.text_parts = []

    def handle_starttag(self, tag, attrs):
        if tag == "title":
            self.in_title = True
        if tag in self.HIDDEN:
            self.hidden += 1
        elif tag not in self.INLINE:
            self.text_parts.append(" ")

    def handle_startendtag(self, tag, attrs):
        if tag not in self.INLINE:
            self.text_parts.append(" ")

    def handle_endtag(self, tag):
        if tag == "title":
            self.in_title = False
        if tag in self.HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag not in self.INLINE:
            self.text_parts.append(" ")

    def handle_data(self, data):
        if self.in_title:
            self.title_parts.append(data)
        if not self.hidden:
            self.text_parts.append(data)

    @staticmethod
    def collapse(parts):
        return " ".join("".join(parts).split())

    @classmethod
    def of(cls, html):
        parser = cls()
        parser.feed(html)
        parser.close()
        return cls.collapse(parser.title_parts), cls.collapse(parser.text_parts)


def document(tab):
    """The root node id of the current document (ids of earlier ones are void)."""
    return tab.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]


def outer_html(tab, node):
    return tab.send("DOM.getOuterHTML", {"nodeId": node})["outerHTML"]


def attributes(tab, node):
    flat = tab.send("DOM.getAttributes", {"nodeId": node})["attributes"]
    return dict(zip(flat[0::2], flat[1::2]))


def screenshot(tab, path):
    """The whole page, not only the first screen."""
    size = tab.send("Page.getLayoutMetrics")["cssContentSize"]
    clip = {
        "x": 0,
        "y": 0,
        "width": max(1, math.ceil(size["width"])),
        "height": max(1, math.ceil(size["height"])),
        "scale": 1,
    }
    shot = tab.send(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path.write_bytes(base64.b64decode(shot["data"]))


def record(tab, step, url, status, shots, name):
    title, text = PageText.of(outer_html(tab, document(tab)))
    shot = shots / f"{name}-{step}.png"
    screenshot(tab, shot)
    log(f"{step}: {status} {url} ({title!r})")
    return {"step": step, "url": url, "status": status, "title": title, "text": text, "shot": str(shot)}


def find_link(tab, link_text):
    """The first <a> whose collapsed text is `link_text`: its node and href."""
    root = document(tab)
    for node in tab.send("DOM.querySelectorAll", {"nodeId": root, "selector": "a"})["nodeIds"]:
        if PageText.of(outer_html(tab, node))[1] == link_text:
            href = attributes(tab, node).get("href")
            if not href:
                raise WalkError(f"the link {link_text!r} has no href")
            return node, href
    raise WalkError(f"no link whose text is {link_text!r} in the e-mail")


def step_email(tab, email, shots, name, link_text):
    url, status = navigate(tab, email.resolve().as_uri(), "opening the e-mail")
    page = record(tab, "email", url, status, shots, name)
    node, href = find_link(tab, link_text)
    return page, node, urljoin(url, href)


def step_review(tab, link, shots, name, link_text):
    url, status = load(tab, lambda: press(tab, link, f"link {link_text!r}"), f"clicking {link_text!r}")
    return record(tab, "review", url, status, shots, name)


def step_resolve(tab, shots, name):
    root = document(tab)
    buttons = tab.send("DOM.querySelectorAll", {"nodeId": root, "selector": "button"})["nodeIds"]
    if len(buttons) != 1:
        raise WalkError(f"the review page should have one <button>, it has {len(buttons)}")
    url, status = load(tab, lambda: press(tab, buttons[0], "the button"), "pressing the button")
    return record(tab, "resolved", url, status, shots, name)


def step_visit(tab, step, url, shots, name):
    url, status = navigate(tab, url, f"opening {url} ({step})")
    return record(tab, step, url, status, shots, name)


def walk(args):
    shots = Path(args.shots)
    shots.mkdir(parents=True, exist_ok=True)
    if not Path(args.email).is_file():
        raise WalkError(f"{args.email}: no such file")
    with Browser(timeout=args.timeout) as browser:
        tab = Tab(browser)
        email, link, href = step_email(tab, Path(args.email), shots, args.name, args.link_text)
        pages = [email]
        pages.append(step_review(tab, link, shots, args.name, args.link_text))
        pages.append(step_resolve(tab, shots, args.name))
        pages.append(step_visit(tab, "again", href, shots, args.name))
        for label, url in args.visit:
            pages.append(step_visit(tab, label, url, shots, args.name))
    return {"link": href, "pages": pages}


def visit(value):
    label, sep, url = value.partition("=")
    if not sep or not url:
        raise argparse.ArgumentTypeError(f"{value!r}: expected LABEL=URL")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", label):
        raise argparse.ArgumentTypeError(f"{label!r}: a label is letters, digits, '.', '_' and '-'")
    if label in STEPS:
        raise argparse.ArgumentTypeError(f"{label!r} is a step of the walk itself")
    return label, url


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--email", required=True, help="the e-mail's HTML file")
    parser.add_argument("--shots", required=True, help="directory for the screenshots")
    parser.add_argument("--name", required=True, help="screenshot file name prefix")
    parser.add_argument("--link-text", default="take HubSpot's value", help="the link to click")
    parser.add_argument(
        "--visit", type=visit, action="append", default=[], metavar="LABEL=URL",
        help="a page to open after the walk, shot as PREFIX-LABEL.png",
    )  # fmt: skip
    parser.add_argument(
        "--timeout", type=float, default=20.0, help="seconds for each wait (default 20)"
    )
    args = parser.parse_args(argv)
    if len({label for label, _ in args.visit}) != len(args.visit):
        parser.error("two --visit share a label")

    def terminate(signum, _frame):
        # Unwind through Browser.__exit__ so Chromium goes too.
        log(f"stopped by {signal.Signals(signum).name}")
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)
    try:
        result = walk(args)
    except WalkError as e:
        log(str(e))
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    json.dump(result, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
