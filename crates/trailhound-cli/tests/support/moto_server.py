"""moto's server for one test process: on 127.0.0.1:PORT, gone when the test process is.

Usage: python moto_server.py PORT. Prints "ready" once it accepts requests, then serves until
its parent (the test binary) exits, so a crashed test never leaves a server behind.
"""
import os
import sys
import time

from moto.server import ThreadedMotoServer

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
