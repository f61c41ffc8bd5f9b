#!/usr/bin/env python3
"""Keeps the Content-Security-Policy of the HTML report template in step with its inline scripts.

The report allows only its own inline scripts, by SHA-256 hash, so that nothing injected into the
page could run. After editing a <script> of the template, run:

    python3 scripts/report-csp.py            # rewrite the hashes in the template
    python3 scripts/report-csp.py --check    # exit 1 if the hashes are stale

Only executable scripts (a bare `<script>` tag) are hashed; the JSON data block is not executed.
"""
import argparse
import base64
import hashlib
import pathlib
import re
import sys

DEFAULT = pathlib.Path(__file__).resolve().parent.parent / "crates/trailhound-output/assets/report.html"
SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)
SCRIPT_SRC = re.compile(r"script-src(?: 'sha256-[^']*')+")


def hashes(html: str) -> list[str]:
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode() + "'"
        for body in SCRIPT.findall(html)
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("template", nargs="?", default=str(DEFAULT))
    ap.add_argument("--check", action="store_true", help="only check, do not rewrite")
    args = ap.parse_args()
    path = pathlib.Path(args.template)
    html = path.read_text(encoding="utf-8")
    wanted = "script-src " + " ".join(hashes(html))
    found = SCRIPT_SRC.findall(html)
    if len(found) != 1:
        print(f"{path}: expected one CSP script-src with sha256 hashes, found {len(found)}", file=sys.stderr)
        return 1
    if found[0] == wanted:
        print(f"{path}: CSP hashes up to date ({wanted.count('sha256-')} scripts)")
        return 0
    if args.check:
        print(f"{path}: CSP hashes are stale; run scripts/report-csp.py", file=sys.stderr)
        return 1
    path.write_text(SCRIPT_SRC.sub(wanted, html, count=1), encoding="utf-8")
    print(f"{path}: CSP updated: {wanted}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
