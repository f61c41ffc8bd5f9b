#!/usr/bin/env python3
"""Loads a filled-in HTML report in headless Chromium and checks that it rendered cleanly.

    python3 scripts/report-check.py REPORT.html --expect-rows N [--selftest]
        [--expect-text TEXT ...] [--forbid-text TEXT ...] [--dump-dom OUT] [--screenshot OUT.png]

Checks, on the DOM Chromium dumps after the scripts ran (--dump-dom):
  - <body data-ready="1">, set by the report when it has rendered;
  - <pre id="errors"> is empty (the report's window.onerror writes there);
  - Chromium's stderr has no console error: a CONSOLE line logged at level ERROR, or one saying
    "Uncaught", "Refused", a Content Security Policy violation, or "error:";
  - the number of <tr class="finding"> rows is N (--expect-rows);
  - no markup was injected: no element has an on* attribute and there are no more <script>
    elements than the input file has;
  - every --expect-text occurs in the DOM (as serialized, or as text once entities are decoded);
  - no --forbid-text occurs in the DOM's markup, leaving out the report-data <script>: use it for
    markup, e.g. --forbid-text '<script>alert(1)</script>'. The DOM is re-serialized with text and
    attribute values escaped (&lt; &gt; &amp; &quot;), so only real elements match, whatever
    Chromium's own serializer escapes;
  - with --selftest, the page is opened with #selftest, which clicks the headers and drives the
    filters, and <pre id="selftest"> must end with "selftest: ok" and hold no FAIL line.

Exit status: 0 all checks passed, 1 a check failed, 2 Chromium is missing.
Chromium is $CHROMIUM or /usr/bin/chromium; it is given 60 s (--timeout).
"""
import argparse
import html
import html.parser
import os
import pathlib
import re
import signal
import subprocess
import sys
import tempfile

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000",
]
CONSOLE = re.compile(r"^\[[^\]]*:(?P<level>[A-Z]+):CONSOLE[^\]]*\]\s*(?P<msg>.*)$")
CONSOLE_ERROR = re.compile(r'Uncaught|Refused to|violates the following Content Security Policy|^"error:|blocked by the content security policy|unhandled rejection')


class Dom(html.parser.HTMLParser):
    """The few facts the checks need, from a serialized DOM."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.body_attrs = None
        self.finding_rows = 0
        self.scripts = 0
        self.on_attrs = []
        self.capture = None  # id of the <pre> being captured
        self.pre = {}
        # The DOM re-serialized the same way whatever the browser's serializer does, without the
        # report-data script's content: what --forbid-text is matched against.
        self.markup = []
        self.raw = None  # tag whose content is raw text (script, style), if inside one
        self.skip = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body_attrs = a
        elif tag == "tr" and "finding" in (a.get("class") or "").split():
            self.finding_rows += 1
        elif tag == "script":
            self.scripts += 1
        elif tag == "pre" and a.get("id") in ("errors", "selftest"):
            self.capture = a["id"]
            self.pre[self.capture] = ""
        for name, _ in attrs:
            if name.lower().startswith("on"):
                self.on_attrs.append(f"<{tag} {name}>")
        self.markup.append(f"<{tag}" + "".join(
            f' {n}="{html.escape(v, quote=True)}"' if v is not None else f" {n}" for n, v in attrs) + ">")
        if tag in ("script", "style"):
            self.raw = tag
            self.skip = tag == "script" and a.get("id") == "report-data"

    def handle_endtag(self, tag):
        if tag == "pre":
            self.capture = None
        if tag == self.raw:
            self.raw, self.skip = None, False
        self.markup.append(f"</{tag}>")

    def handle_data(self, data):
        if self.capture:
            self.pre[self.capture] += data
        if not self.skip:
            self.markup.append(data if self.raw else html.escape(data, quote=False))

    def handle_comment(self, data):
        self.markup.append(f"<!--{data}-->")


def parse(text: str) -> Dom:
    dom = Dom()
    dom.feed(text)
    dom.close()
    return dom


def run_chromium(chromium: str, url: str, extra: list[str], timeout: float):
    with tempfile.TemporaryDirectory(prefix="trailhound-report-check-") as profile:
        cmd = [chromium, *FLAGS, f"--user-data-dir={profile}", *extra, url]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
        return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("report")
    ap.add_argument("--expect-rows", type=int, help="number of <tr class=\"finding\"> rows wanted")
    ap.add_argument("--expect-text", action="append", default=[], metavar="TEXT")
    ap.add_argument("--forbid-text", action="append", default=[], metavar="TEXT")
    ap.add_argument("--selftest", action="store_true", help="open with #selftest and check its result")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    ap.add_argument("--dump-dom", metavar="OUT", help="also write the rendered DOM here")
    ap.add_argument("--screenshot", metavar="OUT.png", help="also take a 1400x2000 screenshot")
    args = ap.parse_args()

    if not (os.path.isfile(args.chromium) and os.access(args.chromium, os.X_OK)):
        print(f"report-check: chromium not found at {args.chromium} (apt-get install chromium, or set CHROMIUM)", file=sys.stderr)
        return 2
    path = pathlib.Path(args.report).resolve()
    if not path.is_file():
        print(f"report-check: no such file: {path}", file=sys.stderr)
        return 1
    source = path.read_text(encoding="utf-8")
    url = path.as_uri() + ("#selftest" if args.selftest else "")

    try:
        rc, dom, stderr = run_chromium(args.chromium, url, ["--dump-dom"], args.timeout)
        if args.screenshot:
            shot = str(pathlib.Path(args.screenshot).resolve())
            run_chromium(args.chromium, path.as_uri(), ["--window-size=1400,2000", "--hide-scrollbars", f"--screenshot={shot}"], args.timeout)
    except subprocess.TimeoutExpired:
        print(f"report-check: FAIL: chromium did not finish within {args.timeout:g} s", file=sys.stderr)
        return 1
    if args.dump_dom:
        pathlib.Path(args.dump_dom).write_text(dom, encoding="utf-8")

    failures, notes = [], []
    if rc != 0:
        failures.append(f"chromium exited with status {rc}")
    if not dom.strip():
        failures.append("chromium dumped no DOM")
    parsed = parse(dom)
    if (parsed.body_attrs or {}).get("data-ready") != "1":
        failures.append('<body> has no data-ready="1": the report did not finish rendering')
    errors = parsed.pre.get("errors")
    if errors is None:
        failures.append('no <pre id="errors"> in the DOM')
    elif errors.strip():
        failures.append("the page reported errors:\n    " + errors.strip().replace("\n", "\n    "))
    for line in stderr.splitlines():
        m = CONSOLE.match(line)
        if not m:
            continue
        if m.group("level") in ("ERROR", "FATAL") or CONSOLE_ERROR.search(m.group("msg")):
            failures.append("console error: " + m.group("msg")[:500])
        else:
            notes.append("console: " + m.group("msg")[:500])
    if args.expect_rows is not None and parsed.finding_rows != args.expect_rows:
        failures.append(f'{parsed.finding_rows} <tr class="finding"> rows, expected {args.expect_rows}')
    if parsed.on_attrs:
        failures.append("injected event-handler attributes: " + ", ".join(parsed.on_attrs[:5]))
    scripts_in = parse(source).scripts
    if parsed.scripts > scripts_in:
        failures.append(f"{parsed.scripts} <script> elements after rendering, {scripts_in} in the file: markup was injected")
    decoded = html.unescape(dom)
    for text in args.expect_text:
        if text not in dom and text not in decoded:
            failures.append(f"expected text not found: {text!r}")
    markup = "".join(parsed.markup)
    for text in args.forbid_text:
        if text in markup:
            failures.append(f"forbidden text found outside the data script: {text!r}")
    if args.selftest:
        result = (parsed.pre.get("selftest") or "").strip()
        lines = result.splitlines()
        if not lines or not lines[-1].startswith("selftest: ok") or any(l.startswith("FAIL") for l in lines):
            failures.append("selftest failed:\n    " + (result or "(no output)").replace("\n", "\n    "))
        else:
            notes.append(lines[-1])

    for note in notes:
        print(f"report-check: {note}")
    if failures:
        for f in failures:
            print(f"report-check: FAIL: {f}", file=sys.stderr)
        return 1
    print(f"report-check: ok: {path.name}: {parsed.finding_rows} finding rows, no errors"
          + (", selftest passed" if args.selftest else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
