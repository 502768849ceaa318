"""review_walk.py end to end: headless Chromium walks an e-mail's review link
on a small server that answers as the review function does (the policy,
the form posting to itself, 200 then 409 for a used link, 400 for a bad
one). Skipped without Debian's chromium (`make chromium`).

    python3 -m unittest discover -s tests/tools -t tests/tools
"""

import base64
import hashlib
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

WALKER = Path(__file__).with_name("review_walk.py")
CHROMIUM = "/usr/bin/chromium"

STYLE = "body{font-family:sans-serif;max-width:40em;margin:2em auto}button{padding:.5em 1.2em}"
STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
CSP = (
    f"default-src 'none'; style-src 'sha256-{STYLE_HASH}'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


class Review(BaseHTTPRequestHandler):
    """`/review/<token>`: tokens starting `tok` are links, anything else is
    not valid. What was asked lands in `server.requests`."""

    def _answer(self, status, title, body):
        html = (
            "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
            f"<title>{title} · hubwarp</title><style>{STYLE}</style></head>"
            f"<body><h1>{title}</h1>\n{body}\n</body></html>"
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("Content-Length", str(len(html)))
        self.end_headers()
        self.wfile.write(html)

    def _token(self):
        self.server.requests.append((self.command, self.path))
        token = self.path.removeprefix("/review/")
        return token if self.path.startswith("/review/tok") else None

    def do_GET(self):
        token = self._token()
        if token is None:
            self._answer(400, "This link is not valid", "<p>this link is not valid</p>")
        elif token in self.server.used:
            self._answer(
                409, "Already resolved", "<p>This conflict was resolved by <strong>x@y</strong>.</p>"
            )
        else:
            self._answer(
                200,
                "A conflict waits for your choice",
                "<p>You are <strong>x@y</strong>. Nothing has changed yet.</p>"
                '<form method="post"><button type="submit">Take HubSpot\'s value</button></form>',
            )

    def do_POST(self):
        token = self._token()
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if token is None or token in self.server.used:
            self._answer(409, "Already resolved", "<p>resolved by x@y</p>")
        else:
            self.server.used.add(token)
            self._answer(200, "Done", "<p>Resolved by <strong>x@y</strong> at 2024-05-01T02:00:00Z.</p>")

    def log_message(self, *_):
        pass


def email(base):
    """A nightly e-mail's shape: inline styles, layout tables, the link far
    enough down that it has to be scrolled to."""
    cell = 'style="padding:6px 10px;border-bottom:1px solid #d9e2ec"'
    rows = "".join(f"<tr><td {cell}>customer {i}</td><td {cell}>value {i}</td></tr>" for i in range(40))
    button = "display:inline-block;padding:6px 12px;background:#1f5faa;color:#fff;text-decoration:none"
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Reconciliation run-1</title></head>
<body style="margin:0;padding:24px;font-family:Arial,sans-serif">
<h1 style="font-size:22px">Reconciliation <code>run-1</code></h1>
<table role="presentation" style="border-collapse:collapse">{rows}</table>
<table role="presentation" style="border:1px solid #ccc"><tr><td></td><td style="padding:4px 8px">
<a href="{base}/review/tok1.warp" style="{button}">keep WARP&#39;s value</a>
<a href="{base}/review/tok1" style="{button}">take HubSpot&#39;s
   value</a></td></tr></table></body></html>"""


def png_size(path):
    data = Path(path).read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def group_members(pgid):
    """Processes (zombies too) still in the process group."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[2]) == pgid:
                members.append(int(entry.name))
    return members


@unittest.skipUnless(os.access(CHROMIUM, os.X_OK), f"no {CHROMIUM}: `make chromium` installs it")
class ReviewWalkTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = ThreadingHTTPServer(("127.0.0.1", 0), Review)
        cls.server.requests = []
        cls.server.used = set()
        cls.base = f"http://127.0.0.1:{cls.server.server_address[1]}"
        threading.Thread(target=cls.server.serve_forever, daemon=True).start()
        cls.dir = tempfile.TemporaryDirectory(prefix="review-walk-test-")
        cls.email = Path(cls.dir.name) / "email.html"
        cls.email.write_text(email(cls.base))

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()
        cls.server.server_close()
        cls.dir.cleanup()

    def setUp(self):
        self.server.requests.clear()
        self.server.used.clear()

    def walk(self, *args):
        shots = Path(self.dir.name) / "shots"
        run = subprocess.run(
            [sys.executable, str(WALKER), "--email", str(self.email), "--shots", str(shots), "--name", "t",
             "--timeout", "10", *args],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        started = re.search(r"chromium started \(pid (\d+)\)", run.stderr)
        self.assertIsNotNone(started, run.stderr)
        self.assertEqual(group_members(int(started[1])), [], "chromium outlived the walk")
        return run, shots

    def test_walks_the_link_and_presses_the_button(self):
        run, shots = self.walk("--visit", f"bad={self.base}/review/bad")
        self.assertEqual(run.returncode, 0, run.stderr)
        result = json.loads(run.stdout)
        link = f"{self.base}/review/tok1"
        self.assertEqual(result["link"], link)
        pages = {p["step"]: p for p in result["pages"]}
        self.assertEqual(list(pages), ["email", "review", "resolved", "again", "bad"])
        self.assertEqual(
            [p["status"] for p in result["pages"]],
            [None, 200, 200, 409, 400],
        )
        self.assertEqual(pages["email"]["url"], self.email.resolve().as_uri())
        self.assertEqual(pages["email"]["title"], "Reconciliation run-1")
        self.assertIn("keep WARP's value take HubSpot's value", pages["email"]["text"])
        self.assertEqual([p["url"] for p in result["pages"][1:4]], [link] * 3)
        self.assertEqual(pages["review"]["title"], "A conflict waits for your choice · hubwarp")
        self.assertIn("You are x@y. Nothing has changed yet. Take HubSpot's value", pages["review"]["text"])
        self.assertIn("Resolved by x@y at 2024-05-01T02:00:00Z.", pages["resolved"]["text"])
        self.assertIn("resolved by x@y", pages["again"]["text"])
        self.assertEqual(pages["bad"]["url"], f"{self.base}/review/bad")
        # The button was pressed (a POST), not the link followed twice.
        self.assertEqual(
            self.server.requests,
            [
                ("GET", "/review/tok1"),
                ("POST", "/review/tok1"),
                ("GET", "/review/tok1"),
                ("GET", "/review/bad"),
            ],
        )
        for page in result["pages"]:
            self.assertEqual(Path(page["shot"]), shots / f"t-{page['step']}.png")
            width, height = png_size(page["shot"])
            self.assertEqual(width, 1280)
            self.assertGreaterEqual(height, 900)
        # The whole e-mail, not its first screen.
        self.assertGreater(png_size(pages["email"]["shot"])[1], 900)

    def test_fails_when_the_link_is_not_there(self):
        run, _ = self.walk("--link-text", "no such link")
        self.assertEqual(run.returncode, 1)
        self.assertEqual(run.stdout, "")
        self.assertIn("no link whose text is 'no such link'", run.stderr)
        self.assertEqual(self.server.requests, [])


if __name__ == "__main__":
    unittest.main()
