"""tests/moto_server.py with the recorder on: moto still answers (the body
it reads is given back), each call is one line, and a Lambda invoke is
recorded and forwarded. Needs the venv's moto and boto3."""
import http.server
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "..", "moto_server.py")

try:
    import boto3
    from botocore.config import Config
    import moto  # noqa: F401
except ImportError:  # outside the venv
    boto3 = None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Echo(http.server.BaseHTTPRequestHandler):
    """Stands in for cargo lambda watch's invoke endpoint."""

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        answer = json.dumps({"path": self.path, "got": json.loads(body)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


@unittest.skipIf(boto3 is None, "needs moto and boto3 (the project's venv)")
class Recording(unittest.TestCase):
    def start(self, **env):
        port = free_port()
        proc = subprocess.Popen([sys.executable, SERVER, str(port), "--exit-with-stdin"],
                                stdin=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                env={**{k: v for k, v in os.environ.items()
                                        if not k.startswith("MOTO_")}, **env},
                                cwd=self.dir.name)
        self.addCleanup(proc.wait, 10)
        self.addCleanup(proc.stdin.close)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        return f"http://127.0.0.1:{port}"

    def client(self, service, endpoint, app=None):
        return boto3.client(service, endpoint_url=endpoint, region_name="eu-west-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing",
                            config=Config(user_agent_appid=app) if app else None)

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)

    def test_calls_are_recorded_and_still_served(self):
        echo = http.server.HTTPServer(("127.0.0.1", 0), Echo)
        threading.Thread(target=echo.serve_forever, daemon=True).start()
        self.addCleanup(echo.server_close)
        self.addCleanup(echo.shutdown)
        log = os.path.join(self.dir.name, "calls", "x.jsonl")
        endpoint = self.start(MOTO_CALL_LOG=log,
                              MOTO_LAMBDA_FORWARD=f"http://127.0.0.1:{echo.server_port}")
        setup = self.client("dynamodb", endpoint)
        setup.create_table(TableName="p-events", BillingMode="PAY_PER_REQUEST",
                           KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                           AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}])
        ddb = self.client("dynamodb", endpoint, app="webhook-receiver")
        ddb.put_item(TableName="p-events", Item={"k": {"S": "a"}, "v": {"S": "x" * 5000}})
        got = ddb.get_item(TableName="p-events", Key={"k": {"S": "a"}})["Item"]["v"]["S"]
        self.assertEqual(len(got), 5000)
        invoked = self.client("lambda", endpoint, app="nightly-reconciler").invoke(
            FunctionName="p-nightly-reconciler", Payload=b'{"n": 1}')
        self.assertEqual(json.loads(invoked["Payload"].read()), {
            "path": "/2015-03-31/functions/p-nightly-reconciler/invocations", "got": {"n": 1}})
        with open(log, encoding="utf-8") as f:
            calls = [json.loads(line) for line in f]
        table = "arn:aws:dynamodb:eu-west-1:123456789012:table/p-events"
        self.assertEqual(calls, [
            {"app": None, "service": "dynamodb", "action": "CreateTable", "resources": [table],
             "status": 200},
            {"app": "webhook-receiver", "service": "dynamodb", "action": "PutItem",
             "resources": [table], "status": 200},
            {"app": "webhook-receiver", "service": "dynamodb", "action": "GetItem",
             "resources": [table], "status": 200},
            {"app": "nightly-reconciler", "service": "lambda", "action": "InvokeFunction",
             "resources": ["arn:aws:lambda:eu-west-1:123456789012:function:p-nightly-reconciler"],
             "status": 200},
        ])

    def test_nothing_is_written_without_moto_call_log(self):
        endpoint = self.start()
        sqs = self.client("sqs", endpoint, app="sync-consumer")
        url = sqs.create_queue(QueueName="p-sync")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="m")
        self.assertEqual(sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"], "m")
        self.assertEqual(os.listdir(self.dir.name), [])


if __name__ == "__main__":
    unittest.main()
