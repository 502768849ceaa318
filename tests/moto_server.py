"""moto's server on loopback, with requests handled one at a time.

DynamoDB applies a conditional write atomically; moto's threaded server does
not (its handlers check and set without a lock), so two concurrent
UpdateItems with `attribute_not_exists` can both succeed, and concurrent
requests can fail on shared dicts. Connections stay threaded (keep-alive
clients must not block each other), but each request runs under one lock,
which gives back the atomicity the code under test relies on.

moto does not enforce IAM. With MOTO_CALL_LOG=<file> every AWS request is
appended to the file as one JSON line (who called, the IAM action, the
resource ARNs, the status; tests/aws_calls.py) for tests/iam/check_roles.py
to judge against the roles in infra/template.yaml.

GET /_hubwarp/ses/sent answers the raw messages SES took, as JSON.

With MOTO_LAMBDA_FORWARD=<url> a Lambda invoke is recorded, then sent on to
that URL (cargo lambda watch's invoke endpoint) and its answer returned:
moto's own Lambda would need Docker to run the function.

Usage: python tests/moto_server.py PORT [--exit-with-stdin]
With --exit-with-stdin the server exits when its stdin closes, so a test
process that dies never leaves it behind.
"""
import io
import json
import os
import re
import sys
import threading
import urllib.error
import urllib.request

from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aws_calls  # noqa: E402

INVOKE_PATH = re.compile(r"^/2015-03-31/functions/[^/]+/invocations$")
# What an invoke's answer carries besides its body (the function's error
# marker decides whether the caller sees a failure).
FORWARDED_HEADERS = ("Content-Type", "X-Amz-Function-Error", "X-Amz-Executed-Version",
                     "X-Amz-Log-Result")


def read_body(environ):
    """The request body, with wsgi.input re-supplied for moto to read again."""
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    if length:
        body = stream.read(int(length))
    elif environ.get("wsgi.input_terminated"):  # chunked: werkzeug ends the stream
        body = stream.read()
        environ["CONTENT_LENGTH"] = str(len(body))
    else:
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def resolve_secret(region, name):
    """The ARN moto holds for a secret named `name` (its random suffix is
    part of what IAM matches), or None."""
    from moto.secretsmanager.models import secretsmanager_backends
    secret = secretsmanager_backends[aws_calls.ACCOUNT][region].secrets.get(name)
    return secret.arn if secret is not None else None


class CallLog:
    def __init__(self, path):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.file = open(path, "a", encoding="utf-8")
        self.lock = threading.Lock()

    def record(self, environ, body, status):
        try:
            calls = aws_calls.describe(environ, body, resolve_secret)
        except Exception as e:  # a request the recorder misreads must still be served
            calls = [{"service": None, "action": None, "resources": [],
                      "error": f"{type(e).__name__}: {e}"}]
        app = aws_calls.app_name(environ)
        lines = [json.dumps({"app": app, **call, "status": status}) for call in calls]
        if lines:
            with self.lock:
                self.file.write("\n".join(lines) + "\n")
                self.file.flush()


# What SES took, for tests and the demo to read back as a mail client
# would (moto keeps sent messages but has no endpoint for them).
SES_SENT_PATH = "/_hubwarp/ses/sent"


def ses_sent():
    """Every message SES v1 or v2 took, oldest first: source, destinations
    and the raw MIME text."""
    from moto.ses.models import ses_backends
    out = []
    for region, backend in ses_backends[aws_calls.ACCOUNT].items():
        for m in backend.sent_messages:
            raw = getattr(m, "raw_data", None)
            if raw is None:
                continue
            out.append({"region": region, "id": m.id, "source": m.source,
                        "destinations": list(m.destinations), "raw": raw})
    return out


def forward(url, environ, body):
    """(status line, headers, body) of the invoke sent on to `url`."""
    target = url.rstrip("/") + environ.get("PATH_INFO", "")
    if environ.get("QUERY_STRING"):
        target += "?" + environ["QUERY_STRING"]
    headers = {k: aws_calls.header(environ, k) for k in
               ("X-Amz-Invocation-Type", "X-Amz-Log-Type", "X-Amz-Client-Context",
                "Content-Type") if aws_calls.header(environ, k)}
    request = urllib.request.Request(target, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=900) as r:
            status, answer, got = r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        status, answer, got = e.code, e.read(), e.headers
    except OSError as e:
        message = json.dumps({"Type": "Service", "Message": f"forward to {url}: {e}"})
        return "502 Bad Gateway", [("Content-Type", "application/json")], message.encode()
    out = [(h, got[h]) for h in FORWARDED_HEADERS if got.get(h)]
    return f"{status} {'OK' if status < 400 else 'Error'}", out, answer


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
    log = CallLog(os.environ["MOTO_CALL_LOG"]) if os.environ.get("MOTO_CALL_LOG") else None
    lambda_forward = os.environ.get("MOTO_LAMBDA_FORWARD")

    def serialized(environ, start_response):
        if environ.get("PATH_INFO") == SES_SENT_PATH:
            with lock:
                answer = json.dumps(ses_sent()).encode()
            start_response("200 OK", [("Content-Type", "application/json"),
                                      ("Content-Length", str(len(answer)))])
            return [answer]
        body = read_body(environ) if log or lambda_forward else None
        if (lambda_forward and environ.get("REQUEST_METHOD") == "POST"
                and INVOKE_PATH.match(environ.get("PATH_INFO", ""))):
            # Outside the lock: the invoked function calls this server back.
            status, headers, answer = forward(lambda_forward, environ, body)
            if log:
                log.record(environ, body, int(status.split()[0]))
            start_response(status, headers + [("Content-Length", str(len(answer)))])
            return [answer]
        with lock:
            seen = {}

            def recording_start_response(status, headers, exc_info=None):
                seen["status"] = int(status.split()[0])
                return start_response(status, headers, exc_info)

            # Drain the response inside the lock: the handler's work is done
            # by the time the body is produced.
            answer = b"".join(app(environ, recording_start_response))
            if log:
                log.record(environ, body, seen.get("status"))
            return [answer]

    run_simple("127.0.0.1", port, serialized, threaded=True,
               request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
