"""What an AWS request asks for, in IAM's terms: who, which action, on what.

moto does not evaluate IAM, so tests/moto_server.py records every request it
serves through `describe` and tests/iam/check_roles.py later judges each one
against the functions' roles in infra/template.yaml. The names here are IAM's
(the ones a policy names), not the API's: an S3 HEAD object is s3:GetObject,
ListObjectsV2 is s3:ListBucket, SQS SendMessageBatch is sqs:SendMessage.

Stdlib only: the checker's tests import it without moto.
"""
import json
import re
from urllib.parse import parse_qs, unquote, urlsplit

ACCOUNT = "123456789012"  # moto's default account
APP_TOKEN = re.compile(r"(?:^|\s)app/([^\s]+)")
SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/,\s]+)/([^/,\s]+)/aws4_request")
QUERY_SCOPE = re.compile(r"^[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request$")

# The API actions IAM authorizes under another action's name.
IAM_ALIASES = {
    "sqs": {
        "SendMessageBatch": "SendMessage",
        "DeleteMessageBatch": "DeleteMessage",
        "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
    },
    "dynamodb": {"TransactGetItems": "GetItem"},
    "sns": {"PublishBatch": "Publish"},
    "secretsmanager": {"BatchGetSecretValue": "GetSecretValue"},
}

# TransactWriteItems has no IAM action of its own: each item is authorized
# as the write it is.
TRANSACT_ITEM_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


def header(environ, name):
    return environ.get("HTTP_" + name.upper().replace("-", "_"), "")


def app_name(environ):
    """The SDK config's app name (`app/<name>` in the user agent), or None."""
    for h in ("x-amz-user-agent", "user-agent"):
        m = APP_TOKEN.search(header(environ, h))
        if m:
            return m.group(1)
    return None


def signing_scope(environ, query):
    """(region, service) from SigV4's credential scope, header or presigned."""
    m = SCOPE.search(header(environ, "authorization"))
    if m:
        return m.group(1), m.group(2)
    cred = query.get("X-Amz-Credential", [""])[0]
    m = QUERY_SCOPE.match(cred)
    if m:
        return m.group(1), m.group(2)
    return None, None


def describe(environ, body, resolve_secret=None):
    """The IAM view of one request: a list of dicts with service, action and
    resources (one request can be several authorizations: a transaction's
    items, a copy's source and destination). [] for what is not an AWS API
    call (moto's own endpoints, unsigned requests)."""
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    region, service = signing_scope(environ, query)
    if service is None:
        return []
    region = region or "us-east-1"
    target = header(environ, "x-amz-target")
    params = {}
    ctype = environ.get("CONTENT_TYPE", "")
    if target:
        action = target.rsplit(".", 1)[-1]
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            params = {}
    elif "x-www-form-urlencoded" in ctype or "Action" in query:
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True) if body else {}
        form.update(query)
        params = {k: v[0] for k, v in form.items()}
        action = params.get("Action")
    else:
        action = None
    if service == "s3":
        return s3_calls(environ, query, region, body)
    if service == "lambda":
        return [lambda_call(environ, region)]
    if service == "ses":
        return ses_calls(environ, body, region)
    if action is None:
        return [{"service": service, "action": None, "resources": []}]
    if service == "dynamodb":
        return dynamodb_calls(action, params, region)
    if service == "sqs":
        return [simple(service, action, sqs_resources(params, region))]
    if service == "sns":
        arn = params.get("TopicArn") or params.get("TargetArn")
        if action == "CreateTopic" and params.get("Name"):
            arn = f"arn:aws:sns:{region}:{ACCOUNT}:{params['Name']}"
        return [simple(service, action, [arn] if arn else ["*"])]
    if service == "secretsmanager":
        return [simple(service, action, secret_resources(params, region, resolve_secret))]
    return [simple(service, action, ["*"])]


def ses_calls(environ, body, region):
    """SES v2 is REST: the action is the method and path. SendEmail is
    authorized on the sender's identity (the address; a domain identity
    is the grant's other resource)."""
    path = environ.get("PATH_INFO", "").rstrip("/")
    method = environ.get("REQUEST_METHOD")
    if method == "POST" and path == "/v2/email/outbound-emails":
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            params = {}
        sender = params.get("FromEmailAddress") or "*"
        return [simple("ses", "SendEmail", [f"arn:aws:ses:{region}:{ACCOUNT}:identity/{sender}"])]
    m = re.fullmatch(r"/v2/email/identities(?:/([^/]+))?", path)
    if m:
        action = {"POST": "CreateEmailIdentity", "DELETE": "DeleteEmailIdentity"}.get(
            method, "GetEmailIdentity" if m.group(1) else "ListEmailIdentities")
        return [simple("ses", action, ["*"])]
    return [{"service": "ses", "action": None, "resources": []}]


def simple(service, action, resources):
    action = IAM_ALIASES.get(service, {}).get(action, action)
    return {"service": service, "action": action, "resources": resources}


def table_arn(region, table, index=None):
    arn = f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{table}"
    return f"{arn}/index/{index}" if index else arn


def dynamodb_calls(action, params, region):
    if action == "TransactWriteItems":
        calls = []
        for item in params.get("TransactItems", []):
            for kind, spec in item.items():
                calls.append(simple("dynamodb", TRANSACT_ITEM_ACTIONS.get(kind, kind),
                                    [table_arn(region, spec.get("TableName"))]))
        return calls
    if action == "TransactGetItems":
        tables = [spec.get("TableName") for item in params.get("TransactItems", [])
                  for spec in item.values()]
        return [simple("dynamodb", action, [table_arn(region, t) for t in dict.fromkeys(tables)])]
    if "RequestItems" in params:  # BatchWriteItem, BatchGetItem
        return [simple("dynamodb", action, [table_arn(region, t) for t in params["RequestItems"]])]
    if "TableName" in params:
        return [simple("dynamodb", action,
                       [table_arn(region, params["TableName"], params.get("IndexName"))])]
    if "ResourceArn" in params:  # tagging, resource policies
        return [simple("dynamodb", action, [params["ResourceArn"]])]
    return [simple("dynamodb", action, ["*"])]  # ListTables and the like


def queue_arn_from_url(url, region):
    parts = [p for p in urlsplit(url).path.split("/") if p]
    if len(parts) >= 2:
        return f"arn:aws:sqs:{region}:{parts[-2]}:{parts[-1]}"
    return url


def sqs_resources(params, region):
    if params.get("QueueUrl"):
        return [queue_arn_from_url(params["QueueUrl"], region)]
    if params.get("QueueName"):  # GetQueueUrl, CreateQueue
        owner = params.get("QueueOwnerAWSAccountId") or ACCOUNT
        return [f"arn:aws:sqs:{region}:{owner}:{params['QueueName']}"]
    return ["*"]  # ListQueues


def secret_resources(params, region, resolve_secret):
    secret = params.get("SecretId") or params.get("Name")
    if not secret:
        return ["*"]
    if secret.startswith("arn:"):
        return [secret]
    if resolve_secret:
        arn = resolve_secret(region, secret)
        if arn:
            return [arn]
    # Not in moto (yet, or any more): the name as IAM would see it before the
    # random suffix, so the record still says which secret.
    return [f"arn:aws:secretsmanager:{region}:{ACCOUNT}:secret:{secret}"]


def lambda_call(environ, region):
    path = unquote(environ.get("PATH_INFO", ""))
    method = environ.get("REQUEST_METHOD", "GET")
    m = re.match(r"^/[0-9-]+/functions/([^/]+)(/.*)?$", path)
    if not m:
        return {"service": "lambda", "action": None, "resources": ["*"]}
    name, rest = m.group(1), (m.group(2) or "")
    if not name.startswith("arn:"):
        name = name.split(":")[0]  # a qualifier after the name is not part of the resource
        arn = f"arn:aws:lambda:{region}:{ACCOUNT}:function:{name}"
    else:
        arn = name
    if rest.startswith("/invocations") or rest.startswith("/invoke-async"):
        action = "InvokeFunction"
    elif rest.startswith("/configuration"):
        action = "GetFunctionConfiguration" if method == "GET" else "UpdateFunctionConfiguration"
    elif rest.startswith("/code"):
        action = "UpdateFunctionCode"
    elif rest == "":
        action = {"GET": "GetFunction", "DELETE": "DeleteFunction"}.get(method, method)
    else:
        action = rest.strip("/").split("/")[0]
    return {"service": "lambda", "action": action, "resources": [arn]}


# --- S3: REST, the action follows from the method, the path and the query ---

BUCKET_SUBRESOURCES = {
    # subresource: (GET, PUT, DELETE)
    "policy": ("GetBucketPolicy", "PutBucketPolicy", "DeleteBucketPolicy"),
    "tagging": ("GetBucketTagging", "PutBucketTagging", "PutBucketTagging"),
    "lifecycle": ("GetLifecycleConfiguration", "PutLifecycleConfiguration",
                  "PutLifecycleConfiguration"),
    "encryption": ("GetEncryptionConfiguration", "PutEncryptionConfiguration",
                   "PutEncryptionConfiguration"),
    "versioning": ("GetBucketVersioning", "PutBucketVersioning", None),
    "acl": ("GetBucketAcl", "PutBucketAcl", None),
    "cors": ("GetBucketCORS", "PutBucketCORS", "PutBucketCORS"),
    "notification": ("GetBucketNotification", "PutBucketNotification", None),
    "publicAccessBlock": ("GetBucketPublicAccessBlock", "PutBucketPublicAccessBlock",
                          "PutBucketPublicAccessBlock"),
    "ownershipControls": ("GetBucketOwnershipControls", "PutBucketOwnershipControls",
                          "PutBucketOwnershipControls"),
    "location": ("GetBucketLocation", None, None),
    "versions": ("ListBucketVersions", None, None),
    "uploads": ("ListBucketMultipartUploads", None, None),
    "logging": ("GetBucketLogging", "PutBucketLogging", None),
    "website": ("GetBucketWebsite", "PutBucketWebsite", "DeleteBucketWebsite"),
    "object-lock": ("GetBucketObjectLockConfiguration", "PutBucketObjectLockConfiguration", None),
}

OBJECT_SUBRESOURCES = {
    "tagging": ("GetObjectTagging", "PutObjectTagging", "DeleteObjectTagging"),
    "acl": ("GetObjectAcl", "PutObjectAcl", None),
    "retention": ("GetObjectRetention", "PutObjectRetention", None),
    "legal-hold": ("GetObjectLegalHold", "PutObjectLegalHold", None),
    "attributes": ("GetObjectAttributes", None, None),
}


def bucket_and_key(environ):
    host = (header(environ, "host") or environ.get("SERVER_NAME", "")).rsplit(":", 1)[0]
    path = unquote(environ.get("PATH_INFO", ""))
    virtual = None
    if not re.fullmatch(r"[\d.]+|localhost|s3[.-].*|\[[0-9a-f:]+\]", host):
        for marker in (".s3.", ".s3-", ".localhost"):
            if marker in host:
                virtual = host.split(marker)[0]
                break
    if virtual:
        return virtual, path.lstrip("/")
    parts = path.lstrip("/").split("/", 1)
    return parts[0], (parts[1] if len(parts) > 1 else "")


def deleted_keys(body):
    """The keys of a DeleteObjects body (IAM checks s3:DeleteObject on each)."""
    keys = re.findall(rb"<Key>(.*?)</Key>", body or b"", re.S)
    return [k.decode("utf-8", "replace").replace("&amp;", "&").replace("&lt;", "<")
            .replace("&gt;", ">").replace("&quot;", '"').replace("&apos;", "'") for k in keys]


def s3_calls(environ, query, region, body=b""):
    method = environ.get("REQUEST_METHOD", "GET")
    bucket, key = bucket_and_key(environ)
    if not bucket:
        return [simple("s3", "ListAllMyBuckets", ["*"])]
    bucket_arn = f"arn:aws:s3:::{bucket}"
    if not key:
        if method == "POST" and "delete" in query:
            keys = deleted_keys(body)
            return [simple("s3", "DeleteObject", [f"{bucket_arn}/{k}" for k in keys]
                           or [f"{bucket_arn}/*"])]
        for sub, actions in BUCKET_SUBRESOURCES.items():
            if sub in query:
                i = {"GET": 0, "PUT": 1, "DELETE": 2}.get(method)
                action = actions[i] if i is not None and actions[i] else f"{method}?{sub}"
                return [simple("s3", action, [bucket_arn])]
        action = {"GET": "ListBucket", "HEAD": "ListBucket", "PUT": "CreateBucket",
                  "DELETE": "DeleteBucket"}.get(method, method)
        return [simple("s3", action, [bucket_arn])]
    object_arn = f"{bucket_arn}/{key}"
    for sub, actions in OBJECT_SUBRESOURCES.items():
        if sub in query:
            i = {"GET": 0, "HEAD": 0, "PUT": 1, "DELETE": 2}.get(method)
            action = actions[i] if i is not None and actions[i] else f"{method}?{sub}"
            return [simple("s3", action, [object_arn])]
    if method in ("GET", "HEAD"):
        if "uploadId" in query:
            return [simple("s3", "ListMultipartUploadParts", [object_arn])]
        action = "GetObjectVersion" if "versionId" in query else "GetObject"
        return [simple("s3", action, [object_arn])]
    if method == "PUT":
        calls = [simple("s3", "PutObject", [object_arn])]
        source = header(environ, "x-amz-copy-source")
        if source:  # CopyObject / UploadPartCopy read the source too
            source = unquote(source.split("?")[0]).lstrip("/")
            calls.append(simple("s3", "GetObject", [f"arn:aws:s3:::{source}"]))
        return calls
    if method == "POST":
        if "restore" in query:
            return [simple("s3", "RestoreObject", [object_arn])]
        if "select" in query:
            return [simple("s3", "GetObject", [object_arn])]
        return [simple("s3", "PutObject", [object_arn])]  # multipart create/complete
    if method == "DELETE":
        if "uploadId" in query:
            return [simple("s3", "AbortMultipartUpload", [object_arn])]
        action = "DeleteObjectVersion" if "versionId" in query else "DeleteObject"
        return [simple("s3", action, [object_arn])]
    return [simple("s3", method, [object_arn])]
