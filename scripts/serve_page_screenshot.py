#!/usr/bin/env python3
"""Drives the question page of a running `ssp serve` in headless Chromium.

It loads the page, types a question, optionally turns on the side-by-side
mode with a second agent, presses Ask, waits until every column has
rendered its searches and its answer, checks what the page shows, and saves
a screenshot. It talks WebDriver to chromedriver over HTTP with the standard
library only (Debian: apt-get install chromium chromium-driver).

    ssp serve --model builtin --model trained=RUN/checkpoints/step-3 &
    scripts/serve_page_screenshot.py --url http://127.0.0.1:8080/ \
        --question "Where did the author of The Wazeka Lantern work?" \
        --compare trained-agent --out docs/serve-page.png

Exit status 0 when the page rendered a trajectory with at least one search
and an answer box in every column, 1 otherwise.
"""
import argparse
import base64
import json
import socket
import subprocess
import sys
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebDriver:
    def __init__(self, base):
        self.base = base
        self.session = None

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as resp:
            return json.load(resp)["value"]

    def start(self, chromium, width, height):
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--window-size={width},{height}", "--force-device-scale-factor=1"]}}}}
        self.session = self.call("POST", "/session", caps)["sessionId"]

    def s(self, path):
        return f"/session/{self.session}{path}"

    def go(self, url):
        self.call("POST", self.s("/url"), {"url": url})

    def script(self, source, *args):
        return self.call("POST", self.s("/execute/sync"), {"script": source, "args": list(args)})

    def find(self, css):
        el = self.call("POST", self.s("/element"), {"using": "css selector", "value": css})
        return next(iter(el.values()))

    def type(self, css, text):
        self.call("POST", self.s(f"/element/{self.find(css)}/value"), {"text": text})

    def click(self, css):
        self.call("POST", self.s(f"/element/{self.find(css)}/click"), {})

    def screenshot(self, path):
        png = base64.b64decode(self.call("GET", self.s("/screenshot")))
        with open(path, "wb") as f:
            f.write(png)

    def quit(self):
        if self.session:
            try:
                self.call("DELETE", self.s(""))
            except Exception:
                pass


def wait(what, timeout, fn):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.2)
    sys.exit(f"timed out after {timeout} s waiting for {what}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="the page, e.g. http://127.0.0.1:8080/")
    ap.add_argument("--question", required=True)
    ap.add_argument("--model", help="agent of the first column (default: the page's first)")
    ap.add_argument("--compare", help="agent of a second column, side by side")
    ap.add_argument("--out", required=True, help="PNG file to write")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    ap.add_argument("--size", default="1400x1000", help="window size WIDTHxHEIGHT")
    ap.add_argument("--timeout", type=float, default=120, help="seconds to wait for the answers")
    args = ap.parse_args()
    width, height = (int(x) for x in args.size.split("x"))

    port = free_port()
    driver_proc = subprocess.Popen([args.chromedriver, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wd = WebDriver(f"http://127.0.0.1:{port}")
    try:
        def driver_up():
            try:
                return wd.call("GET", "/status")["ready"]
            except Exception:
                return False
        wait("chromedriver", 30, driver_up)
        wd.start(args.chromium, width, height)
        wd.go(args.url)
        wait("the model list", 30, lambda: wd.script("return document.getElementById('modelA').options.length") > 0)
        if args.model:
            wd.script("document.getElementById('modelA').value = arguments[0]", args.model)
        if args.compare:
            wd.click("#compare")
            wd.script("document.getElementById('modelB').value = arguments[0]", args.compare)
        wd.type("#question", args.question)
        wd.click("#go")
        columns = 2 if args.compare else 1
        wait("the answers", args.timeout, lambda: wd.script(
            "const c = document.querySelectorAll('.column'); return c.length === arguments[0] && "
            "Array.from(c).every((x) => x.dataset.done === 'true')", columns))
        shown = wd.script(
            "return Array.from(document.querySelectorAll('.column')).map((c) => ({"
            "model: c.querySelector('h2').textContent, searches: c.querySelectorAll('.search').length,"
            "documents: c.querySelectorAll('.doc b').length, answer: (c.querySelector('.answer') || {}).textContent || '',"
            "status: c.querySelector('.status').textContent}))")
        wd.screenshot(args.out)
        ok = True
        for col in shown:
            print(f"{col['model']}: {col['searches']} searches, {col['documents']} documents, "
                  f"{col['answer'].strip()!r}, {col['status']}")
            if col["searches"] == 0 or not col["answer"]:
                ok = False
        print("wrote " + args.out)
        return 0 if ok else 1
    finally:
        wd.quit()
        driver_proc.terminate()
        driver_proc.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
