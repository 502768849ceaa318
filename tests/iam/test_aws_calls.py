"""The recorder's reading of requests: IAM's action and resource names."""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import aws_calls  # noqa: E402

AUTH = ("AWS4-HMAC-SHA256 Credential=testing/20260101/{region}/{service}/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=abc")


def environ(service, method="POST", path="/", query="", headers=None, region="us-east-1",
            host="127.0.0.1:5000", content_type=None):
    env = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
           "HTTP_HOST": host, "HTTP_AUTHORIZATION": AUTH.format(region=region, service=service)}
    if content_type:
        env["CONTENT_TYPE"] = content_type
    for k, v in (headers or {}).items():
        env["HTTP_" + k.upper().replace("-", "_")] = v
    return env


def json_call(service, target, body, **kw):
    env = environ(service, headers={"X-Amz-Target": target}, **kw)
    return aws_calls.describe(env, json.dumps(body).encode())


class AppName(unittest.TestCase):
    def test_the_app_token_of_the_user_agent_names_the_caller(self):
        env = {"HTTP_USER_AGENT": "aws-sdk-rust/1.3 os/linux lang/rust/1.90 app/sync-consumer",
               "HTTP_X_AMZ_USER_AGENT": "aws-sdk-rust/1.3 api/sqs/1.2 app/sync-consumer"}
        self.assertEqual(aws_calls.app_name(env), "sync-consumer")

    def test_no_token_is_no_app(self):
        self.assertIsNone(aws_calls.app_name({"HTTP_USER_AGENT": "aws-sdk-rust/1.3 os/linux"}))


class Dynamodb(unittest.TestCase):
    def test_item_calls_name_the_table_and_the_index(self):
        [call] = json_call("dynamodb", "DynamoDB_20120810.Query",
                           {"TableName": "p-conflicts", "IndexName": "by-field"}, region="eu-west-1")
        self.assertEqual(call, {"service": "dynamodb", "action": "Query", "resources": [
            "arn:aws:dynamodb:eu-west-1:123456789012:table/p-conflicts/index/by-field"]})

    def test_batch_writes_name_every_table(self):
        [call] = json_call("dynamodb", "DynamoDB_20120810.BatchWriteItem",
                           {"RequestItems": {"a": [], "b": []}})
        self.assertEqual(call["action"], "BatchWriteItem")
        self.assertEqual(call["resources"], ["arn:aws:dynamodb:us-east-1:123456789012:table/a",
                                             "arn:aws:dynamodb:us-east-1:123456789012:table/b"])

    def test_a_transaction_is_the_writes_it_holds(self):
        calls = json_call("dynamodb", "DynamoDB_20120810.TransactWriteItems", {"TransactItems": [
            {"Put": {"TableName": "a"}}, {"Update": {"TableName": "b"}},
            {"ConditionCheck": {"TableName": "a"}}]})
        self.assertEqual([(c["action"], c["resources"][0].rsplit("/", 1)[1]) for c in calls],
                         [("PutItem", "a"), ("UpdateItem", "b"), ("ConditionCheckItem", "a")])


class Sqs(unittest.TestCase):
    URL = "http://127.0.0.1:5000/123456789012/p-sync"
    ARN = "arn:aws:sqs:us-east-1:123456789012:p-sync"

    def test_json_protocol_queue_url_to_arn_and_batches_to_their_iam_action(self):
        [call] = json_call("sqs", "AmazonSQS.SendMessageBatch", {"QueueUrl": self.URL})
        self.assertEqual(call, {"service": "sqs", "action": "SendMessage", "resources": [self.ARN]})

    def test_query_protocol(self):
        env = environ("sqs", content_type="application/x-www-form-urlencoded")
        body = f"Action=DeleteMessageBatch&QueueUrl={self.URL}&Version=2012-11-05".encode()
        [call] = aws_calls.describe(env, body)
        self.assertEqual((call["action"], call["resources"]), ("DeleteMessage", [self.ARN]))

    def test_get_queue_url_names_the_queue_it_asks_for(self):
        [call] = json_call("sqs", "AmazonSQS.GetQueueUrl",
                           {"QueueName": "p-sync-dlq", "QueueOwnerAWSAccountId": "123456789012"})
        self.assertEqual(call["resources"], [self.ARN + "-dlq"])


class S3(unittest.TestCase):
    def s3(self, method, path, query="", host="127.0.0.1:5000", headers=None, body=b""):
        return aws_calls.describe(environ("s3", method, path, query, headers, host=host), body)

    def test_object_reads_and_writes(self):
        cases = [("GET", "/b/r/1.json", "", "GetObject"), ("HEAD", "/b/r/1.json", "", "GetObject"),
                 ("PUT", "/b/r/1.json", "", "PutObject"), ("DELETE", "/b/r/1.json", "", "DeleteObject"),
                 ("PUT", "/b/r/1.json", "partNumber=1&uploadId=x", "PutObject")]
        for method, path, query, action in cases:
            [call] = self.s3(method, path, query)
            self.assertEqual((call["action"], call["resources"]), (action, ["arn:aws:s3:::b/r/1.json"]),
                             (method, path, query))

    def test_listing_is_list_bucket_on_the_bucket(self):
        [call] = self.s3("GET", "/b", "list-type=2&prefix=r%2F")
        self.assertEqual((call["action"], call["resources"]), ("ListBucket", ["arn:aws:s3:::b"]))

    def test_virtual_host_style(self):
        [call] = self.s3("GET", "/r/a%20b.html", host="b.s3.amazonaws.com")
        self.assertEqual(call["resources"], ["arn:aws:s3:::b/r/a b.html"])

    def test_delete_objects_is_delete_object_on_each_key(self):
        body = b"<Delete><Object><Key>x/1</Key></Object><Object><Key>x/2</Key></Object></Delete>"
        [call] = self.s3("POST", "/b", "delete", body=body)
        self.assertEqual((call["action"], call["resources"]),
                         ("DeleteObject", ["arn:aws:s3:::b/x/1", "arn:aws:s3:::b/x/2"]))

    def test_a_copy_reads_its_source(self):
        put, get = self.s3("PUT", "/b/new", headers={"X-Amz-Copy-Source": "/src/old%201"})
        self.assertEqual((put["action"], get["action"], get["resources"]),
                         ("PutObject", "GetObject", ["arn:aws:s3:::src/old 1"]))


class Others(unittest.TestCase):
    def test_sns_publish(self):
        env = environ("sns", content_type="application/x-www-form-urlencoded; charset=utf-8")
        topic = "arn:aws:sns:us-east-1:123456789012:p-alerts"
        [call] = aws_calls.describe(env, f"Action=Publish&TopicArn={topic}&Message=x".encode())
        self.assertEqual(call, {"service": "sns", "action": "Publish", "resources": [topic]})

    def test_a_secret_by_name_resolves_to_the_arn_moto_holds(self):
        arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:p/warp-api-token-AbCdEf"
        env = environ("secretsmanager", headers={"X-Amz-Target": "secretsmanager.GetSecretValue"})
        [call] = aws_calls.describe(env, b'{"SecretId": "p/warp-api-token"}',
                                    lambda region, name: arn if name == "p/warp-api-token" else None)
        self.assertEqual(call["resources"], [arn])
        [unknown] = aws_calls.describe(env, b'{"SecretId": "gone"}', lambda r, n: None)
        self.assertEqual(unknown["resources"],
                         ["arn:aws:secretsmanager:us-east-1:123456789012:secret:gone"])

    def test_lambda_invoke(self):
        env = environ("lambda", path="/2015-03-31/functions/p-nightly-reconciler/invocations")
        [call] = aws_calls.describe(env, b"{}")
        self.assertEqual(call, {"service": "lambda", "action": "InvokeFunction", "resources": [
            "arn:aws:lambda:us-east-1:123456789012:function:p-nightly-reconciler"]})

    def test_unsigned_requests_are_not_aws_calls(self):
        self.assertEqual(aws_calls.describe({"REQUEST_METHOD": "GET", "PATH_INFO":
                                             "/moto-api/data.json"}, b""), [])


if __name__ == "__main__":
    unittest.main()
