#!/usr/bin/env python3
"""damage-recovery.py - how many records trailhound still reads from damaged envelopes.

    python3 scripts/damage-recovery.py BIN [BIN...] [--seeds 200] [--records 300]

Each seed writes RECORDS records (every one a StopLogging, so each record read in the window
is one finding) in three shapes: a one-line `{"Records":[...]}` envelope as CloudTrail delivers
it, the same envelope with a record a line, and a top-level array (`jq .Records`). It damages
each one to three times, one kind of damage a seed: bytes overwritten with JSON's own
punctuation, bytes deleted, bytes inserted, a quote added or lost, or a block zeroed. Each binary
hunts the file, then the same bytes on standard input (the stream reader). Printed per binary,
shape and way: the records read in all, their share of those written, how many seeds lost more
than 2 % of the records, and how many read more records than were written (some twice).
Deterministic: the same seeds give the same files.
"""
import argparse
import json
import random
import re
import subprocess
import tempfile

BASE = {
    "eventVersion": "1.08",
    "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/a", "accountId": "111122223333",
                     "accessKeyId": "AKIAEXAMPLE", "sessionContext": {"attributes": {"mfaAuthenticated": "false"}}},
    "eventTime": "2024-01-01T00:00:00Z",
    "eventSource": "cloudtrail.amazonaws.com",
    "eventName": "StopLogging",
    "awsRegion": "us-east-1",
    "sourceIPAddress": "203.0.113.1",
    "userAgent": "aws-cli/2",
    "requestParameters": {"name": "x", "tags": [{"k": "a", "v": "b"}]},
    "responseElements": None,
}


SHAPES = {
    "envelope": lambda recs: '{"Records":[' + ",".join(recs) + "]}",
    "envelope, a record a line": lambda recs: '{"Records":[\n' + ",\n".join(recs) + "\n]}\n",
    "array": lambda recs: "[" + ",".join(recs) + "]",
}


def damaged(seed, records, shape):
    r = random.Random(seed)
    recs = [json.dumps(dict(BASE, eventID="id-%d" % i)) for i in range(records)]
    s = bytearray(SHAPES[shape](recs).encode())
    kind = r.choice(["overwrite", "delete", "insert", "quote", "zero"])
    for _ in range(r.randint(1, 3)):
        at = r.randrange(20, len(s) - 80)
        if kind == "overwrite":
            for k in range(r.randint(1, 12)):
                s[at + k] = r.choice(b'{}[],:"x1 \\')
        elif kind == "delete":
            del s[at:at + r.randint(1, 40)]
        elif kind == "insert":
            s[at:at] = bytes(r.choice(b'{}[],:"x1 ') for _ in range(r.randint(1, 8)))
        elif kind == "quote":
            if s[at] == ord('"'):
                del s[at]
            else:
                s[at:at] = b'"'
        else:
            for k in range(r.randint(1, 64)):
                s[at + k] = 0
    return bytes(s)


def read_in_window(binary, args, stdin=None):
    out = subprocess.run([binary, "hunt", *args, "--format", "jsonl"], input=stdin,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    m = re.search(rb"([0-9,]+) in the window", out.stderr)
    return int(m.group(1).replace(b",", b"")) if m else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binaries", nargs="+")
    ap.add_argument("--seeds", type=int, default=200)
    ap.add_argument("--records", type=int, default=300)
    a = ap.parse_args()
    totals = {(b, shape, way): [0, 0, 0] for b in a.binaries for shape in SHAPES for way in ("file", "stdin")}
    with tempfile.TemporaryDirectory() as tmp:
        path = tmp + "/damaged.json"
        for shape in SHAPES:
            for seed in range(1, a.seeds + 1):
                data = damaged(seed, a.records, shape)
                with open(path, "wb") as f:
                    f.write(data)
                for b in a.binaries:
                    for way, n in (("file", read_in_window(b, [path])), ("stdin", read_in_window(b, ["-"], data))):
                        t = totals[(b, shape, way)]
                        t[0] += n
                        t[1] += n < a.records * 0.98
                        t[2] += n > a.records
    print("| binary | shape | read from | records read | of those written | seeds losing over 2 % | seeds reading more than written |")
    print("|---|---|---|---|---|---|---|")
    for (b, shape, way), (n, bad, more) in totals.items():
        print(f"| {b} | {shape} | {way} | {n:,} | {n / (a.seeds * a.records):.2%} | {bad} of {a.seeds} | {more} |")


if __name__ == "__main__":
    main()
