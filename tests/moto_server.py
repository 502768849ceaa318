"""moto's server on loopback, with requests handled one at a time.

DynamoDB applies a conditional write atomically; moto's threaded server does
not (its handlers check and set without a lock), so two concurrent
UpdateItems with `attribute_not_exists` can both succeed, and concurrent
requests can fail on shared dicts. Connections stay threaded (keep-alive
clients must not block each other), but each request runs under one lock,
which gives back the atomicity the code under test relies on.

Usage: python tests/moto_server.py PORT [--exit-with-stdin]
With --exit-with-stdin the server exits when its stdin closes, so a test
process that dies never leaves it behind.
"""
import os
import sys
import threading

from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


def main():
    port = int(sys.argv[1])
    if "--exit-with-stdin" in sys.argv[2:]:
        def watch():
            sys.stdin.buffer.read()
            os._exit(0)
        threading.Thread(target=watch, daemon=True).start()
    os.environ.setdefault("MOTO_PORT", str(port))
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serialized(environ, start_response):
        with lock:
            # Drain the response inside the lock: the handler's work is done
            # by the time the body is produced.
            return [b"".join(app(environ, start_response))]

    run_simple("127.0.0.1", port, serialized, threaded=True,
               request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
