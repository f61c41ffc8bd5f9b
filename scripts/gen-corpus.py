#!/usr/bin/env python3
"""gen-corpus.py - deterministic generator of realistic AWS CloudTrail logs.

Writes the layout CloudTrail delivers to S3:

  OUT/AWSLogs/[<org-id>/]<account>/CloudTrail/<region>/YYYY/MM/DD/
      <account>_CloudTrail_<region>_YYYYMMDDTHHMMZ_<16 alnum>.json.gz
  OUT/AWSLogs/[<org-id>/]<account>/CloudTrail-Digest/<region>/YYYY/MM/DD/
      <account>_CloudTrail-Digest_<region>_<trail>_<region>_YYYYMMDDTHHMMSSZ.json.gz
  OUT/manifest.json

Every event file is a gzipped {"Records":[...]} object.  The same arguments
and seed always give byte-identical output: only random.Random instances
seeded from --seed (or fixed strings) are used, gzip mtime is 0, and the
work is split into per-file tasks whose RNG seeds do not depend on how many
worker processes run them.

With --story a leaked-access-key attack is mixed into the normal traffic of
account 111122223333 on the 5th day of the window (see examples/README.md).

Standard library only.
"""

import argparse
import base64
import calendar
import gzip
import hashlib
import json
import os
import random
import re
import shutil
import sys
import time

GENERATOR_VERSION = "1"
STORY_ACCOUNT = "111122223333"
TRAIL_NAME = "management-trail"
DEFAULT_ACCOUNTS = ["111122223333", "444455556666", "777788889999"]
SLOT = 300            # CloudTrail delivers a file about every 5 minutes
TARGET_PER_FILE = 12  # sparse corpora cluster events into ~this many per file
MAX_PER_FILE = 1500   # busy slots are split over several files, as AWS does
DIGEST_HOURS = 4      # hourly digest files written per account/region

ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
UPALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


# --------------------------------------------------------------------------
# small helpers

def iso(t):
    g = time.gmtime(t)
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (g[0], g[1], g[2], g[3], g[4], g[5])


def aws_date(t):
    """IAM / STS style date used inside responseElements: 'Nov 20, 2026, 9:53:12 PM'."""
    g = time.gmtime(t)
    h = g[3] % 12 or 12
    return "%s %d, %d, %d:%02d:%02d %s" % (MONTHS[g[1] - 1], g[2], g[0], h, g[4], g[5],
                                            "AM" if g[3] < 12 else "PM")


def parse_iso(s):
    s = s.strip()
    if s.endswith("Z"):
        s = s[:-1]
    for fmt in ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"):
        try:
            return calendar.timegm(time.strptime(s, fmt))
        except ValueError:
            pass
    raise SystemExit("gen-corpus: bad --start %r (want 2026-11-16T00:00:00Z)" % s)


def uid(r):
    h = "%032x" % r.getrandbits(128)
    return "%s-%s-4%s-%x%s-%s" % (h[:8], h[8:12], h[13:16], 8 + (int(h[16], 16) & 3),
                                  h[17:20], h[20:32])


def hexs(r, n):
    return "%0*x" % (n, r.getrandbits(4 * n))


def pick_chars(r, alphabet, n):
    return "".join(r.choices(alphabet, k=n))


def s3_rid(r):
    return "%016X" % r.getrandbits(64)


def amz_id2(r):
    return base64.b64encode(r.randbytes(57)).decode()


def cli_cmd(src, name):
    svc = src.split(".")[0]
    svc = {"monitoring": "cloudwatch", "elasticloadbalancing": "elbv2"}.get(svc, svc)
    base = re.sub(r"20\d{6}(v\d)?$", "", name)
    return svc + "." + re.sub(r"(?<!^)(?=[A-Z])", "-", base).lower()


def action_prefix(src):
    p = src.split(".")[0]
    return {"monitoring": "cloudwatch", "signin": "signin"}.get(p, p)


# --------------------------------------------------------------------------
# the world: accounts, their resources and the principals that act in them

class Account:
    pass


def build_account(idx, acct, regions):
    """Resources and principals of one account.  Depends only on the account id
    and its index, not on --seed, so principal ids and keys are stable."""
    r = random.Random("trailhound-account-" + acct)
    A = Account()
    A.idx, A.id, A.regions = idx, acct, regions
    first = idx == 0
    A.prefix = "acme" if first else ["globex", "initech", "umbrella", "hooli", "stark"][(idx - 1) % 5] + (
        "" if idx <= 5 else str(idx))
    A.users = {}
    names = ["alice", "bob"] if first else [["carol", "dave"], ["erin", "frank"], ["grace", "heidi"],
                                            ["ivan", "judy"], ["mallory", "niaj"]][(idx - 1) % 5]
    A.human1, A.human2 = names
    A.ci_user = "ci-deploy" if first else "ci-runner"
    for u in names + [A.ci_user, "svc-reporting"]:
        A.users[u] = {"id": "AIDA" + pick_chars(r, UPALNUM, 17),
                      "key": "AKIA" + pick_chars(r, UPALNUM, 16),
                      "arn": "arn:aws:iam::%s:user/%s" % (acct, u)}
    if first:
        A.users["ci-deploy"]["key"] = "AKIA2CIDEPLOYEXAMPLE"
    A.roles = {}
    for role in ["AdminRole", "ReadOnlyAuditor", "deploy-role", "orders-api-role", "thumbnailer-role",
                 "app-ec2-role", "monitoring-readonly", "AWSServiceRoleForConfig"]:
        arn = "arn:aws:iam::%s:role/%s" % (acct, role)
        if role == "AWSServiceRoleForConfig":
            arn = "arn:aws:iam::%s:role/aws-service-role/config.amazonaws.com/%s" % (acct, role)
        A.roles[role] = {"id": "AROA" + pick_chars(r, UPALNUM, 17), "arn": arn}
    A.groups = ["Admins", "Developers", "ReadOnly"]
    A.buckets = {}
    A.instances, A.sgs, A.vpcs, A.subnets, A.rtbs, A.volumes, A.kms, A.tgws = {}, {}, {}, {}, {}, {}, {}, {}
    for ri, reg in enumerate(regions):
        tag = "" if ri == 0 else "-" + reg
        A.buckets[reg] = [A.prefix + "-prod-data" + tag, A.prefix + "-web-assets" + tag,
                          A.prefix + "-thumbnails" + tag, A.prefix + "-artifacts-" + acct + tag]
        if ri == 0:
            A.buckets[reg] += [A.prefix + "-prod-backups", A.prefix + "-tfstate-" + acct,
                               "aws-cloudtrail-logs-%s-%s" % (acct, TRAIL_NAME)]
        A.instances[reg] = ["i-0" + hexs(r, 16) for _ in range(12)]
        A.sgs[reg] = ["sg-0" + hexs(r, 16) for _ in range(6)]
        if first and ri == 0:
            A.sgs[reg][0] = "sg-0a1b2c3d4e5f60718"  # bastion-ssh, used by the story
        A.vpcs[reg] = ["vpc-0" + hexs(r, 16) for _ in range(2)]
        A.subnets[reg] = ["subnet-0" + hexs(r, 16) for _ in range(6)]
        A.rtbs[reg] = ["rtb-0" + hexs(r, 16) for _ in range(3)]
        A.volumes[reg] = ["vol-0" + hexs(r, 16) for _ in range(12)]
        A.tgws[reg] = "tgw-0" + hexs(r, 16)
        A.kms[reg] = ["arn:aws:kms:%s:%s:key/%s" % (reg, acct, uid(r)) for _ in range(4)]
    A.functions = ["orders-api", "thumbnailer", "report-gen", "auth-authorizer"]
    A.tables = ["orders", "sessions", "user-profiles", "terraform-locks"]
    A.params = ["/prod/orders/db-url", "/prod/orders/api-key", "/prod/orders/feature-flags",
                "/prod/shared/datadog-api-key", "/prod/thumbnailer/max-size", "/prod/web/session-secret"]
    A.secrets = ["prod/orders/db", "prod/payments/stripe", "prod/web/oauth-client"]
    A.loggroups = ["/aws/lambda/" + f for f in A.functions] + ["/ecs/web", "/var/log/messages"]
    A.repos = ["orders-api", "web", "thumbnailer"]
    A.stacks = ["orders-api-prod", "web-prod", "network-base"]
    A.dbs = ["orders-db", "reporting-db"]
    A.zone = "Z0" + pick_chars(r, UPALNUM, 19)
    A.tg = "arn:aws:elasticloadbalancing:%s:%s:targetgroup/web-prod/%s" % (regions[0], acct, hexs(r, 16))
    A.mfa = {u: "arn:aws:iam::%s:mfa/%s" % (acct, u) for u in names}
    # fixed IPs: office NAT and home addresses (documentation ranges, never 203.0.113.0/24)
    A.office = ["198.51.100.%d" % (10 + idx * 8 + k) for k in range(3)]
    A.home = {names[0]: "192.0.2.%d" % (20 + idx * 4), names[1]: "192.0.2.%d" % (21 + idx * 4)}
    A.instance_ip = {reg: ["54.%d.%d.%d" % (r.randint(80, 240), r.randint(0, 255), r.randint(1, 254))
                           for _ in range(6)] for reg in regions}
    A.svc_ip = ["34.%d.%d.%d" % (r.randint(192, 239), r.randint(0, 255), r.randint(1, 254)) for _ in range(4)]
    A.mon_ip = ["3.%d.%d.%d" % (r.randint(208, 239), r.randint(0, 255), r.randint(1, 254)) for _ in range(4)]
    return A


# --------------------------------------------------------------------------
# user agents

def cli_ua(r):
    return ("aws-cli/2.%d.%d Python/3.11.%d Darwin/23.%d.0 exe/x86_64 prompt/off command/{cmd}"
            % (r.choice([15, 17, 18]), r.randint(0, 40), r.choice([6, 8, 9]), r.randint(1, 6)))


def boto_ua(r, extra=""):
    b = r.choice(["1.34.%d" % r.randint(10, 140), "1.35.%d" % r.randint(0, 90)])
    return ("Boto3/%s md/Botocore#%s ua/2.0 os/linux#6.5.0 md/arch#x86_64 lang/python#3.11.%d "
            "md/pyimpl#CPython%s cfg/retry-mode#legacy Botocore/%s" % (b, b, r.choice([6, 8, 9]), extra, b))


def terraform_ua(r):
    return ("APN/1.0 HashiCorp/1.0 Terraform/1.6.6 (+https://www.terraform.io) terraform-provider-aws/5.31.0 "
            "(+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.24.0 os/linux "
            "lang/go#1.21.5 md/GOOS#linux md/GOARCH#amd64 api/{api}#1.%d.0" % r.randint(20, 60))


BROWSERS = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
]
S3_CONSOLE_UA = ("[S3Console/0.4, aws-internal/3 aws-sdk-java/1.12.750 Linux/5.10.226-192.879.amzn2int.x86_64 "
                 "OpenJDK_64-Bit_Server_VM/25.412-b09 java/1.8.0_412 vendor/Oracle_Corporation cfg/retry-mode/standard]")
SSM_AGENT_UA = "aws-sdk-go/1.44.%d (go1.21.%d; linux; amd64) amazon-ssm-agent/3.3.%d.0"
GO_UA = "aws-sdk-go/1.50.%d (go1.21.%d; linux; amd64)"


# --------------------------------------------------------------------------
# templates: one builder per eventName.  A builder gets
# (r, A, region, S, t, rid) and returns (requestParameters, responseElements,
# additionalEventData, resources).

def _fs(name, *vals):
    return {"name": name, "valueSet": {"items": [{"value": v} for v in vals]}}


def _bucket_res(A, b):
    return [{"accountId": A.id, "type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::" + b}]


def _s3_add(r, out_bytes=0, in_bytes=0):
    return {"SignatureVersion": "SigV4", "CipherSuite": "TLS_AES_128_GCM_SHA256",
            "bytesTransferredIn": in_bytes, "AuthenticationMethod": "AuthHeader",
            "x-amz-id-2": amz_id2(r), "bytesTransferredOut": out_bytes}


def _host(b, region):
    return "%s.s3.%s.amazonaws.com" % (b, region)


def _bucket(r, A, region, S):
    pref = S.p.get("buckets")
    if pref:
        cand = [b for b in A.buckets[region] if any(k in b for k in pref)]
        if cand:
            return r.choice(cand)
    return r.choice(A.buckets[region])


def _obj_key(r, b, t):
    g = time.gmtime(t)
    if "thumbnails" in b:
        return "thumbs/%s/%s_%d.jpg" % (hexs(r, 2), hexs(r, 12), r.choice([128, 256, 512]))
    if "web-assets" in b:
        return r.choice(["static/js/main.%s.js" % hexs(r, 8), "static/css/app.%s.css" % hexs(r, 8),
                         "img/logo.svg", "index.html"])
    if "artifacts" in b:
        return "builds/%s/%s.zip" % (r.choice(["orders-api", "web", "thumbnailer"]), hexs(r, 40))
    if "tfstate" in b:
        return r.choice(["network/terraform.tfstate", "apps/terraform.tfstate", "iam/terraform.tfstate"])
    if "backups" in b:
        return "db/%s/%04d-%02d-%02d/part-%04d.parquet" % (r.choice(["orders", "users"]), g[0], g[1], g[2],
                                                           r.randint(0, 300))
    return "orders/%04d/%02d/%02d/%s.json" % (g[0], g[1], g[2], uid(r))


def b_none(r, A, region, S, t, rid):
    return None, None, None, None


def b_assume_role(r, A, region, S, t, rid):
    target = S.p["assume"]
    if isinstance(target, list):
        target = r.choice(target)
    role, sess_name, mfa = target
    if sess_name == "@instance":
        sess_name = r.choice(A.instances[region])
    elif sess_name == "@run":
        sess_name = "terraform-%d" % (1700000000 + r.randint(0, 99999999))
    ro = A.roles[role]
    req = {"roleArn": ro["arn"], "roleSessionName": sess_name}
    if mfa:
        req["durationSeconds"] = 3600
        req["serialNumber"] = A.mfa[mfa]
    elif S.p["kind"] != "awsservice":
        req["durationSeconds"] = 3600
    resp = {"credentials": {"accessKeyId": "ASIA" + pick_chars(r, UPALNUM, 16),
                            "expiration": aws_date(t + 3600)},
            "assumedRoleUser": {"assumedRoleId": "%s:%s" % (ro["id"], sess_name),
                                "arn": "arn:aws:sts::%s:assumed-role/%s/%s" % (A.id, role, sess_name)}}
    return req, resp, None, [{"accountId": A.id, "type": "AWS::IAM::Role", "ARN": ro["arn"]}]


def b_describe_instances(r, A, region, S, t, rid):
    x = r.random()
    if x < 0.4:
        ids = r.sample(A.instances[region], r.randint(1, 3))
        return {"instancesSet": {"items": [{"instanceId": i} for i in ids]}, "filterSet": {}}, None, None, None
    if x < 0.8:
        f = [_fs("instance-state-name", "running", "pending")]
        if r.random() < 0.6:
            f.append(_fs("tag:Environment", r.choice(["prod", "staging"])))
        return {"instancesSet": {}, "filterSet": {"items": f}}, None, None, None
    return {"maxResults": 1000, "instancesSet": {}, "filterSet": {}}, None, None, None


def b_describe_sgs(r, A, region, S, t, rid):
    if r.random() < 0.6:
        return ({"securityGroupSet": {}, "securityGroupIdSet": {"items": [{"groupId": g} for g in
                                                                          r.sample(A.sgs[region], r.randint(1, 2))]},
                 "filterSet": {}}, None, None, None)
    return ({"securityGroupSet": {}, "securityGroupIdSet": {},
             "filterSet": {"items": [_fs("vpc-id", r.choice(A.vpcs[region]))]}}, None, None, None)


def b_describe_vpcs(r, A, region, S, t, rid):
    return {"vpcSet": {"items": [{"vpcId": r.choice(A.vpcs[region])}]}, "filterSet": {}}, None, None, None


def b_describe_subnets(r, A, region, S, t, rid):
    return ({"subnetSet": {}, "filterSet": {"items": [_fs("vpc-id", r.choice(A.vpcs[region]))]}},
            None, None, None)


def b_describe_volumes(r, A, region, S, t, rid):
    return ({"volumeSet": {}, "filterSet": {"items": [_fs("attachment.instance-id",
                                                          r.choice(A.instances[region]))]}}, None, None, None)


def b_describe_rtbs(r, A, region, S, t, rid):
    return ({"routeTableIdSet": {}, "filterSet": {"items": [_fs("vpc-id", r.choice(A.vpcs[region]))]}},
            None, None, None)


def b_describe_enis(r, A, region, S, t, rid):
    return ({"networkInterfaceIdSet": {}, "filterSet": {"items": [_fs("group-id", r.choice(A.sgs[region]))]}},
            None, None, None)


def b_describe_status(r, A, region, S, t, rid):
    return ({"instancesSet": {"items": [{"instanceId": i} for i in r.sample(A.instances[region], 2)]},
             "filterSet": {}, "includeAllInstances": True}, None, None, None)


def b_describe_regions(r, A, region, S, t, rid):
    return {"regionSet": {}, "allRegions": False}, None, None, None


def b_describe_tags(r, A, region, S, t, rid):
    return ({"filterSet": {"items": [_fs("resource-id", r.choice(A.instances[region]))]}}, None, None, None)


def b_create_tags(r, A, region, S, t, rid):
    return ({"resourcesSet": {"items": [{"resourceId": r.choice(A.instances[region])}]},
             "tagSet": {"items": [{"key": "LastDeployed", "value": iso(t)},
                                  {"key": "DeployedBy", "value": "terraform"}]}},
            {"requestId": rid, "_return": True}, None, None)


def b_list_buckets(r, A, region, S, t, rid):
    return {"Host": "s3.amazonaws.com"}, None, _s3_add(r, r.randint(900, 4000)), None


def _b_bucket_sub(sub):
    def b(r, A, region, S, t, rid):
        bk = _bucket(r, A, region, S)
        return ({"bucketName": bk, "Host": _host(bk, region), sub: ""}, None,
                _s3_add(r, r.randint(200, 2000)), _bucket_res(A, bk))
    return b


def b_get_object(r, A, region, S, t, rid):
    bk = _bucket(r, A, region, S)
    key = _obj_key(r, bk, t)
    return ({"bucketName": bk, "Host": _host(bk, region), "key": key}, None,
            _s3_add(r, r.randint(300, 5000000)),
            [{"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::%s/%s" % (bk, key)},
             {"accountId": A.id, "type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::" + bk}])


def b_head_object(r, A, region, S, t, rid):
    req, _, add, res = b_get_object(r, A, region, S, t, rid)
    add["bytesTransferredOut"] = 0
    return req, None, add, res


def b_put_object(r, A, region, S, t, rid):
    bk = _bucket(r, A, region, S)
    key = _obj_key(r, bk, t)
    return ({"bucketName": bk, "Host": _host(bk, region), "key": key},
            {"x-amz-server-side-encryption": "aws:kms",
             "x-amz-server-side-encryption-aws-kms-key-id": A.kms[region][0],
             "x-amz-version-id": pick_chars(r, ALNUM, 32)},
            _s3_add(r, 0, r.randint(500, 3000000)),
            [{"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::%s/%s" % (bk, key)},
             {"accountId": A.id, "type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::" + bk}])


def _kms_ctx(r, A, region, S):
    x = r.random()
    if x < 0.35:
        return {"aws:lambda:FunctionArn": "arn:aws:lambda:%s:%s:function:%s" % (region, A.id, r.choice(A.functions))}
    if x < 0.65:
        bk = r.choice(A.buckets[region])
        return {"aws:s3:arn": "arn:aws:s3:::%s/%s" % (bk, hexs(r, 24))}
    if x < 0.85:
        return {"SecretARN": "arn:aws:secretsmanager:%s:%s:secret:%s-%s" % (region, A.id, r.choice(A.secrets),
                                                                           pick_chars(r, ALNUM, 6)),
                "SecretVersionId": uid(r)}
    return {"PARAMETER_ARN": "arn:aws:ssm:%s:%s:parameter%s" % (region, A.id, r.choice(A.params))}


def b_kms_decrypt(r, A, region, S, t, rid):
    key = r.choice(A.kms[region])
    return ({"encryptionAlgorithm": "SYMMETRIC_DEFAULT", "encryptionContext": _kms_ctx(r, A, region, S)}, None,
            None, [{"accountId": A.id, "type": "AWS::KMS::Key", "ARN": key}])


def b_kms_gdk(r, A, region, S, t, rid):
    key = r.choice(A.kms[region])
    return ({"keyId": key, "encryptionContext": _kms_ctx(r, A, region, S), "keySpec": "AES_256"}, None, None,
            [{"accountId": A.id, "type": "AWS::KMS::Key", "ARN": key}])


def b_kms_describe(r, A, region, S, t, rid):
    key = r.choice(A.kms[region])
    return {"keyId": key}, None, None, [{"accountId": A.id, "type": "AWS::KMS::Key", "ARN": key}]


def b_kms_aliases(r, A, region, S, t, rid):
    return {"limit": 100}, None, None, None


def _normal_user(r, A):
    return r.choice([A.human1, A.human2, A.ci_user, "svc-reporting"])


def b_iam_list(r, A, region, S, t, rid):
    return {"maxItems": 100}, None, None, None


def b_iam_user(r, A, region, S, t, rid):
    return {"userName": _normal_user(r, A)}, None, None, None


def b_iam_role(r, A, region, S, t, rid):
    return {"roleName": r.choice(list(A.roles))}, None, None, None


def b_iam_list_policies(r, A, region, S, t, rid):
    return {"scope": "Local", "onlyAttached": False, "maxItems": 100}, None, None, None


def b_iam_policy_version(r, A, region, S, t, rid):
    return ({"policyArn": "arn:aws:iam::%s:policy/%s" % (A.id, r.choice(["orders-api-access", "ci-deploy-boundary",
                                                                         "s3-artifacts-rw", "readonly-extra"])),
             "versionId": "v%d" % r.randint(1, 6)}, None, None, None)


def _fn_arn(A, region, fn):
    return "arn:aws:lambda:%s:%s:function:%s" % (region, A.id, fn)


def b_lambda_list(r, A, region, S, t, rid):
    return {"maxItems": 50}, None, None, None


def b_lambda_get(r, A, region, S, t, rid):
    return {"functionName": r.choice(A.functions)}, None, None, None


def b_lambda_invoke(r, A, region, S, t, rid):
    fn = _fn_arn(A, region, r.choice(A.functions))
    return ({"functionName": fn, "invocationType": r.choice(["RequestResponse", "Event"]), "logType": "None"},
            None, {"functionVersion": fn + ":$LATEST"},
            [{"accountId": A.id, "type": "AWS::Lambda::Function", "ARN": fn}])


def b_logs_create_stream(r, A, region, S, t, rid):
    g = time.gmtime(t)
    return ({"logGroupName": "/aws/lambda/" + r.choice(A.functions),
             "logStreamName": "%04d/%02d/%02d/[$LATEST]%s" % (g[0], g[1], g[2], hexs(r, 32))}, None, None, None)


def b_logs_groups(r, A, region, S, t, rid):
    return {"logGroupNamePrefix": r.choice(["/aws/lambda", "/ecs", "/var/log"])}, None, None, None


def b_logs_streams(r, A, region, S, t, rid):
    return ({"logGroupName": r.choice(A.loggroups), "orderBy": "LastEventTime", "descending": True, "limit": 50},
            None, None, None)


def b_logs_filter(r, A, region, S, t, rid):
    return ({"logGroupName": r.choice(A.loggroups), "startTime": (t - 3600) * 1000, "endTime": t * 1000,
             "filterPattern": r.choice(["ERROR", "\"Task timed out\"", "{ $.level = \"error\" }", "Exception"]),
             "interleaved": True}, None, None, None)


def _secure(name):
    return name.endswith(("-url", "-key", "-secret"))


def b_ssm_get(r, A, region, S, t, rid):
    name = r.choice(A.params)
    return {"name": name, "withDecryption": _secure(name)}, None, None, None


def b_ssm_gets(r, A, region, S, t, rid):
    names = r.sample(A.params, 3)
    return {"names": names, "withDecryption": any(_secure(n) for n in names)}, None, None, None


def b_ssm_path(r, A, region, S, t, rid):
    path = r.choice(["/prod/orders/", "/prod/shared/", "/prod/web/", "/prod/thumbnailer/"])
    return {"path": path, "recursive": True, "withDecryption": path != "/prod/thumbnailer/"}, None, None, None


def b_ssm_update(r, A, region, S, t, rid):
    inst = S.instance or r.choice(A.instances[region])
    ip = "10.0.%d.%d" % (r.randint(0, 63), r.randint(4, 250))
    return ({"instanceId": inst, "agentVersion": "3.3.987.0", "agentStatus": "Active", "platformType": "Linux",
             "platformName": "Amazon Linux", "platformVersion": "2023", "iPAddress": ip,
             "computerName": "ip-%s.%s.compute.internal" % (ip.replace(".", "-"), region),
             "agentName": "amazon-ssm-agent", "availabilityZone": region + "a",
             "availabilityZoneId": region[:2] + region.split("-")[1][0] + "1-az1"}, None, None, None)


def b_ssm_assoc(r, A, region, S, t, rid):
    return {"instanceId": S.instance or r.choice(A.instances[region]), "maxResults": 20}, None, None, None


def b_ssm_describe(r, A, region, S, t, rid):
    return {"maxResults": 50, "filters": [{"key": "PingStatus", "values": ["Online"]}]}, None, None, None


def b_secret_get(r, A, region, S, t, rid):
    return {"secretId": r.choice(A.secrets)}, None, None, None


def b_cw_metric_data(r, A, region, S, t, rid):
    ns, mn, dim, val = r.choice([("AWS/EC2", "CPUUtilization", "InstanceId", r.choice(A.instances[region])),
                                 ("AWS/Lambda", "Errors", "FunctionName", r.choice(A.functions)),
                                 ("AWS/DynamoDB", "ConsumedReadCapacityUnits", "TableName", r.choice(A.tables)),
                                 ("AWS/RDS", "DatabaseConnections", "DBInstanceIdentifier", r.choice(A.dbs))])
    return ({"metricDataQueries": [{"id": "m1", "metricStat": {"metric": {"namespace": ns, "metricName": mn,
                                                                          "dimensions": [{"name": dim, "value": val}]},
                                                               "period": 300, "stat": "Average"},
                                    "returnData": True}],
             "startTime": iso(t - 10800), "endTime": iso(t)}, None, None, None)


def b_cw_alarms(r, A, region, S, t, rid):
    return {"maxRecords": 100, "alarmTypes": ["CompositeAlarm", "MetricAlarm"]}, None, None, None


def b_cw_list_metrics(r, A, region, S, t, rid):
    return {"namespace": r.choice(["AWS/EC2", "AWS/Lambda", "AWS/DynamoDB", "AWS/ApplicationELB"])}, None, None, None


def b_ddb_table(r, A, region, S, t, rid):
    tb = r.choice(A.tables)
    return ({"tableName": tb}, None, None,
            [{"accountId": A.id, "type": "AWS::DynamoDB::Table",
              "ARN": "arn:aws:dynamodb:%s:%s:table/%s" % (region, A.id, tb)}])


def b_ddb_list(r, A, region, S, t, rid):
    return {"limit": 100}, None, None, None


def b_ecr_token(r, A, region, S, t, rid):
    return None, None, None, None


def _repo_res(A, region, repo):
    return [{"accountId": A.id, "ARN": "arn:aws:ecr:%s:%s:repository/%s" % (region, A.id, repo)}]


def b_ecr_image(r, A, region, S, t, rid):
    repo = r.choice(A.repos)
    return ({"imageIds": [{"imageTag": r.choice(["latest", "prod", "sha-" + hexs(r, 7)])}],
             "acceptedMediaTypes": ["application/vnd.docker.distribution.manifest.v2+json",
                                    "application/vnd.oci.image.manifest.v1+json"],
             "repositoryName": repo, "registryId": A.id}, None, None, _repo_res(A, region, repo))


def b_ecr_layer(r, A, region, S, t, rid):
    repo = r.choice(A.repos)
    return ({"layerDigest": "sha256:" + hexs(r, 64), "repositoryName": repo, "registryId": A.id}, None, None,
            _repo_res(A, region, repo))


def _trail_arn(A):
    return "arn:aws:cloudtrail:%s:%s:trail/%s" % ("us-east-1", A.id, TRAIL_NAME)


def b_ct_describe(r, A, region, S, t, rid):
    return {"trailNameList": [], "includeShadowTrails": True}, None, None, None


def b_ct_status(r, A, region, S, t, rid):
    return {"name": _trail_arn(A)}, None, None, None


def b_ct_selectors(r, A, region, S, t, rid):
    return {"trailName": TRAIL_NAME}, None, None, None


def b_ct_lookup(r, A, region, S, t, rid):
    return ({"maxResults": 50, "lookupAttributes": [{"attributeKey": r.choice(["ReadOnly", "EventName", "Username"]),
                                                     "attributeValue": r.choice(["false", "RunInstances",
                                                                                 A.human2])}]},
            None, None, None)


def b_rds(r, A, region, S, t, rid):
    return {"dBInstanceIdentifier": r.choice(A.dbs)} if r.random() < 0.6 else None, None, None, None


def b_cfn(r, A, region, S, t, rid):
    return {"stackName": r.choice(A.stacks)}, None, None, None


def b_asg(r, A, region, S, t, rid):
    return {"autoScalingGroupNames": ["web-prod-asg"]}, None, None, None


def b_elb_health(r, A, region, S, t, rid):
    return {"targetGroupArn": A.tg.replace(A.regions[0], region)}, None, None, None


def b_elb_lbs(r, A, region, S, t, rid):
    return {"pageSize": 400}, None, None, None


def b_r53_zones(r, A, region, S, t, rid):
    return {"maxItems": "100"}, None, None, None


def b_r53_records(r, A, region, S, t, rid):
    return {"hostedZoneId": A.zone, "maxItems": "300"}, None, None, None


def b_ct_bucket_acl(r, A, region, S, t, rid):
    bk = "aws-cloudtrail-logs-%s-%s" % (A.id, TRAIL_NAME)
    return ({"bucketName": bk, "Host": _host(bk, "us-east-1"), "acl": ""}, None,
            _s3_add(r, r.randint(400, 900)), _bucket_res(A, bk))


# ---- rare change events (about 0.1% of traffic) ---------------------------

def b_create_access_key(r, A, region, S, t, rid):
    u = r.choice([A.human1, A.human2, "svc-reporting"])
    return ({"userName": u},
            {"accessKey": {"accessKeyId": "AKIA" + pick_chars(r, UPALNUM, 16), "status": "Active",
                           "userName": u, "createDate": aws_date(t)}}, None, None)


def b_delete_access_key(r, A, region, S, t, rid):
    return {"userName": "svc-reporting", "accessKeyId": "AKIA" + pick_chars(r, UPALNUM, 16)}, None, None, None


def b_sg_ingress_internal(r, A, region, S, t, rid):
    sg = r.choice(A.sgs[region])
    port = r.choice([443, 5432, 6379, 8080])
    cidr = "10.%d.0.0/16" % r.randint(0, 60)
    return ({"groupId": sg, "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": port, "toPort": port,
                                                         "groups": {}, "ipRanges": {"items": [{"cidrIp": cidr,
                                                                                               "description": "internal"}]},
                                                         "ipv6Ranges": {}, "prefixListIds": {}}]}},
            {"requestId": rid, "_return": True,
             "securityGroupRuleSet": {"items": [{"groupOwnerId": A.id, "groupId": sg,
                                                 "securityGroupRuleId": "sgr-0" + hexs(r, 16), "isEgress": False,
                                                 "ipProtocol": "tcp", "fromPort": port, "toPort": port,
                                                 "cidrIpv4": cidr, "description": "internal"}]}}, None, None)


def b_create_bucket(r, A, region, S, t, rid):
    bk = "%s-tmp-%s" % (A.prefix, hexs(r, 8))
    req = {"bucketName": bk, "Host": _host(bk, region), "x-amz-object-ownership": "BucketOwnerEnforced"}
    if region != "us-east-1":
        req["CreateBucketConfiguration"] = {"LocationConstraint": region,
                                            "xmlns": "http://s3.amazonaws.com/doc/2006-03-01/"}
    return req, None, _s3_add(r, 0, 153), _bucket_res(A, bk)


def b_create_route(r, A, region, S, t, rid):
    return ({"routeTableId": r.choice(A.rtbs[region]), "destinationCidrBlock": "10.%d.0.0/16" % r.randint(64, 127),
             "transitGatewayId": A.tgws[region]}, {"requestId": rid, "_return": True}, None, None)


def b_put_event_selectors(r, A, region, S, t, rid):
    sel = [{"readWriteType": "All", "includeManagementEvents": True,
            "dataResources": [{"type": "AWS::S3::Object", "values": ["arn:aws:s3:::%s-prod-data/" % A.prefix]},
                              {"type": "AWS::Lambda::Function", "values": ["arn:aws:lambda"]}],
            "excludeManagementEventSources": []}]
    return ({"trailName": TRAIL_NAME, "eventSelectors": sel},
            {"trailARN": _trail_arn(A), "eventSelectors": sel}, None, None)


def b_update_function_code(r, A, region, S, t, rid):
    fn = r.choice(A.functions)
    arn = _fn_arn(A, region, fn)
    return ({"functionName": fn, "publish": True, "dryRun": False},
            {"functionName": fn, "functionArn": arn, "runtime": "python3.12",
             "role": A.roles["orders-api-role"]["arn"], "handler": "app.handler", "codeSize": r.randint(8000, 9000000),
             "description": "", "timeout": 30, "memorySize": 512, "lastModified": iso(t)[:-1] + ".000+0000",
             "codeSha256": base64.b64encode(r.randbytes(32)).decode(), "version": str(r.randint(10, 300)),
             "tracingConfig": {"mode": "PassThrough"}, "revisionId": uid(r), "state": "Active",
             "lastUpdateStatus": "InProgress", "lastUpdateStatusReason": "The function is being created.",
             "lastUpdateStatusReasonCode": "Creating", "packageType": "Zip", "architectures": ["arm64"],
             "ephemeralStorage": {"size": 512}, "snapStart": {"applyOn": "None", "optimizationStatus": "Off"},
             "runtimeVersionConfig": {"runtimeVersionArn": "arn:aws:lambda:%s::runtime:%s" % (region, hexs(r, 64))},
             "loggingConfig": {"logFormat": "Text", "logGroup": "/aws/lambda/" + fn}}, None, None)


def b_attach_role_policy(r, A, region, S, t, rid):
    return ({"roleName": r.choice(["orders-api-role", "thumbnailer-role", "app-ec2-role"]),
             "policyArn": r.choice(["arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess",
                                    "arn:aws:iam::aws:policy/CloudWatchLambdaInsightsExecutionRolePolicy",
                                    "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"])}, None, None, None)


def b_run_instances(r, A, region, S, t, rid):
    inst = "i-0" + hexs(r, 16)
    sub = r.choice(A.subnets[region])
    sg = r.choice(A.sgs[region])
    ip = "10.0.%d.%d" % (r.randint(0, 63), r.randint(4, 250))
    return ({"instancesSet": {"items": [{"imageId": "ami-0" + hexs(r, 16), "minCount": 1, "maxCount": 1}]},
             "instanceType": "t3.medium", "blockDeviceMapping": {}, "monitoring": {"enabled": False},
             "disableApiTermination": False, "disableApiStop": False, "clientToken": "terraform-" + hexs(r, 26),
             "iamInstanceProfile": {"name": "app-ec2-profile"},
             "networkInterfaceSet": {"items": [{"deviceIndex": 0, "subnetId": sub,
                                                "groupSet": {"items": [{"groupId": sg}]}}]},
             "tagSpecificationSet": {"items": [{"resourceType": "instance",
                                                "tags": [{"key": "Name", "value": "web-prod"},
                                                         {"key": "Environment", "value": "prod"}]}]}},
            {"requestId": rid, "reservationId": "r-0" + hexs(r, 16), "ownerId": A.id, "groupSet": {},
             "instancesSet": {"items": [{"instanceId": inst, "imageId": "ami-0" + hexs(r, 16),
                                         "currentInstanceBootMode": "uefi", "instanceState": {"code": 0,
                                                                                             "name": "pending"},
                                         "privateDnsName": "ip-%s.ec2.internal" % ip.replace(".", "-"),
                                         "amiLaunchIndex": 0, "productCodes": {}, "instanceType": "t3.medium",
                                         "launchTime": t * 1000, "placement": {"availabilityZone": region + "a",
                                                                               "tenancy": "default"},
                                         "monitoring": {"state": "disabled"}, "subnetId": sub,
                                         "vpcId": r.choice(A.vpcs[region]), "privateIpAddress": ip,
                                         "stateReason": {"code": "pending", "message": "pending"},
                                         "architecture": "x86_64", "rootDeviceType": "ebs",
                                         "rootDeviceName": "/dev/xvda", "blockDeviceMapping": {},
                                         "virtualizationType": "hvm", "clientToken": "terraform-" + hexs(r, 26),
                                         "groupSet": {"items": [{"groupId": sg, "groupName": "web"}]},
                                         "sourceDestCheck": True, "hypervisor": "xen",
                                         "networkInterfaceSet": {"items": [{"networkInterfaceId": "eni-0" + hexs(r, 16),
                                                                            "subnetId": sub,
                                                                            "privateIpAddress": ip}]},
                                         "ebsOptimized": False, "enaSupport": True,
                                         "cpuOptions": {"coreCount": 1, "threadsPerCore": 2},
                                         "metadataOptions": {"state": "pending", "httpTokens": "required",
                                                             "httpPutResponseHopLimit": 2,
                                                             "httpEndpoint": "enabled"}}]}}, None, None)


# name -> (eventSource, readOnly, category, global(us-east-1 only), builder)
T = {}


def tpl(src, name, ro, builder, cat="Management", glob=False):
    T[name] = {"src": src, "name": name, "ro": ro, "cat": cat, "glob": glob, "b": builder,
               "cmd": cli_cmd(src, name), "api": src.split(".")[0],
               "ver": "1.09" if src.split(".")[0] in ("ec2", "s3", "iam", "sts", "kms", "signin") else "1.08",
               "mgmt": cat == "Management", "s3": src == "s3.amazonaws.com",
               "deny": action_prefix(src) + ":" + re.sub(r"20\d{6}(v\d)?$", "", name)}


tpl("sts.amazonaws.com", "GetCallerIdentity", True, b_none)
tpl("sts.amazonaws.com", "AssumeRole", True, b_assume_role)
tpl("ec2.amazonaws.com", "DescribeInstances", True, b_describe_instances)
tpl("ec2.amazonaws.com", "DescribeSecurityGroups", True, b_describe_sgs)
tpl("ec2.amazonaws.com", "DescribeVpcs", True, b_describe_vpcs)
tpl("ec2.amazonaws.com", "DescribeSubnets", True, b_describe_subnets)
tpl("ec2.amazonaws.com", "DescribeVolumes", True, b_describe_volumes)
tpl("ec2.amazonaws.com", "DescribeRouteTables", True, b_describe_rtbs)
tpl("ec2.amazonaws.com", "DescribeNetworkInterfaces", True, b_describe_enis)
tpl("ec2.amazonaws.com", "DescribeInstanceStatus", True, b_describe_status)
tpl("ec2.amazonaws.com", "DescribeRegions", True, b_describe_regions)
tpl("ec2.amazonaws.com", "DescribeTags", True, b_describe_tags)
tpl("ec2.amazonaws.com", "CreateTags", False, b_create_tags)
tpl("s3.amazonaws.com", "ListBuckets", True, b_list_buckets, glob=True)
tpl("s3.amazonaws.com", "GetBucketAcl", True, _b_bucket_sub("acl"))
tpl("s3.amazonaws.com", "GetBucketLocation", True, _b_bucket_sub("location"))
tpl("s3.amazonaws.com", "GetBucketPolicy", True, _b_bucket_sub("policy"))
tpl("s3.amazonaws.com", "GetBucketVersioning", True, _b_bucket_sub("versioning"))
tpl("s3.amazonaws.com", "GetBucketEncryption", True, _b_bucket_sub("encryption"))
tpl("s3.amazonaws.com", "GetObject", True, b_get_object, cat="Data")
tpl("s3.amazonaws.com", "HeadObject", True, b_head_object, cat="Data")
tpl("s3.amazonaws.com", "PutObject", False, b_put_object, cat="Data")
tpl("kms.amazonaws.com", "Decrypt", True, b_kms_decrypt)
tpl("kms.amazonaws.com", "GenerateDataKey", True, b_kms_gdk)
tpl("kms.amazonaws.com", "DescribeKey", True, b_kms_describe)
tpl("kms.amazonaws.com", "ListAliases", True, b_kms_aliases)
tpl("iam.amazonaws.com", "ListUsers", True, b_iam_list, glob=True)
tpl("iam.amazonaws.com", "ListRoles", True, b_iam_list, glob=True)
tpl("iam.amazonaws.com", "GetRole", True, b_iam_role, glob=True)
tpl("iam.amazonaws.com", "ListAttachedRolePolicies", True, b_iam_role, glob=True)
tpl("iam.amazonaws.com", "ListAttachedUserPolicies", True, b_iam_user, glob=True)
tpl("iam.amazonaws.com", "GetUser", True, b_iam_user, glob=True)
tpl("iam.amazonaws.com", "ListAccessKeys", True, b_iam_user, glob=True)
tpl("iam.amazonaws.com", "ListMFADevices", True, b_iam_user, glob=True)
tpl("iam.amazonaws.com", "ListGroupsForUser", True, b_iam_user, glob=True)
tpl("iam.amazonaws.com", "ListPolicies", True, b_iam_list_policies, glob=True)
tpl("iam.amazonaws.com", "GetPolicyVersion", True, b_iam_policy_version, glob=True)
tpl("iam.amazonaws.com", "GetAccountSummary", True, b_none, glob=True)
tpl("iam.amazonaws.com", "GetAccountPasswordPolicy", True, b_none, glob=True)
tpl("lambda.amazonaws.com", "ListFunctions20150331", True, b_lambda_list)
tpl("lambda.amazonaws.com", "GetFunction20150331v2", True, b_lambda_get)
tpl("lambda.amazonaws.com", "Invoke", False, b_lambda_invoke, cat="Data")
tpl("logs.amazonaws.com", "CreateLogStream", False, b_logs_create_stream)
tpl("logs.amazonaws.com", "DescribeLogGroups", True, b_logs_groups)
tpl("logs.amazonaws.com", "DescribeLogStreams", True, b_logs_streams)
tpl("logs.amazonaws.com", "FilterLogEvents", True, b_logs_filter)
tpl("ssm.amazonaws.com", "GetParameter", True, b_ssm_get)
tpl("ssm.amazonaws.com", "GetParameters", True, b_ssm_gets)
tpl("ssm.amazonaws.com", "GetParametersByPath", True, b_ssm_path)
tpl("ssm.amazonaws.com", "UpdateInstanceInformation", False, b_ssm_update)
tpl("ssm.amazonaws.com", "ListInstanceAssociations", True, b_ssm_assoc)
tpl("ssm.amazonaws.com", "DescribeInstanceInformation", True, b_ssm_describe)
tpl("secretsmanager.amazonaws.com", "GetSecretValue", True, b_secret_get)
tpl("secretsmanager.amazonaws.com", "DescribeSecret", True, b_secret_get)
tpl("monitoring.amazonaws.com", "GetMetricData", True, b_cw_metric_data)
tpl("monitoring.amazonaws.com", "DescribeAlarms", True, b_cw_alarms)
tpl("monitoring.amazonaws.com", "ListMetrics", True, b_cw_list_metrics)
tpl("dynamodb.amazonaws.com", "DescribeTable", True, b_ddb_table)
tpl("dynamodb.amazonaws.com", "ListTables", True, b_ddb_list)
tpl("dynamodb.amazonaws.com", "DescribeTimeToLive", True, b_ddb_table)
tpl("dynamodb.amazonaws.com", "DescribeContinuousBackups", True, b_ddb_table)
tpl("ecr.amazonaws.com", "GetAuthorizationToken", True, b_ecr_token)
tpl("ecr.amazonaws.com", "BatchGetImage", True, b_ecr_image)
tpl("ecr.amazonaws.com", "GetDownloadUrlForLayer", True, b_ecr_layer)
tpl("cloudtrail.amazonaws.com", "DescribeTrails", True, b_ct_describe)
tpl("cloudtrail.amazonaws.com", "GetTrailStatus", True, b_ct_status)
tpl("cloudtrail.amazonaws.com", "GetEventSelectors", True, b_ct_selectors)
tpl("cloudtrail.amazonaws.com", "LookupEvents", True, b_ct_lookup)
tpl("rds.amazonaws.com", "DescribeDBInstances", True, b_rds)
tpl("cloudformation.amazonaws.com", "DescribeStacks", True, b_cfn)
tpl("autoscaling.amazonaws.com", "DescribeAutoScalingGroups", True, b_asg)
tpl("elasticloadbalancing.amazonaws.com", "DescribeTargetHealth", True, b_elb_health)
tpl("elasticloadbalancing.amazonaws.com", "DescribeLoadBalancers", True, b_elb_lbs)
tpl("route53.amazonaws.com", "ListHostedZones", True, b_r53_zones, glob=True)
tpl("route53.amazonaws.com", "ListResourceRecordSets", True, b_r53_records, glob=True)
T["GetBucketAcl@cloudtrail"] = dict(T["GetBucketAcl"], b=b_ct_bucket_acl)
# rare change events
tpl("iam.amazonaws.com", "CreateAccessKey", False, b_create_access_key, glob=True)
tpl("iam.amazonaws.com", "DeleteAccessKey", False, b_delete_access_key, glob=True)
tpl("iam.amazonaws.com", "AttachRolePolicy", False, b_attach_role_policy, glob=True)
tpl("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress", False, b_sg_ingress_internal)
tpl("ec2.amazonaws.com", "CreateRoute", False, b_create_route)
tpl("ec2.amazonaws.com", "RunInstances", False, b_run_instances)
tpl("s3.amazonaws.com", "CreateBucket", False, b_create_bucket)
tpl("cloudtrail.amazonaws.com", "PutEventSelectors", False, b_put_event_selectors, glob=True)
tpl("lambda.amazonaws.com", "UpdateFunctionCode20150331v2", False, b_update_function_code)

# change events: template -> persona that performs it, relative weight
CHANGES = [("CreateAccessKey", "h1-admin", 3), ("DeleteAccessKey", "h1-admin", 2),
           ("AttachRolePolicy", "deploy", 2), ("AuthorizeSecurityGroupIngress", "deploy", 3),
           ("CreateRoute", "deploy", 2), ("RunInstances", "deploy", 3), ("CreateBucket", "deploy", 2),
           ("PutEventSelectors", "h1-admin", 1), ("UpdateFunctionCode20150331v2", "deploy", 4)]


# --------------------------------------------------------------------------
# personas: who acts, when, from where, doing what

def act_human(h, wd, console=False):
    if wd >= 5:
        return 0.0 if console else (0.04 if 10 <= h < 18 else 0.0)
    if 8 <= h < 18:
        return 1.0
    if h == 7 or 18 <= h < 20:
        return 0.0 if console else 0.2
    return 0.0


def act_ci(h, wd):
    if h == 2:
        return 0.8  # nightly pipeline
    if wd < 5 and 8 <= h < 19:
        return 1.0
    return 0.03


def act_service(h, wd):
    day = 1.0 if 7 <= h < 21 else 0.0
    return (0.55 + 0.6 * day) * (0.8 if wd >= 5 else 1.0)


def act_nightly(h, wd):
    return 1.0 if 1 <= h < 5 else 0.08


def personas_for(A):
    h1, h2 = A.human1, A.human2
    P = []

    def add(pid, kind, weight, act, events, **kw):
        d = {"pid": pid, "kind": kind, "weight": weight, "act": act, "events": events, "err": 0.02}
        d.update(kw)
        P.append(d)

    add("h1-console", "iamuser_console", 2.0, lambda h, w: act_human(h, w, True), {
        "DescribeInstances": 10, "DescribeSecurityGroups": 4, "DescribeVpcs": 2, "DescribeSubnets": 2,
        "DescribeVolumes": 2, "DescribeInstanceStatus": 3, "ListBuckets": 3, "GetBucketAcl": 1,
        "GetBucketLocation": 2, "GetBucketPolicy": 1, "ListFunctions20150331": 2, "GetFunction20150331v2": 2,
        "DescribeAlarms": 4, "GetMetricData": 6, "DescribeLogGroups": 2, "DescribeLogStreams": 2,
        "FilterLogEvents": 2, "LookupEvents": 2, "DescribeTrails": 1, "ListUsers": 1, "ListRoles": 1, "GetRole": 1,
        "GetAccountSummary": 1, "ListTables": 1, "DescribeTable": 2, "DescribeDBInstances": 2, "DescribeStacks": 2,
        "ListAliases": 1, "ListHostedZones": 1, "DescribeInstanceInformation": 1, "DescribeAutoScalingGroups": 1,
        "DescribeTargetHealth": 1}, user=h1, ua="console", ips="office")
    add("h1-cli", "iamuser", 1.5, act_human, {
        "GetCallerIdentity": 5, "AssumeRole": 3, "ListBuckets": 3, "GetObject": 4, "PutObject": 2,
        "DescribeInstances": 4, "DescribeRegions": 1, "FilterLogEvents": 3, "GetParameter": 2, "GetUser": 1,
        "ListAccessKeys": 1, "ListMFADevices": 1}, user=h1, ua="cli", ips="office+home",
        assume=("AdminRole", h1, h1), buckets=["prod-data", "web-assets"])
    add("h1-admin", "role", 1.5, act_human, {
        "ListUsers": 2, "ListRoles": 2, "GetRole": 3, "ListAttachedRolePolicies": 2, "GetPolicyVersion": 2,
        "ListGroupsForUser": 1, "ListAttachedUserPolicies": 1, "GetAccountPasswordPolicy": 1, "GetTrailStatus": 1,
        "GetEventSelectors": 1, "DescribeTrails": 1, "DescribeKey": 2, "ListAliases": 1,
        "DescribeSecurityGroups": 3, "DescribeInstances": 3, "DescribeRouteTables": 1, "GetBucketPolicy": 2,
        "GetBucketEncryption": 1, "GetCallerIdentity": 2, "DescribeSecret": 1}, role="AdminRole", session=h1,
        mfa=True, ua="cli", ips="office+home")
    add("h2-cli", "iamuser", 2.0, act_human, {
        "GetCallerIdentity": 3, "AssumeRole": 2, "ListBuckets": 2, "GetObject": 6, "PutObject": 3,
        "HeadObject": 2, "DescribeTable": 3, "ListTables": 2, "GetMetricData": 3, "ListMetrics": 2, "Invoke": 3,
        "ListFunctions20150331": 1, "FilterLogEvents": 3, "DescribeLogStreams": 2, "GetAuthorizationToken": 1,
        "GetParameter": 2}, user=h2, ua="boto", ips="office+home", assume=("ReadOnlyAuditor", h2, None),
        buckets=["prod-data", "thumbnails"])
    add("h2-audit", "role", 1.2, act_human, {
        "ListUsers": 2, "ListRoles": 2, "ListAttachedRolePolicies": 3, "ListAttachedUserPolicies": 2,
        "ListAccessKeys": 2, "ListMFADevices": 2, "GetAccountPasswordPolicy": 1, "GetAccountSummary": 1,
        "ListPolicies": 1, "GetPolicyVersion": 2, "GetBucketAcl": 3, "GetBucketPolicy": 2,
        "GetBucketEncryption": 2, "GetBucketVersioning": 2, "DescribeSecurityGroups": 3, "DescribeVpcs": 1,
        "DescribeNetworkInterfaces": 1, "ListAliases": 1, "DescribeKey": 1, "DescribeTrails": 1,
        "GetTrailStatus": 1, "GetEventSelectors": 1, "DescribeDBInstances": 1}, role="ReadOnlyAuditor",
        session=h2, ua="boto", ips="office+home", err=0.045)
    add("ci", "iamuser", 1.5, act_ci, {
        "GetCallerIdentity": 5, "AssumeRole": 4, "GetAuthorizationToken": 2, "PutObject": 3, "GetObject": 2,
        "DescribeTable": 1}, user=A.ci_user, ua="ci", ips="ci", assume=("deploy-role", "@run", None),
        buckets=["artifacts", "tfstate"], err=0.012)
    add("deploy", "role", 5.0, act_ci, {
        "DescribeInstances": 4, "DescribeSecurityGroups": 4, "DescribeVpcs": 3, "DescribeSubnets": 3,
        "DescribeRouteTables": 2, "DescribeNetworkInterfaces": 1, "DescribeVolumes": 1, "CreateTags": 0.2,
        "GetRole": 4, "ListAttachedRolePolicies": 3, "GetPolicyVersion": 2, "GetBucketAcl": 2, "GetBucketPolicy": 2,
        "GetBucketVersioning": 2, "GetBucketEncryption": 2, "GetBucketLocation": 1, "GetObject": 2, "PutObject": 1,
        "GetFunction20150331v2": 3, "ListFunctions20150331": 1, "DescribeTable": 2, "DescribeTimeToLive": 1,
        "DescribeContinuousBackups": 1, "DescribeLogGroups": 2, "DescribeKey": 2, "DescribeAlarms": 2,
        "DescribeDBInstances": 1, "DescribeStacks": 1, "DescribeTargetHealth": 1, "DescribeAutoScalingGroups": 1,
        "GetCallerIdentity": 2, "ListResourceRecordSets": 1}, role="deploy-role", session="@run", ua="ci",
        ips="ci", buckets=["tfstate", "artifacts"], err=0.012)
    add("lambda-orders", "role", 8.0, act_service, {
        "Decrypt": 6, "GenerateDataKey": 2, "GetParameter": 2, "GetParameters": 1, "GetSecretValue": 3,
        "GetObject": 4, "PutObject": 3, "CreateLogStream": 2, "Invoke": 2, "GetCallerIdentity": 0.3},
        role="orders-api-role", session="orders-api", ua="lambda", ips="svc", buckets=["prod-data"], err=0.014)
    add("lambda-thumb", "role", 4.0, act_service, {
        "GetObject": 8, "PutObject": 6, "HeadObject": 3, "Decrypt": 2, "GenerateDataKey": 2, "CreateLogStream": 1},
        role="thumbnailer-role", session="thumbnailer", ua="lambda", ips="svc", buckets=["thumbnails", "web-assets"],
        err=0.014)
    add("ec2-app", "role", 5.0, act_service, {
        "UpdateInstanceInformation": 6, "ListInstanceAssociations": 4, "GetParametersByPath": 1, "Decrypt": 2,
        "GetObject": 3, "DescribeLogStreams": 1, "CreateLogStream": 1, "GetAuthorizationToken": 1,
        "BatchGetImage": 1, "GetDownloadUrlForLayer": 2, "GetSecretValue": 1, "DescribeTags": 1},
        role="app-ec2-role", session="@instance", ua="ssm", ips="instance", buckets=["prod-data", "backups"],
        err=0.014)
    add("svc-reporting", "iamuser", 0.8, act_nightly, {
        "GetObject": 4, "ListBuckets": 1, "GetMetricData": 3, "DescribeTable": 1}, user="svc-reporting",
        ua="boto", ips="instance", buckets=["prod-data", "backups"], err=0.01)
    add("monitoring", "role", 4.0, act_service, {
        "GetMetricData": 8, "ListMetrics": 3, "DescribeAlarms": 2, "DescribeInstances": 3, "DescribeVolumes": 1,
        "DescribeDBInstances": 2, "DescribeLoadBalancers": 1, "DescribeTargetHealth": 1,
        "ListFunctions20150331": 2, "ListTables": 1, "DescribeTable": 1, "DescribeAutoScalingGroups": 1},
        role="monitoring-readonly", session="collector", ua="go", ips="mon", err=0.014)
    add("config", "role", 2.0, act_service, {
        "DescribeInstances": 2, "DescribeSecurityGroups": 2, "DescribeVpcs": 1, "DescribeSubnets": 1,
        "DescribeNetworkInterfaces": 1, "DescribeVolumes": 1, "DescribeRouteTables": 1, "GetRole": 1,
        "ListAttachedRolePolicies": 1, "GetUser": 1, "GetBucketAcl": 2, "GetBucketPolicy": 1,
        "GetBucketVersioning": 1, "GetBucketEncryption": 1, "GetFunction20150331v2": 1, "DescribeKey": 1,
        "DescribeDBInstances": 1, "DescribeTable": 1, "DescribeTrails": 1}, role="AWSServiceRoleForConfig",
        session="AWSConfig-Describe", invoked="config.amazonaws.com", ua="service", ips="service", err=0.0)
    add("aws-lambda", "awsservice", 2.5, act_service, {"AssumeRole": 1}, invoked="lambda.amazonaws.com",
        ua="service", ips="service", err=0.0,
        assume=[("orders-api-role", "orders-api", None), ("thumbnailer-role", "thumbnailer", None)])
    add("aws-ec2", "awsservice", 1.0, act_service, {"AssumeRole": 1}, invoked="ec2.amazonaws.com",
        ua="service", ips="service", err=0.0, assume=("app-ec2-role", "@instance", None))
    add("aws-cloudtrail", "awsservice", 0.4, act_service, {"GetBucketAcl@cloudtrail": 1},
        invoked="cloudtrail.amazonaws.com", ua="service", ips="service", err=0.0)
    return P


TABLE = 1024


def build_tables(A):
    """Per (persona, region): a TABLE-long lookup list of templates, for O(1) weighted picks."""
    A.personas = personas_for(A)
    A.pby = {p["pid"]: p for p in A.personas}
    for p in A.personas:
        p["tables"] = {}
        for ri, reg in enumerate(A.regions):
            items = [(T[n], w) for n, w in sorted(p["events"].items())
                     if not (T[n]["glob"] and reg != "us-east-1")]
            if not items:
                continue
            tot = sum(w for _, w in items)
            tab, acc = [], 0.0
            for tp, w in items:
                acc += w
                while len(tab) < round(acc / tot * TABLE):
                    tab.append(tp)
            p["tables"][reg] = tab
    # persona weights per region and hour-of-week
    A.hw = {}
    for reg in A.regions:
        A.hw[reg] = []
        for how in range(168):
            wd, h = how // 24, how % 24
            ws = [(p, p["weight"] * p["act"](h, wd)) for p in A.personas if reg in p["tables"]]
            A.hw[reg].append([(p, w) for p, w in ws if w > 0])


# --------------------------------------------------------------------------
# sessions: one per persona and hour, so keys/IPs/UAs stay coherent

class Session:
    __slots__ = ("p", "ident", "ip", "ips", "ua", "uacache", "console", "instance", "tls_ver", "tls_cs")


def make_session(A, p, region, t, seed):
    hour = t // 3600
    key = "%s|%s|%s|%d" % (seed, A.id, p["pid"], hour)
    if p["ips"] in ("svc", "instance", "mon") or p.get("session") == "@instance":
        key += "|" + region
    r = random.Random(key)
    S = Session()
    S.p = p
    S.console = p["kind"] == "iamuser_console"
    S.instance = None
    kind = p["kind"]
    cd = iso(hour * 3600 - r.randint(60, 2400))
    if kind in ("iamuser", "iamuser_console"):
        u = A.users[p["user"]]
        S.ident = {"type": "IAMUser", "principalId": u["id"], "arn": u["arn"], "accountId": A.id}
        if kind == "iamuser":
            S.ident["accessKeyId"] = u["key"]
            S.ident["userName"] = p["user"]
        else:
            S.ident["accessKeyId"] = "ASIA" + pick_chars(r, UPALNUM, 16)
            S.ident["userName"] = p["user"]
            d0 = t // 86400 * 86400
            lt = [x for u, x in login_times(seed, A, d0) if u == p["user"]]
            if lt and lt[0] <= t:
                cd = iso(lt[0])
            S.ident["sessionContext"] = {"sessionIssuer": {}, "webIdFederationData": {},
                                         "attributes": {"creationDate": cd, "mfaAuthenticated": "true"}}
    elif kind == "role":
        ro = A.roles[p["role"]]
        sn = p["session"]
        if sn == "@run":
            sn = "terraform-%d" % (hour * 3600 - r.randint(30, 900))
        elif sn == "@instance":
            sn = S.instance = r.choice(A.instances[region])
        S.ident = {"type": "AssumedRole", "principalId": "%s:%s" % (ro["id"], sn),
                   "arn": "arn:aws:sts::%s:assumed-role/%s/%s" % (A.id, p["role"], sn), "accountId": A.id,
                   "accessKeyId": "ASIA" + pick_chars(r, UPALNUM, 16),
                   "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": ro["id"], "arn": ro["arn"],
                                                        "accountId": A.id, "userName": p["role"]},
                                      "webIdFederationData": {},
                                      "attributes": {"creationDate": cd,
                                                     "mfaAuthenticated": "true" if p.get("mfa") else "false"}}}
        if p["session"] == "@instance":
            S.ident["sessionContext"]["ec2RoleDelivery"] = "2.0"
        if p.get("invoked"):
            S.ident["invokedBy"] = p["invoked"]
    else:
        S.ident = {"type": "AWSService", "invokedBy": p["invoked"]}
    ips = p["ips"]
    if ips == "office":
        S.ips = [r.choice(A.office)]
    elif ips == "office+home":
        h = (t // 3600) % 24
        S.ips = [A.home[p.get("user") or p.get("session")]] if (h < 8 or h >= 18 or r.random() < 0.15) else \
            [r.choice(A.office)]
    elif ips == "ci":
        S.ips = ["52.94.%d.%d" % (r.randint(128, 255), r.randint(1, 254))]
    elif ips == "svc":
        S.ips = ["3.%d.%d.%d" % (r.randint(80, 95), r.randint(0, 255), r.randint(1, 254)) for _ in range(3)]
    elif ips == "instance":
        S.ips = [r.choice(A.instance_ip[region])]
    elif ips == "mon":
        S.ips = A.mon_ip
    else:
        S.ips = [p["invoked"]]
    S.ip = S.ips[0]
    ua = p["ua"]
    if ua == "cli":
        S.ua = cli_ua(r)
    elif ua == "boto":
        S.ua = boto_ua(r)
    elif ua == "ci":
        S.ua = terraform_ua(r) if r.random() < 0.7 else boto_ua(r, " exe/ci#github-actions")
    elif ua == "lambda":
        S.ua = boto_ua(r, " exec-env/AWS_Lambda_python3.12")
    elif ua == "ssm":
        S.ua = SSM_AGENT_UA % (r.randint(200, 340), r.randint(5, 13), r.randint(900, 1200))
    elif ua == "go":
        S.ua = GO_UA % (r.randint(1, 30), r.randint(5, 13))
    elif ua == "console":
        S.ua = r.choice(BROWSERS)
    else:
        S.ua = p["invoked"]
    S.uacache = {}
    S.tls_ver = "TLSv1.3" if r.random() < 0.8 else "TLSv1.2"
    S.tls_cs = "TLS_AES_128_GCM_SHA256" if S.tls_ver == "TLSv1.3" else "ECDHE-RSA-AES128-GCM-SHA256"
    return S


CONSOLE_UA = {"ec2.amazonaws.com": "console.ec2.amazonaws.com", "s3.amazonaws.com": S3_CONSOLE_UA}


def session_ua(S, tp):
    c = S.uacache.get(tp["name"])
    if c is None:
        ua = S.ua
        if S.console:
            ua = CONSOLE_UA.get(tp["src"], "AWS Internal")
        elif "{" in ua:
            ua = ua.replace("{cmd}", tp["cmd"]).replace("{api}", tp["api"])
        c = S.uacache[tp["name"]] = ua
    return c


def tls_for(S, src, region, cache):
    if S.p["kind"] == "awsservice" or S.p.get("invoked"):
        return None
    svc = src.split(".")[0]
    if svc in ("iam", "route53"):
        host = svc + ".amazonaws.com"
    elif svc == "s3":
        host = "s3.amazonaws.com" if region == "us-east-1" else "s3.%s.amazonaws.com" % region
    elif svc == "signin":
        host = "signin.aws.amazon.com"
    else:
        host = "%s.%s.amazonaws.com" % (svc, region)
    k = (S.tls_ver, host)
    d = cache.get(k)
    if d is None:
        d = cache[k] = {"tlsVersion": S.tls_ver, "cipherSuite": S.tls_cs, "clientProvidedHostHeader": host}
    return d


def deny_message(S, tp, A, region):
    ident = S.ident
    arn = ident.get("arn", "")
    act = tp["deny"]
    svc = tp["src"].split(".")[0]
    if svc == "s3":
        return "AccessDenied", "Access Denied"
    if svc == "ec2":
        return ("Client.UnauthorizedOperation",
                "You are not authorized to perform this operation. User: %s is not authorized to perform: %s "
                "because no identity-based policy allows the %s action" % (arn, act, act))
    code = "AccessDenied" if svc in ("iam", "sts", "cloudtrail", "route53", "cloudformation", "autoscaling",
                                     "elasticloadbalancing", "rds", "monitoring") else "AccessDeniedException"
    return (code, "User: %s is not authorized to perform: %s because no identity-based policy allows the %s "
                  "action" % (arn, act, act))


OTHER_ERRORS = {
    "ssm": ("ParameterNotFound", None), "secretsmanager": ("ResourceNotFoundException",
                                                           "Secrets Manager can't find the specified secret."),
    "dynamodb": ("ResourceNotFoundException", "Requested resource not found"),
    "monitoring": ("Throttling", "Rate exceeded"), "ec2": ("Client.RequestLimitExceeded", "Request limit exceeded."),
    "logs": ("ResourceAlreadyExistsException", "The specified log stream already exists"),
    "iam": ("NoSuchEntity", None), "kms": ("ThrottlingException", "Rate exceeded"),
}


def build_record(r, A, region, S, tp, t, tls_cache, ts=None, errors=True):
    src = tp["src"]
    if tp["s3"]:
        rid = s3_rid(r)
    else:
        rid = uid(r)
    req, resp, add, res = tp["b"](r, A, region, S, t, rid)
    rec = {"eventVersion": tp["ver"], "userIdentity": S.ident, "eventTime": ts or iso(t), "eventSource": src,
           "eventName": tp["name"], "awsRegion": region, "sourceIPAddress": S.ip if len(S.ips) == 1 else
           r.choice(S.ips), "userAgent": session_ua(S, tp)}
    err = S.p["err"] if errors else 0
    if err and r.random() < err:
        if r.random() < 0.78:
            rec["errorCode"], rec["errorMessage"] = deny_message(S, tp, A, region)
            resp = None
        else:
            oe = OTHER_ERRORS.get(src.split(".")[0])
            if oe:
                rec["errorCode"] = oe[0]
                if oe[1]:
                    rec["errorMessage"] = oe[1]
                elif oe[0] == "NoSuchEntity" and req:
                    rec["errorMessage"] = "The %s with name %s cannot be found." % (
                        "role" if "roleName" in req else "user", req.get("roleName") or req.get("userName"))
                else:
                    rec["errorMessage"] = ""
                resp = None
    rec["requestParameters"] = req
    rec["responseElements"] = resp
    if add is not None:
        rec["additionalEventData"] = add
    rec["requestID"] = rid
    rec["eventID"] = uid(r)
    rec["readOnly"] = tp["ro"]
    if res is not None:
        rec["resources"] = res
    rec["eventType"] = "AwsApiCall"
    rec["managementEvent"] = tp["mgmt"]
    rec["recipientAccountId"] = A.id
    rec["eventCategory"] = tp["cat"]
    tls = tls_for(S, src, region, tls_cache)
    if tls is not None:
        rec["tlsDetails"] = tls
    if S.console:
        rec["sessionCredentialFromConsole"] = "true"
    return rec


def console_login(r, A, user, t, ip, ua, mfa_used, eid=None):
    u = A.users[user]
    add = {"LoginTo": "https://console.aws.amazon.com/console/home?hashArgs=%23&isauthcode=true&state=hashArgsFromTB_"
                      "us-east-1_" + hexs(r, 16),
           "MobileVersion": "No"}
    if mfa_used:
        add["MFAIdentifier"] = A.mfa[user]
    add["MFAUsed"] = "Yes" if mfa_used else "No"
    return {"eventVersion": "1.09",
            "userIdentity": {"type": "IAMUser", "principalId": u["id"], "arn": u["arn"], "accountId": A.id,
                             "userName": user},
            "eventTime": iso(t), "eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin",
            "awsRegion": "us-east-1", "sourceIPAddress": ip, "userAgent": ua, "requestParameters": None,
            "responseElements": {"ConsoleLogin": "Success"}, "additionalEventData": add,
            "eventID": eid or uid(r), "readOnly": False, "eventType": "AwsConsoleSignIn", "managementEvent": True,
            "recipientAccountId": A.id, "eventCategory": "Management",
            "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                           "clientProvidedHostHeader": "signin.aws.amazon.com"}}


# --------------------------------------------------------------------------
# the story: a leaked CI access key (account 111122223333, day 5 of the window)

ATTACKER_IP = "203.0.113.66"
ATTACKER_UA = ("aws-cli/2.15.0 Python/3.11.6 Linux/6.5.0-kali3-amd64 exe/x86_64.kali.2024 prompt/off "
               "command/{cmd}")
ATTACKER_BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Firefox/115.0"
BACKUP_KEY = "AKIA2BACKUPSVCEXAMPL"
STORY_SG = "sg-0a1b2c3d4e5f60718"
STOP_AT = (22, 3, 15)      # StopLogging, HH:MM:SS on story day
RESTART_AT = (23, 18, 40)  # StartLogging by the on-call admin


def story_day(start):
    return (start // 86400 + 4) * 86400


def story_events(A, regions, start):
    """The story's records, with fixed times and ids (independent of --seed).
    Returns [(region, record)]."""
    r = random.Random("trailhound-story-v1")
    day = story_day(start)
    at = lambda h, m, s: day + h * 3600 + m * 60 + s
    ci = A.users["ci-deploy"]
    ci_ident = {"type": "IAMUser", "principalId": ci["id"], "arn": ci["arn"], "accountId": A.id,
                "accessKeyId": ci["key"], "userName": "ci-deploy"}
    bk_id = "AIDA" + pick_chars(r, UPALNUM, 17)
    bk_arn = "arn:aws:iam::%s:user/backup-svc" % A.id
    bk_ident = {"type": "IAMUser", "principalId": bk_id, "arn": bk_arn, "accountId": A.id,
                "accessKeyId": BACKUP_KEY, "userName": "backup-svc"}
    bk_console = {"type": "IAMUser", "principalId": bk_id, "arn": bk_arn, "accountId": A.id,
                  "accessKeyId": "ASIA" + pick_chars(r, UPALNUM, 16), "userName": "backup-svc",
                  "sessionContext": {"sessionIssuer": {}, "webIdFederationData": {},
                                     "attributes": {"creationDate": iso(at(21, 58, 47)),
                                                    "mfaAuthenticated": "false"}}}
    second = regions[1] if len(regions) > 1 else regions[0]
    out = []

    def call(region, t, src, name, ident, req=None, resp=None, ro=True, err=None, res=None, add=None,
             ua=ATTACKER_UA, cat="Management", console=False, s3=False):
        tp = T.get(name) or {"cmd": cli_cmd(src, name)}
        svc = src.split(".")[0]
        rid = s3_rid(r) if s3 else uid(r)
        if isinstance(resp, dict) and resp.get("requestId") == "@":
            resp["requestId"] = rid
        rec = {"eventVersion": "1.09" if svc in ("ec2", "s3", "iam", "sts", "kms", "signin") else "1.08",
               "userIdentity": ident, "eventTime": iso(t), "eventSource": src, "eventName": name,
               "awsRegion": region, "sourceIPAddress": ATTACKER_IP,
               "userAgent": ua.replace("{cmd}", tp["cmd"])}
        if err:
            rec["errorCode"], rec["errorMessage"] = err
        rec["requestParameters"] = req
        rec["responseElements"] = resp
        if add is not None:
            rec["additionalEventData"] = add
        rec["requestID"] = rid
        rec["eventID"] = uid(r)
        rec["readOnly"] = ro
        if res is not None:
            rec["resources"] = res
        rec["eventType"] = "AwsApiCall"
        rec["managementEvent"] = cat == "Management"
        rec["recipientAccountId"] = A.id
        rec["eventCategory"] = cat
        host = {"iam": "iam.amazonaws.com", "s3": "s3.amazonaws.com"}.get(svc, "%s.%s.amazonaws.com" % (svc, region))
        if svc == "sts":
            host = "sts.amazonaws.com"
        rec["tlsDetails"] = {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                             "clientProvidedHostHeader": host}
        if console:
            rec["sessionCredentialFromConsole"] = "true"
        out.append((region, rec))

    def denied(action):
        return ("AccessDenied", "User: %s is not authorized to perform: %s because no identity-based policy "
                                "allows the %s action" % (ci["arn"], action, action))

    # 1. recon with the leaked CI key
    call("us-east-1", at(21, 47, 5), "sts.amazonaws.com", "GetCallerIdentity", ci_ident)
    call("us-east-1", at(21, 47, 31), "iam.amazonaws.com", "ListUsers", ci_ident, {"maxItems": 100})
    call("us-east-1", at(21, 47, 52), "iam.amazonaws.com", "ListRoles", ci_ident, {"maxItems": 100})
    call("us-east-1", at(21, 48, 16), "iam.amazonaws.com", "ListAttachedUserPolicies", ci_ident,
         {"userName": "ci-deploy"})
    call("us-east-1", at(21, 48, 40), "organizations.amazonaws.com", "DescribeOrganization", ci_ident,
         err=("AccessDeniedException", "You don't have permissions to access this resource."))
    call("us-east-1", at(21, 49, 3), "s3.amazonaws.com", "ListBuckets", ci_ident, {"Host": "s3.amazonaws.com"},
         add=_s3_add(r, 2380), s3=True)
    call("us-east-1", at(21, 49, 27), "ec2.amazonaws.com", "DescribeInstances", ci_ident,
         {"instancesSet": {}, "filterSet": {}})
    call(second, at(21, 49, 41), "ec2.amazonaws.com", "DescribeInstances", ci_ident,
         {"instancesSet": {}, "filterSet": {}})
    call("us-east-1", at(21, 50, 8), "secretsmanager.amazonaws.com", "ListSecrets", ci_ident,
         {"maxResults": 100}, err=("AccessDeniedException", denied("secretsmanager:ListSecrets")[1]))
    call("us-east-1", at(21, 50, 35), "iam.amazonaws.com", "GetAccountAuthorizationDetails", ci_ident,
         {"maxItems": 1000}, err=denied("iam:GetAccountAuthorizationDetails"))
    # 2. persistence: a new admin user with a key and a console password
    call("us-east-1", at(21, 53, 12), "iam.amazonaws.com", "CreateUser", ci_ident, {"userName": "backup-svc"},
         {"user": {"path": "/", "userName": "backup-svc", "userId": bk_id, "arn": bk_arn,
                   "createDate": aws_date(at(21, 53, 12))}}, ro=False)
    call("us-east-1", at(21, 53, 40), "iam.amazonaws.com", "CreateAccessKey", ci_ident, {"userName": "backup-svc"},
         {"accessKey": {"accessKeyId": BACKUP_KEY, "status": "Active", "userName": "backup-svc",
                        "createDate": aws_date(at(21, 53, 40))}}, ro=False)
    call("us-east-1", at(21, 54, 5), "iam.amazonaws.com", "AddUserToGroup", ci_ident,
         {"groupName": "Admins", "userName": "backup-svc"}, ro=False)
    call("us-east-1", at(21, 54, 31), "iam.amazonaws.com", "CreateLoginProfile", ci_ident,
         {"userName": "backup-svc", "passwordResetRequired": False},
         {"loginProfile": {"userName": "backup-svc", "createDate": aws_date(at(21, 54, 31)),
                           "passwordResetRequired": False}}, ro=False)
    # 3. open SSH to the world on the bastion security group
    call("us-east-1", at(21, 56, 2), "ec2.amazonaws.com", "AuthorizeSecurityGroupIngress", ci_ident,
         {"groupId": STORY_SG,
          "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "groups": {},
                                       "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}, "ipv6Ranges": {},
                                       "prefixListIds": {}}]}},
         {"requestId": "@", "_return": True,
          "securityGroupRuleSet": {"items": [{"groupOwnerId": A.id, "groupId": STORY_SG,
                                              "securityGroupRuleId": "sgr-0" + hexs(r, 16), "isEgress": False,
                                              "ipProtocol": "tcp", "fromPort": 22, "toPort": 22,
                                              "cidrIpv4": "0.0.0.0/0"}]}}, ro=False)
    # 4. console login as the new user, without MFA
    add = {"LoginTo": "https://console.aws.amazon.com/console/home?hashArgs=%23&isauthcode=true&state="
                      "hashArgsFromTB_us-east-1_" + hexs(r, 16), "MobileVersion": "No", "MFAUsed": "No"}
    login = {"eventVersion": "1.09",
             "userIdentity": {"type": "IAMUser", "principalId": bk_id, "arn": bk_arn, "accountId": A.id,
                              "userName": "backup-svc"},
             "eventTime": iso(at(21, 58, 47)), "eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin",
             "awsRegion": "us-east-1", "sourceIPAddress": ATTACKER_IP, "userAgent": ATTACKER_BROWSER,
             "requestParameters": None, "responseElements": {"ConsoleLogin": "Success"},
             "additionalEventData": add, "eventID": uid(r), "readOnly": False, "eventType": "AwsConsoleSignIn",
             "managementEvent": True, "recipientAccountId": A.id, "eventCategory": "Management",
             "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                            "clientProvidedHostHeader": "signin.aws.amazon.com"}}
    out.append(("us-east-1", login))
    call("us-east-1", at(21, 59, 52), "ec2.amazonaws.com", "DescribeSecurityGroups", bk_console,
         {"securityGroupSet": {}, "securityGroupIdSet": {"items": [{"groupId": STORY_SG}]}, "filterSet": {}},
         ua="console.ec2.amazonaws.com", console=True)
    # 5. with the new key: read backups, then stop the trail
    for t, key in ((at(22, 1, 14), "db/orders/2026-11-19/full-dump.sql.gz"),
                   (at(22, 1, 39), "db/users/2026-11-19/full-dump.sql.gz")):
        bkt = A.prefix + "-prod-backups"
        call("us-east-1", t, "s3.amazonaws.com", "GetObject", bk_ident,
             {"bucketName": bkt, "Host": _host(bkt, "us-east-1"), "key": key}, add=_s3_add(r, 48213770 + t % 977),
             res=[{"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::%s/%s" % (bkt, key)},
                  {"accountId": A.id, "type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::" + bkt}],
             cat="Data", s3=True)
    call("us-east-1", at(*STOP_AT), "cloudtrail.amazonaws.com", "StopLogging", bk_ident,
         {"name": "arn:aws:cloudtrail:us-east-1:%s:trail/%s" % (A.id, TRAIL_NAME)}, None, ro=False)
    # 6. recovery: the on-call admin (MFA) turns logging back on
    ar = A.roles["AdminRole"]
    admin = {"type": "AssumedRole", "principalId": "%s:%s" % (ar["id"], A.human1),
             "arn": "arn:aws:sts::%s:assumed-role/AdminRole/%s" % (A.id, A.human1), "accountId": A.id,
             "accessKeyId": "ASIA" + pick_chars(r, UPALNUM, 16),
             "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": ar["id"], "arn": ar["arn"],
                                                  "accountId": A.id, "userName": "AdminRole"},
                                "webIdFederationData": {},
                                "attributes": {"creationDate": iso(at(23, 16, 2)), "mfaAuthenticated": "true"}}}
    call("us-east-1", at(*RESTART_AT), "cloudtrail.amazonaws.com", "StartLogging", admin,
         {"name": "arn:aws:cloudtrail:us-east-1:%s:trail/%s" % (A.id, TRAIL_NAME)}, None, ro=False,
         ua="aws-cli/2.17.4 Python/3.11.8 Darwin/23.5.0 exe/x86_64 prompt/off command/{cmd}")
    out[-1][1]["sourceIPAddress"] = A.home[A.human1]
    return out


# --------------------------------------------------------------------------
# planning

def login_times(seed, A, d0):
    """Console logins (with MFA) on the weekday starting at d0: the first human
    every weekday shortly before 08:00 UTC, the second on Tuesdays and Thursdays."""
    wd = (d0 // 86400 + 3) % 7
    lr = random.Random("login|%d|%s|%d" % (seed, A.id, d0))
    out = []
    if wd < 5:
        out.append((A.human1, d0 + 7 * 3600 + lr.randint(1800, 3540)))
        t2 = d0 + 8 * 3600 + lr.randint(0, 3000)
        if wd in (1, 3):
            out.append((A.human2, t2))
    return out


def hour_of_week(t):
    # 1970-01-01 was a Thursday (weekday 3)
    return ((t // 86400 + 3) % 7) * 24 + (t // 3600) % 24


class Plan:
    pass


def alloc(total, weights):
    """Split total into integers proportional to weights (largest remainder, deterministic)."""
    s = sum(weights)
    if s <= 0 or total <= 0:
        return [0] * len(weights)
    raw = [total * w / s for w in weights]
    out = [int(x) for x in raw]
    rest = total - sum(out)
    order = sorted(range(len(weights)), key=lambda i: (-(raw[i] - out[i]), i))
    for i in order[:rest]:
        out[i] += 1
    return out


def make_plan(args, world):
    rnd = random.Random("trailhound-plan|%d" % args.seed)
    start = args.start_t
    nslots = args.days * 86400 // SLOT
    accounts, regions = world["accounts"], world["regions"]
    prefix = "AWSLogs/" + (args.org + "/" if args.org else "")

    story = []
    gap = None
    if args.story:
        story = story_events(accounts[0], regions, start)
        d = story_day(start)
        gap = (d + STOP_AT[0] * 3600 + STOP_AT[1] * 60 + STOP_AT[2] + 1,
               d + RESTART_AT[0] * 3600 + RESTART_AT[1] * 60 + RESTART_AT[2])

    # scheduled console logins (with MFA) and rare change events
    logins = []
    if "us-east-1" in regions:
        for A in accounts:
            for day in range(args.days + 1):
                d0 = (start // 86400 + day) * 86400
                for user, t in login_times(args.seed, A, d0):
                    if start <= t < start + args.days * 86400 and not (
                            gap and A.idx == 0 and gap[0] <= t < gap[1]):
                        logins.append((A, user, t))
    n_change = max(min(6, args.events // 400), round(args.events * 0.001))
    fixed = len(story) + len(logins) + n_change
    n_normal = args.events - fixed
    if n_normal < 0:
        raise SystemExit("gen-corpus: --events %d is too small (need at least %d)" % (args.events, fixed + 1))

    # slot weights per stream
    streams = [(A, reg) for A in accounts for reg in regions]
    slots = []  # (weight, stream index, slot index, lo, hi)
    for si, (A, reg) in enumerate(streams):
        sw = (1.0 if A.idx == 0 else 0.6) * (1.0 if reg == regions[0] else 0.55)
        for k in range(nslots):
            t0 = start + k * SLOT
            lo, hi = 0, SLOT
            if gap and A.idx == 0:
                a, b = max(t0, gap[0]), min(t0 + SLOT, gap[1])
                if a < b:  # the slot overlaps the logging gap
                    if a == t0 and b == t0 + SLOT:
                        continue
                    if a == t0:
                        lo = b - t0
                    else:
                        hi = a - t0
            hw = A.hw[reg][hour_of_week(t0)]
            w = sw * sum(x[1] for x in hw) * (hi - lo) / SLOT
            w *= rnd.lognormvariate(0, 0.35)
            if w > 0:
                slots.append((w, si, k, lo, hi))

    # sparse corpora: pick a subset of active slots so files hold ~TARGET_PER_FILE events
    m = len(slots)
    if n_normal < m * TARGET_PER_FILE:
        m = max(1, n_normal // TARGET_PER_FILE)
        keyed = sorted(((rnd.random() ** (1.0 / s[0]), i) for i, s in enumerate(slots)), reverse=True)
        keep = sorted(i for _, i in keyed[:m])
        slots = [slots[i] for i in keep]
        base = 1 if n_normal >= m else 0
        counts = [base + c for c in alloc(n_normal - base * m, [s[0] for s in slots])]
    else:
        counts = alloc(n_normal, [s[0] for s in slots])

    # slot table: (si, k) -> [normal count, lo, hi, extras]
    table = {}
    for (w, si, k, lo, hi), c in zip(slots, counts):
        table[(si, k)] = [c, lo, hi, []]
    sidx = {(A.id, reg): si for si, (A, reg) in enumerate(streams)}

    def put(A, reg, t, rec):
        si = sidx[(A.id, reg)]
        k = (t - start) // SLOT
        if not (0 <= k < nslots):
            raise SystemExit("gen-corpus: event outside the window (%s); use more --days" % iso(t))
        e = table.setdefault((si, k), [0, 0, SLOT, []])
        e[3].append(rec)

    for reg, rec in story:
        put(accounts[0], reg, calendar.timegm(time.strptime(rec["eventTime"], "%Y-%m-%dT%H:%M:%SZ")), rec)

    for A, user, t in logins:
        lr = random.Random("login-rec|%d|%s|%d" % (args.seed, A.id, t))
        ua = BROWSERS[0] if user == A.human1 else BROWSERS[1]
        put(A, "us-east-1", t, console_login(lr, A, user, t, A.office[0], ua, True))

    # change events: placed in busy, working-hours slots of a fitting region
    cw = [w for _, _, w in CHANGES]
    cands = {}
    for (si, k), e in sorted(table.items()):
        A, reg = streams[si]
        t0 = start + k * SLOT
        how = hour_of_week(t0)
        if how // 24 < 5 and 9 <= how % 24 < 18 and e[0] > 0:
            cands.setdefault(reg, []).append((si, k))
    all_cands = sorted({x for v in cands.values() for x in v})
    for i in range(n_change):
        name, pid, _ = rnd.choices(CHANGES, weights=cw)[0]
        tp = T[name]
        regs = ["us-east-1"] if tp["glob"] else regions
        pool = [x for reg in regs for x in cands.get(reg, [])] or all_cands
        if not pool:
            pool = sorted(table)
        si, k = pool[rnd.randrange(len(pool))]
        A, reg = streams[si]
        if tp["glob"] and reg != "us-east-1":
            reg = "us-east-1" if "us-east-1" in regions else reg
            si = sidx[(A.id, reg)]
        e = table.setdefault((si, k), [0, 0, SLOT, []])
        t = start + k * SLOT + e[1] + rnd.randrange(max(1, e[2] - e[1]))
        cr = random.Random("change|%d|%d" % (args.seed, i))
        S = make_session(A, A.pby[pid], reg, t, args.seed)
        e[3].append(build_record(cr, A, reg, S, tp, t, {}, errors=False))

    # tasks, one per delivered file
    tasks = []
    for (si, k) in sorted(table):
        c, lo, hi, extras = table[(si, k)]
        if c == 0 and not extras:
            continue
        A, reg = streams[si]
        t0 = start + k * SLOT
        nfiles = max(1, -(-(c + len(extras)) // MAX_PER_FILE))
        per = alloc(c, [1] * nfiles)
        for j in range(nfiles):
            delay = rnd.randint(60, 540) + j * 20
            ft = (t0 + SLOT + delay) // 60 * 60
            g = time.gmtime(ft)
            stamp = "%04d%02d%02dT%02d%02dZ" % g[:5]
            name = "%s_CloudTrail_%s_%s_%s.json.gz" % (A.id, reg, stamp, pick_chars(rnd, ALNUM, 16))
            rel = "%s%s/CloudTrail/%s/%04d/%02d/%02d/%s" % (prefix, A.id, reg, g[0], g[1], g[2], name)
            tasks.append({"rel": rel, "acct": A.idx, "region": reg, "t0": t0, "lo": lo, "hi": hi, "n": per[j],
                          "seed": "%d|%s|%s|%d|%d" % (args.seed, A.id, reg, k, j),
                          "extras": extras if j == 0 else [], "ft": ft})
    P = Plan()
    P.tasks, P.story, P.n_normal, P.n_change, P.logins = tasks, story, n_normal, n_change, logins
    P.prefix, P.gap = prefix, gap
    return P


# --------------------------------------------------------------------------
# per-file generation (runs in worker processes)

WORLD = {}


def gen_file(task):
    A = WORLD["accounts"][task["acct"]]
    region = task["region"]
    out_dir = WORLD["out"]
    seed = WORLD["seed"]
    r = random.Random(task["seed"])
    t0, lo, hi, n = task["t0"], task["lo"], task["hi"], task["n"]
    recs = []
    if n:
        hw = A.hw[region][hour_of_week(t0)]
        k = min(len(hw), 1 + (n >= 6) + (n >= 30) + (n >= 90) + (n >= 200))
        pool = list(hw)
        chosen = []
        for _ in range(k):
            tot = sum(w for _, w in pool)
            x = r.random() * tot
            for i, (p, w) in enumerate(pool):
                x -= w
                if x <= 0:
                    break
            chosen.append((p, w * (0.5 + r.random())))
            pool.pop(i)
        sessions = [make_session(A, p, region, t0, seed) for p, _ in chosen]
        # 256-entry pick table over the sessions
        wsum = sum(w for _, w in chosen)
        pick, acc = [], 0.0
        for i, (_, w) in enumerate(chosen):
            acc += w
            while len(pick) < round(acc / wsum * 256):
                pick.append(i)
        span = hi - lo
        times = sorted(t0 + lo + int(r.random() * span) for _ in range(n))
        tls_cache = {}
        rnd = r.random
        last_t, last_s = None, None
        for t in times:
            S = sessions[pick[int(rnd() * 256)]]
            tp = S.p["tables"][region][int(rnd() * TABLE)]
            if t != last_t:
                last_t, last_s = t, iso(t)
            recs.append(build_record(r, A, region, S, tp, t, tls_cache, last_s))
    extras = task["extras"]
    if extras:
        recs.extend(extras)
        recs.sort(key=lambda x: x["eventTime"])
    # sorted-ish, not perfectly: a few neighbours swap places
    for i in range(len(recs) - 1):
        if r.random() < 0.05:
            recs[i], recs[i + 1] = recs[i + 1], recs[i]
    data = json.dumps({"Records": recs}, separators=(",", ":")).encode()
    gz = gzip.compress(data, compresslevel=6, mtime=0)
    path = os.path.join(out_dir, task["rel"])
    with open(path, "wb") as f:
        f.write(gz)
    times = [x["eventTime"] for x in recs]
    sha = hashlib.sha256(data).hexdigest() if task.get("hash") else None
    return (len(recs), len(gz), len(data), min(times), max(times), sha)


# --------------------------------------------------------------------------
# digests

def write_digests(args, world, plan, results, out):
    """Hourly digest files (a short chain) per account/region, starting at the
    first hour that has a delivered log file."""
    bucket = "aws-cloudtrail-logs-%s-%s" % (world["accounts"][0].id, TRAIL_NAME)
    r = random.Random("digest|%d" % args.seed)
    fingerprint = hexs(r, 32)
    by_stream = {}
    for task, res in zip(plan.tasks, results):
        by_stream.setdefault((task["acct"], task["region"]), []).append((task, res))
    n = 0
    nbytes = 0
    for (ai, reg) in sorted(by_stream):
        A = world["accounts"][ai]
        files = sorted(by_stream[(ai, reg)], key=lambda x: (x[0]["ft"], x[0]["rel"]))
        h0 = files[0][0]["ft"] // 3600 * 3600
        prev = None
        for h in range(DIGEST_HOURS):
            ds, de = h0 + h * 3600, h0 + (h + 1) * 3600
            inside = [(tk, rs) for tk, rs in files if ds <= tk["ft"] < de]
            delivered = de + r.randint(300, 900)
            g = time.gmtime(delivered)
            stamp = "%04d%02d%02dT%02d%02d%02dZ" % g[:6]
            rel = "%s%s/CloudTrail-Digest/%s/%04d/%02d/%02d/%s_CloudTrail-Digest_%s_%s_%s_%s.json.gz" % (
                plan.prefix, A.id, reg, g[0], g[1], g[2], A.id, reg, TRAIL_NAME, reg, stamp)
            logs = [{"s3Bucket": bucket, "s3Object": tk["rel"], "hashValue": rs[5], "hashAlgorithm": "SHA-256",
                     "newestEventTime": rs[4], "oldestEventTime": rs[3]} for tk, rs in inside]
            d = {"awsAccountId": A.id, "digestStartTime": iso(ds), "digestEndTime": iso(de),
                 "digestS3Bucket": bucket, "digestS3Object": rel,
                 "digestPublicKeyFingerprint": fingerprint, "digestSignatureAlgorithm": "SHA256withRSA",
                 "newestEventTime": max((x["newestEventTime"] for x in logs), default=None),
                 "oldestEventTime": min((x["oldestEventTime"] for x in logs), default=None),
                 "previousDigestS3Bucket": bucket if prev else None,
                 "previousDigestS3Object": prev[0] if prev else None,
                 "previousDigestHashValue": prev[1] if prev else None,
                 "previousDigestHashAlgorithm": "SHA-256" if prev else None,
                 "previousDigestSignature": prev[2] if prev else None,
                 "logFiles": logs}
            data = json.dumps(d, separators=(",", ":")).encode()
            path = os.path.join(out, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            gz = gzip.compress(data, compresslevel=6, mtime=0)
            with open(path, "wb") as f:
                f.write(gz)
            prev = (rel, hashlib.sha256(data).hexdigest(), hexs(r, 512))
            n += 1
            nbytes += len(gz)
    return n, nbytes


def mark_digest_tasks(plan):
    by_stream = {}
    for tk in plan.tasks:
        by_stream.setdefault((tk["acct"], tk["region"]), []).append(tk)
    for key, tks in by_stream.items():
        h0 = min(tk["ft"] for tk in tks) // 3600 * 3600
        for tk in tks:
            if tk["ft"] < h0 + DIGEST_HOURS * 3600:
                tk["hash"] = True


# --------------------------------------------------------------------------

def generator_sha256():
    with open(os.path.abspath(__file__), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main(argv=None):
    ap = argparse.ArgumentParser(description="Deterministic generator of realistic AWS CloudTrail logs.")
    ap.add_argument("--out", required=True, help="output directory (its AWSLogs/ and manifest.json are replaced)")
    ap.add_argument("--events", type=int, required=True, help="total number of records in the event files")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start", default="2026-11-16T00:00:00Z", help="start of the window (UTC)")
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--accounts", type=int, default=1, help="number of AWS accounts (first is 111122223333)")
    ap.add_argument("--regions", default="us-east-1,eu-west-1")
    ap.add_argument("--story", action="store_true", help="mix in the leaked-key attack story (day 5)")
    ap.add_argument("--org", default=None, help="organization id: write AWSLogs/<org-id>/<account>/...")
    ap.add_argument("--jobs", type=int, default=0, help="worker processes (default: CPU count); "
                                                        "does not change the output")
    args = ap.parse_args(argv)

    args.start_t = parse_iso(args.start)
    regions = [x.strip() for x in args.regions.split(",") if x.strip()]
    if not regions or len(set(regions)) != len(regions):
        raise SystemExit("gen-corpus: --regions must be a list of distinct regions")
    if args.days < 1 or args.accounts < 1 or args.events < 1:
        raise SystemExit("gen-corpus: --days, --accounts and --events must be positive")
    if args.org and not re.fullmatch(r"o-[a-z0-9]{10,32}", args.org):
        raise SystemExit("gen-corpus: --org must look like o-a1b2c3d4e5")
    if args.story:
        if "us-east-1" not in regions:
            raise SystemExit("gen-corpus: --story needs us-east-1 in --regions")
        if args.days < 5:
            raise SystemExit("gen-corpus: --story needs --days >= 5 (the attack is on day 5)")

    acct_ids = list(DEFAULT_ACCOUNTS[:args.accounts])
    ar = random.Random("trailhound-accounts")
    while len(acct_ids) < args.accounts:
        a = "%012d" % ar.randint(10 ** 11, 10 ** 12 - 1)
        if a not in acct_ids:
            acct_ids.append(a)
    accounts = [build_account(i, a, regions) for i, a in enumerate(acct_ids)]
    for A in accounts:
        build_tables(A)
    world = {"accounts": accounts, "regions": regions}

    t_start = time.perf_counter()
    plan = make_plan(args, world)
    mark_digest_tasks(plan)

    out = args.out
    os.makedirs(out, exist_ok=True)
    if os.path.isdir(os.path.join(out, "AWSLogs")):
        shutil.rmtree(os.path.join(out, "AWSLogs"))
    if os.path.exists(os.path.join(out, "manifest.json")):
        os.remove(os.path.join(out, "manifest.json"))
    for d in sorted({os.path.dirname(tk["rel"]) for tk in plan.tasks}):
        os.makedirs(os.path.join(out, d), exist_ok=True)

    WORLD.update(accounts=accounts, out=out, seed=args.seed)
    jobs = args.jobs or os.cpu_count() or 1
    results = []
    total = len(plan.tasks)
    done_events = 0

    def progress(i, res):
        nonlocal done_events
        done_events += res[0]
        if sys.stderr.isatty() and (i % 200 == 0 or i == total - 1):
            sys.stderr.write("\rgen-corpus: %d/%d files, %d events" % (i + 1, total, done_events))
            sys.stderr.flush()

    if jobs <= 1 or total < 50:
        for i, tk in enumerate(plan.tasks):
            res = gen_file(tk)
            results.append(res)
            progress(i, res)
    else:
        import multiprocessing as mp
        ctx = mp.get_context("fork")
        with ctx.Pool(jobs) as pool:
            for i, res in enumerate(pool.imap(gen_file, plan.tasks, chunksize=8)):
                results.append(res)
                progress(i, res)
    if sys.stderr.isatty():
        sys.stderr.write("\n")

    n_digest, digest_bytes = write_digests(args, world, plan, results, out)
    events = sum(x[0] for x in results)
    assert events == args.events, (events, args.events)
    manifest = {
        "events": events,
        "files": len(results),
        "digest_files": n_digest,
        "compressed_bytes": sum(x[1] for x in results),
        "uncompressed_bytes": sum(x[2] for x in results),
        "digest_compressed_bytes": digest_bytes,
        "seed": args.seed,
        "start": iso(args.start_t),
        "days": args.days,
        "accounts": acct_ids,
        "regions": regions,
        "org": args.org,
        "story": bool(args.story),
        "generator_version": GENERATOR_VERSION,
        "generator_sha256": generator_sha256(),
        "oldest_event": min(x[3] for x in results),
        "newest_event": max(x[4] for x in results),
    }
    if args.story:
        manifest["story_events"] = [{"eventTime": rec["eventTime"], "eventName": rec["eventName"],
                                     "eventSource": rec["eventSource"], "awsRegion": reg,
                                     "eventID": rec["eventID"], "errorCode": rec.get("errorCode")}
                                    for reg, rec in plan.story]
        manifest["logging_gap"] = {"account": STORY_ACCOUNT, "from": iso(plan.gap[0] - 1), "to": iso(plan.gap[1])}
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    el = time.perf_counter() - t_start
    sys.stderr.write("gen-corpus: %d events in %d files (+%d digests), %.1f MB gz / %.1f MB json, %.1fs "
                     "(%.0f events/s)\n" % (events, len(results), n_digest, manifest["compressed_bytes"] / 1e6,
                                            manifest["uncompressed_bytes"] / 1e6, el, events / max(el, 1e-9)))


if __name__ == "__main__":
    main()
