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
