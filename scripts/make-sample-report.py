#!/usr/bin/env python3
"""Fills the HTML report template with sample data, for trying the report out in a browser.

    python3 scripts/make-sample-report.py OUT.html [--findings 200] [--seed 7] [--template PATH]
    python3 scripts/make-sample-report.py OUT.html --json data.json   # embed a given JSON document

The sample spans 5 days, has every level, grouped, correlation and explained findings, and hostile
values (markup, a `</script>` breakout, an RTL override, control characters, a 5 kB string) that
the report must show as text. It embeds the data exactly as the Rust side does (see `embed`).
Prints the number of findings, which `report-check.py --expect-rows` wants.
"""
import argparse
import datetime as dt
import json
import pathlib
import random
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "crates/trailhound-output/assets/report.html"
PLACEHOLDER = '"__TRAILHOUND_REPORT_DATA__"'


def embed(template: str, document: object) -> str:
    """The contract with the Rust side: serialize to JSON, escape for a <script> element, replace
    the placeholder (quotes included) once."""
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    text = (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )
    if template.count(PLACEHOLDER) != 1:
        raise SystemExit(f"template must contain {PLACEHOLDER} exactly once, found {template.count(PLACEHOLDER)}")
    return template.replace(PLACEHOLDER, text, 1)


RULES = [
    ("aws-cloudtrail-stop-logging", "CloudTrail logging stopped", "critical", "cloudtrail.amazonaws.com", "StopLogging"),
    ("aws-cloudtrail-delete-trail", "CloudTrail trail deleted", "critical", "cloudtrail.amazonaws.com", "DeleteTrail"),
    ("aws-iam-create-access-key-other-user", "Access key created for another user", "high", "iam.amazonaws.com", "CreateAccessKey"),
    ("aws-iam-attach-admin-policy", "AdministratorAccess attached", "high", "iam.amazonaws.com", "AttachUserPolicy"),
    ("aws-ec2-sg-open-to-world", "Security group opened to 0.0.0.0/0", "high", "ec2.amazonaws.com", "AuthorizeSecurityGroupIngress"),
    ("aws-s3-public-bucket-policy", "Bucket policy makes a bucket public", "medium", "s3.amazonaws.com", "PutBucketPolicy"),
    ("aws-sts-get-caller-identity-recon", "Reconnaissance: GetCallerIdentity from a new IP", "medium", "sts.amazonaws.com", "GetCallerIdentity"),
    ("aws-console-login-without-mfa", "Console login without MFA", "medium", "signin.amazonaws.com", "ConsoleLogin"),
    ("aws-access-denied-burst", "Burst of AccessDenied errors", "low", "iam.amazonaws.com", "ListUsers"),
    ("aws-ec2-run-instances-gpu", "GPU instances launched", "low", "ec2.amazonaws.com", "RunInstances"),
    ("aws-secretsmanager-get-secret", "Secret read", "informational", "secretsmanager.amazonaws.com", "GetSecretValue"),
    ("aws-s3-list-buckets", "Buckets listed", "informational", "s3.amazonaws.com", "ListBuckets"),
]
PRINCIPALS = [
    ("arn:aws:iam::111122223333:user/backup-svc", "IAMUser", "AKIA2BACKUPSVCEXAMPL"),
    ("arn:aws:iam::111122223333:user/ci-deploy", "IAMUser", "AKIA2CIDEPLOYEXAMPLE"),
    ("arn:aws:iam::111122223333:user/alice", "IAMUser", "ASIA2ALICEEXAMPLE001"),
    ("arn:aws:sts::111122223333:assumed-role/AdminRole/bob", "AssumedRole", "ASIA2BOBADMINEXAMPLE"),
    ("arn:aws:sts::111122223333:assumed-role/app-ec2-role/i-0abc123def4567890", "AssumedRole", "ASIA2APPEC2EXAMPLE01"),
]
IPS = ["203.0.113.66", "203.0.113.5", "198.51.100.10", "52.94.133.7", "2001:db8::42", "cloudformation.amazonaws.com"]
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2", "us-west-2"]
HOSTILE = [
    "</script><script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '"onerror="alert(1)',
    "javascript:alert(document.domain)",
    "admin\u202etxt.exe",
    "line\nbreak\ttab\x1b[31mred\x07",
    "<!-- <script>document.title='PWNED'</script> -->",
    "&lt;already-escaped&gt; &amp; \u2028sep\u2029",
    "A" * 5000,
]


def sample(n: int, seed: int) -> dict:
    rnd = random.Random(seed)
    start = dt.datetime(2026, 11, 16, 0, 0, tzinfo=dt.timezone.utc)
    iso = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")
    findings = []
    for i in range(n):
        rule_id, title, level, source, name = RULES[i % len(RULES)] if i < len(RULES) else rnd.choice(RULES)
        principal, ptype, key = rnd.choice(PRINCIPALS)
        t = start + dt.timedelta(seconds=rnd.randrange(5 * 86400))
        f = {
            "rule_id": rule_id, "rule_title": title, "level": level,
            "tags": ["attack.defense-evasion", "attack.t1562.008"] if level == "critical" else ["attack.discovery"],
            "event_id": f"{rnd.getrandbits(128):032x}", "event_time": iso(t), "event_name": name, "event_source": source,
            "aws_region": rnd.choice(REGIONS), "account_id": "111122223333", "principal_arn": principal,
            "principal_type": ptype, "access_key_id": key, "source_ip": rnd.choice(IPS),
            "user_agent": rnd.choice(["aws-cli/2.15.0", "Boto3/1.34.0", "console.amazonaws.com", "Terraform/1.7.0"]),
            "error_code": rnd.choice([None] * 6 + ["AccessDenied", "Client.UnauthorizedOperation"]),
            "source_file": f"examples/cloudtrail/AWSLogs/111122223333/CloudTrail/us-east-1/{t:%Y/%m/%d}/111122223333_CloudTrail_us-east-1_{t:%Y%m%dT%H%MZ}_{i:016d}.json.gz",
        }
        if i % 11 == 3:
            f["group"] = {"count": rnd.randint(2, 40), "first_time": iso(t), "last_time": iso(t + dt.timedelta(minutes=rnd.randint(1, 300)))}
        if i % 17 == 5:
            k = rnd.randint(10, 120)
            f["correlation"] = {"type": "event_count", "count": k, "group": {"sourceIPAddress": f["source_ip"]},
                                "first_time": iso(t), "last_time": iso(t + dt.timedelta(minutes=10)), "events": k}
        if i % 13 == 7:
            f["explanation"] = {"reason": "quarterly key rotation by the backup team", "ticket": None if i % 2 else "SEC-9"}
        if i % 9 == 4:
            for field in ("source_ip", "access_key_id", "principal_arn", "aws_region"):
                f[field] = None
        findings.append(f)
    # Hostile values, in every column the report shows.
    fields = ["rule_id", "rule_title", "event_name", "principal_arn", "source_ip", "access_key_id", "aws_region", "error_code", "user_agent"]
    for j, value in enumerate(HOSTILE):
        for k, field in enumerate(fields):
            findings[(j * len(fields) + k) * 2 % n][field] = value
    findings[1]["level"] = "critical"
    findings[2]["explanation"] = {"reason": HOSTILE[0], "ticket": HOSTILE[1]}
    findings[3]["correlation"] = {"type": "value_count", "count": 3, "group": {HOSTILE[1]: HOSTILE[4]}, "first_time": None, "last_time": None, "events": 7}
    findings[5]["event_time"] = "not a time"
    findings.sort(key=lambda f: f["event_time"])
    return {
        "generated_at": "2026-11-28T12:00:00Z",
        "window": {"since": "2026-11-16T00:00:00Z", "until": None},
        "sources": ["examples/", HOSTILE[0], "s3://bucket/AWSLogs/\u202eevil"],
        "stats": {"files_read": 261, "records_read": 3000, "records_in_window": 3000, "digests_skipped": 8,
                  "files_failed": 1, "records_invalid": 0, "rules": 85},
        "findings": findings,
        "console_logins": [
            {"principal": "arn:aws:iam::111122223333:user/alice", "success_with_mfa": 5, "success_without_mfa": 0, "failures": 1,
             "source_ips": ["198.51.100.10"], "first": "2026-11-16T07:43:46Z", "last": "2026-11-20T07:31:03Z"},
            {"principal": "arn:aws:iam::111122223333:user/backup-svc", "success_with_mfa": 0, "success_without_mfa": 2, "failures": 14,
             "source_ips": ["203.0.113.66", "203.0.113.5", HOSTILE[1]], "first": "2026-11-20T21:58:02Z", "last": "2026-11-20T22:01:40Z"},
            {"principal": HOSTILE[0], "success_with_mfa": 1, "success_without_mfa": 0, "failures": 0,
             "source_ips": [], "first": "2026-11-17T09:00:00Z", "last": "2026-11-17T09:00:00Z"},
        ],
        "top_principals": [
            {"principal": p, "events": e, "errors": r, "first": "2026-11-16T00:01:12Z", "last": "2026-11-20T23:58:40Z"}
            for p, e, r in [("arn:aws:iam::111122223333:user/ci-deploy", 812, 14),
                            ("arn:aws:sts::111122223333:assumed-role/app-ec2-role/i-0abc123def4567890", 640, 0),
                            ("arn:aws:iam::111122223333:user/alice", 201, 3), (HOSTILE[4], 12, 12), ("A" * 5000, 1, 0)]
        ],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--findings", type=int, default=200)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--template", default=str(TEMPLATE))
    ap.add_argument("--json", help="embed this JSON document instead of the sample")
    args = ap.parse_args()
    if args.json:
        document = json.loads(pathlib.Path(args.json).read_text(encoding="utf-8"))
    else:
        if args.findings < len(HOSTILE) * 18:
            raise SystemExit(f"--findings must be at least {len(HOSTILE) * 18} to hold the hostile values")
        document = sample(args.findings, args.seed)
    html = embed(pathlib.Path(args.template).read_text(encoding="utf-8"), document)
    pathlib.Path(args.out).write_text(html, encoding="utf-8")
    print(len(document.get("findings", [])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
