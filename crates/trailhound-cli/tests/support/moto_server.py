"""moto's server for one test process: on 127.0.0.1:PORT, gone when the test process is.

Usage: python moto_server.py PORT. Prints "ready" once it accepts requests, then serves until
its parent (the test binary) exits, so a crashed test never leaves a server behind.
"""
import os
import sys
import time

from moto.s3.responses import S3Response
from moto.server import ThreadedMotoServer


def _versioning_as_aws_names_it(original):
    """moto 5.2 names GetBucketVersioning's root element GetBucketVersioningResponse; AWS (and
    the Rust SDK, which checks it) says VersioningConfiguration."""

    def get_bucket_versioning(self):
        status, headers, body = original(self)
        if isinstance(body, bytes):
            body = body.replace(b"GetBucketVersioningResponse", b"VersioningConfiguration")
        elif isinstance(body, str):
            body = body.replace("GetBucketVersioningResponse", "VersioningConfiguration")
        return status, headers, body

    return get_bucket_versioning


S3Response.get_bucket_versioning = _versioning_as_aws_names_it(S3Response.get_bucket_versioning)


# Athena, as AWS answers where moto 5.2 does not. moto runs no SQL: tests queue result sets
# through /moto-api/static/athena/query-results.
# - GetQueryResults pages: MaxResults rows a page (at most 1,000, as AWS), NextToken the offset.
# - A query naming a table `does_not_exist` FAILS, with Athena's kind of reason.
# - Statistics.DataScannedInBytes is TRAILHOUND_MOTO_ATHENA_SCANNED (moto says 0).
# - With TRAILHOUND_MOTO_ATHENA_THROTTLE_EVERY=N, every Nth Athena request is refused with
#   TooManyRequestsException, as AWS throttles.
import json  # noqa: E402

from moto.athena.models import athena_backends  # noqa: E402
from moto.athena.responses import AthenaResponse  # noqa: E402

_athena_requests = [0]
_throttle_every = int(os.environ.get("TRAILHOUND_MOTO_ATHENA_THROTTLE_EVERY", "0") or 0)
_scanned = int(os.environ.get("TRAILHOUND_MOTO_ATHENA_SCANNED", "0") or 0)


def _throttled(method):
    def call(self):
        _athena_requests[0] += 1
        if _throttle_every and _athena_requests[0] % _throttle_every == 0:
            return (
                json.dumps({"__type": "TooManyRequestsException", "Message": "Rate exceeded"}),
                {"status": 400},
            )
        return method(self)

    return call


def _failing(execution):
    return "does_not_exist" in (execution.query or "")


def _get_query_execution(original):
    def get_query_execution(self):
        answer = original(self)
        body = json.loads(answer) if isinstance(answer, str) else None
        if body is None:
            return answer
        execution = self.athena_backend.executions.get(self._get_param("QueryExecutionId"))
        status = body["QueryExecution"]["Status"]
        if execution is not None and _failing(execution) and status["State"] == "SUCCEEDED":
            status["State"] = "FAILED"
            status["StateChangeReason"] = (
                "TABLE_NOT_FOUND: line 1:8: Table 'awsdatacatalog.trails.does_not_exist' does not exist"
            )
        elif execution is not None and execution.status == "CANCELLED":
            status["State"] = "CANCELLED"
        if status["State"] == "SUCCEEDED":
            body["QueryExecution"]["Statistics"]["DataScannedInBytes"] = _scanned
        return json.dumps(body)

    return get_query_execution


def _get_query_results(self):
    exec_id = self._get_param("QueryExecutionId")
    result = self.athena_backend.get_query_results(exec_id).to_dict()
    rows = result["ResultSet"]["Rows"]
    size = min(int(self._get_param("MaxResults") or 1000), 1000)
    start = int(self._get_param("NextToken") or 0)
    result["ResultSet"]["Rows"] = rows[start : start + size]
    if start + size < len(rows):
        result["NextToken"] = str(start + size)
    return json.dumps(result)


AthenaResponse.get_query_execution = _get_query_execution(AthenaResponse.get_query_execution)
AthenaResponse.get_query_results = _get_query_results
for _name in ("start_query_execution", "get_query_execution", "get_query_results", "stop_query_execution"):
    setattr(AthenaResponse, _name, _throttled(getattr(AthenaResponse, _name)))

port = int(sys.argv[1])
parent = os.getppid()
server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
server.start()
print("ready", flush=True)
try:
    while os.getppid() == parent:
        time.sleep(0.2)
finally:
    server.stop()
