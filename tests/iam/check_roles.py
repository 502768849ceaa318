#!/usr/bin/env python3
"""Judge the AWS calls the tests recorded against the roles in the template.

moto, the local AWS of the tests and the demo, enforces no IAM, so a role
that lacks a permission the code needs passes every local test and fails on
the first day in AWS. tests/moto_server.py records each call moto serves
(caller, IAM action, resource ARNs); this script reads those records and
decides each one as IAM would for the caller's role in infra/template.yaml,
as deployed: after SAM's own transform (aws-sam-translator, the version
aws-sam-cli pins), with the managed policies SAM attaches.

    python tests/iam/check_roles.py infra/template.yaml .local/aws-calls/*.jsonl

Prints "DENIED <function> <service:Action> <resource>" for each call the role
does not allow (exit 1), else a summary per function; always the grants no
recorded call used ("granted but not exercised by any test"), for a least
privilege review.

Choices:
- ResourcePrefix resolves to the wildcard `*`. Every test makes its
  resources under a prefix of its own and a record does not say which stack
  it belongs to, so the role is judged as it reads for any prefix: a call
  on `<anything>-links` is a call on LinksTable. Resolving once per observed
  prefix would need each call tied to its prefix, which a record lacks; a
  wildcard only widens the names, never the actions or the resource kinds.
- Other parameters take their defaults; conditions are evaluated with them.
- Condition blocks of statements are not evaluated: an Allow with a
  Condition grants nothing here and a Deny with one always applies, so the
  check errs towards DENIED, never towards a false pass.
- Callers are the SDK app names the binaries set (FUNCTIONS below); calls
  with no app name are the test harness's own setup and are not judged.
"""
import argparse
import copy
import itertools
import json
import os
import re
import sys
from collections import Counter, defaultdict

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account, the one the records carry
PARTITION = "aws"
WILDCARD_PARAMETERS = {"ResourcePrefix": "*"}
# The local stack's e-mail (tests/src/resources.rs, REPORT_EMAIL_*): with
# them the template has its e-mail resources (ReportEmailOn) and the
# sender's identity is the one the tests send from.
LOCAL_PARAMETERS = {
    "ReportEmailTo": "finance@hubwarp.example",
    "ReportEmailFrom": "reports@hubwarp.example",
}

# The caller's app name (SDK config `app_name`) -> the template's function.
FUNCTIONS = {
    "webhook-receiver": "WebhookReceiverFunction",
    "sync-consumer": "SyncConsumerFunction",
    "nightly-reconciler": "NightlyReconcilerFunction",
    "review-page": "ReviewPageFunction",
}
# The operator CLI runs with a person's credentials; what it needs is the
# managed policy the template outputs for them to attach.
OPERATOR_APP = "hubwarp"
OPERATOR_POLICY = "OperatorPolicy"
OPERATOR_OUTPUT = "OperatorPolicyArn"

# Names the local harness gives a resource where AWS's differ, beside the
# template's own: tests/src/resources.rs makes `<prefix>-reports`, since the
# account and region that keep bucket names globally unique in AWS mean
# nothing on moto.
LOCAL_NAMES = {
    "AWS::S3::Bucket": {"ReportsBucket": ["${ResourcePrefix}-reports"]},
}

# Grants the Lambda service uses on the function's behalf, so no call of
# the code (and no record) ever shows them.
LAMBDA_SERVICE_USES = {
    "logs:createloggroup": "Lambda creates the log group when missing (the template makes it)",
    "logs:createlogstream": "Lambda writes the function's logs",
    "logs:putlogevents": "Lambda writes the function's logs",
    "sqs:receivemessage": "Lambda's SQS poller (event source mapping)",
    "sqs:deletemessage": "Lambda's SQS poller deletes a batch's successes",
    "sqs:getqueueattributes": "Lambda's SQS poller (event source mapping)",
}

MANAGED_POLICIES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                     "aws-managed-policies.json")


class TemplateError(Exception):
    """The template cannot be judged (an unresolvable reference...)."""


# --- the template as deployed -------------------------------------------------

def load_template(path):
    from samtranslator.yaml_helper import yaml_parse
    with open(path, encoding="utf-8") as f:
        return yaml_parse(f.read())


def aws_managed_policies():
    with open(MANAGED_POLICIES_FILE, encoding="utf-8") as f:
        return {arn: p["document"] for arn, p in json.load(f)["policies"].items()}


def sam_transform(template):
    """CloudFormation as SAM makes it: the generated roles with the managed
    policies SAM attaches. No network and no IAM client: managed policy
    names resolve from the vendored set (what cfn-lint also does, with an
    empty map)."""
    template = copy.deepcopy(template)
    if "Transform" not in template:
        return template
    import boto3
    from samtranslator.metrics.metrics import Metrics
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    # `sam build` swaps the local CodeUri for an S3 one; the transform only
    # accepts the latter.
    for resource in template.get("Resources", {}).values():
        props = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::Serverless::Function" and isinstance(
                props.get("CodeUri"), str) and not props["CodeUri"].startswith("s3://"):
            props["CodeUri"] = "s3://code-bucket/code.zip"
    names = {arn.rsplit("/", 1)[-1]: arn for arn in aws_managed_policies()}
    metrics = Metrics()  # the default publisher publishes nowhere
    translator = Translator(names, Parser(), metrics=metrics,
                            boto_session=boto3.session.Session(region_name=REGION))
    out = translator.translate(template, parameter_values={}, get_managed_policy_map=lambda: names)
    metrics.publish()  # else it warns of unpublished metrics when collected
    return out


NO_VALUE = object()
# The name property of each resource type CloudFormation lets you name.
NAME_PROPERTIES = {
    "AWS::DynamoDB::Table": "TableName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
}


class Resolver:
    """Intrinsics to IAM patterns. A string can resolve to several
    alternatives (a resource's template name and its local one), so string
    results are lists."""

    def __init__(self, template, parameters=None):
        self.template = template
        self.resources = template.get("Resources", {})
        self.parameters = {}
        for name, spec in (template.get("Parameters") or {}).items():
            if "Default" in spec:
                self.parameters[name] = str(spec["Default"])
        self.parameters.update(WILDCARD_PARAMETERS)
        self.parameters.update(LOCAL_PARAMETERS)
        self.parameters.update(parameters or {})
        self.pseudo = {
            "AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": PARTITION,
            "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "*", "AWS::StackId": "*",
            "AWS::NoValue": NO_VALUE,
        }
        self.conditions = {}

    def condition(self, name):
        if name not in self.conditions:
            spec = (self.template.get("Conditions") or {}).get(name)
            if spec is None:
                raise TemplateError(f"condition {name} is not defined")
            self.conditions[name] = self.truth(spec)
        return self.conditions[name]

    def truth(self, node):
        if isinstance(node, dict) and len(node) == 1:
            (fn, arg), = node.items()
            if fn == "Condition":
                return self.condition(arg)
            if fn == "Fn::Equals":
                a, b = (self.strings(x) for x in arg)
                return a == b
            if fn == "Fn::Not":
                return not self.truth(arg[0])
            if fn == "Fn::And":
                return all(self.truth(x) for x in arg)
            if fn == "Fn::Or":
                return any(self.truth(x) for x in arg)
        raise TemplateError(f"cannot evaluate condition {node!r}")

    def value(self, node):
        """Any node resolved; a string intrinsic gives a list of alternatives
        only inside lists (where IAM takes several values anyway)."""
        if node == {"Ref": "AWS::NoValue"}:
            return NO_VALUE
        if isinstance(node, list):
            out = []
            for item in node:
                if isinstance(item, dict) and is_intrinsic(item) and not is_if(item):
                    out.extend(self.strings(item))
                else:
                    v = self.value(item)
                    if v is not NO_VALUE:
                        out.append(v)
            return out
        if isinstance(node, dict):
            if is_if(node):
                cond, yes, no = node["Fn::If"]
                return self.value(yes if self.condition(cond) else no)
            if is_intrinsic(node):
                alternatives = self.strings(node)
                return alternatives if len(alternatives) != 1 else alternatives[0]
            out = {}
            for k, v in node.items():
                v = self.value(v)
                if v is not NO_VALUE:
                    out[k] = v
            return out
        return node

    def strings(self, node):
        """A string-valued node as its list of alternatives."""
        if isinstance(node, (str, int, float, bool)):
            return [str(node)]
        if not (isinstance(node, dict) and len(node) == 1):
            raise TemplateError(f"not a string: {node!r}")
        (fn, arg), = node.items()
        if fn == "Ref":
            return self.ref(arg)
        if fn == "Fn::GetAtt":
            logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
            return self.getatt(logical, attr)
        if fn == "Fn::Sub":
            return self.sub(arg)
        if fn == "Fn::Join":
            sep, items = arg
            parts = [self.strings(x) for x in self.list_items(items)]
            return [sep.join(p) for p in itertools.product(*parts)]
        if fn == "Fn::If":
            cond, yes, no = arg
            return self.strings(yes if self.condition(cond) else no)
        if fn == "Fn::Select":
            index, items = arg
            items = self.list_items(items)
            return self.strings(items[int(self.strings(index)[0])])
        raise TemplateError(f"unsupported intrinsic {fn}")

    def list_items(self, items):
        if isinstance(items, dict) and len(items) == 1 and "Fn::Split" in items:
            sep, source = items["Fn::Split"]
            alternatives = self.strings(source)
            if len(alternatives) != 1:
                raise TemplateError(f"Fn::Split of several alternatives {alternatives!r}")
            return alternatives[0].split(sep)
        if isinstance(items, dict):
            if is_if(items):
                cond, yes, no = items["Fn::If"]
                return self.list_items(yes if self.condition(cond) else no)
            raise TemplateError(f"cannot resolve list {items!r}")
        return [x for x in items if not (isinstance(x, dict) and x.get("Ref") == "AWS::NoValue")]

    def sub(self, arg):
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        pieces = re.split(r"(\$\{[^}]+\})", text)
        options = []
        for piece in pieces:
            m = re.fullmatch(r"\$\{([^}!]+)\}", piece)
            if not m:
                options.append([piece.replace("${!", "${")])
                continue
            name = m.group(1)
            if name in variables:
                options.append(self.strings(variables[name]))
            elif "." in name and name.split(".", 1)[0] in self.resources:
                options.append(self.getatt(*name.split(".", 1)))
            else:
                options.append(self.ref(name))
        return ["".join(p) for p in itertools.product(*options)]

    def resource(self, logical):
        if logical not in self.resources:
            raise TemplateError(f"{logical} is not a resource or parameter of the template")
        return self.resources[logical]

    def names(self, logical):
        """Physical name alternatives; `*` when CloudFormation generates it."""
        res = self.resource(logical)
        prop = NAME_PROPERTIES.get(res["Type"])
        given = (res.get("Properties") or {}).get(prop) if prop else None
        names = self.strings(given) if given is not None else ["*"]
        for local in LOCAL_NAMES.get(res["Type"], {}).get(logical, []):
            names += self.sub(local)
        return list(dict.fromkeys(names))

    def ref(self, name):
        if name in self.pseudo:
            v = self.pseudo[name]
            if v is NO_VALUE:
                raise TemplateError("AWS::NoValue used as a string")
            return [v]
        if name in self.parameters:
            return [self.parameters[name]]
        res = self.resource(name)
        kind = res["Type"]
        if kind == "AWS::SQS::Queue":
            return [f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{n}" for n in self.names(name)]
        if kind in ("AWS::SNS::Topic",):
            return [f"arn:{PARTITION}:sns:{REGION}:{ACCOUNT}:{n}" for n in self.names(name)]
        if kind == "AWS::SecretsManager::Secret":
            return self.getatt(name, "Arn")
        if kind == "AWS::IAM::ManagedPolicy":
            return [f"arn:{PARTITION}:iam::{ACCOUNT}:policy/{n}" for n in self.names(name)]
        if kind in NAME_PROPERTIES:
            return self.names(name)
        raise TemplateError(f"Ref of {name} ({kind}) is not supported")

    def getatt(self, logical, attr):
        kind = self.resource(logical)["Type"]
        names = self.names(logical)
        arns = {
            "AWS::DynamoDB::Table": "arn:{p}:dynamodb:{r}:{a}:table/{n}",
            "AWS::SQS::Queue": "arn:{p}:sqs:{r}:{a}:{n}",
            "AWS::S3::Bucket": "arn:{p}:s3:::{n}",
            "AWS::SNS::Topic": "arn:{p}:sns:{r}:{a}:{n}",
            # Secrets Manager appends six random characters to the name.
            "AWS::SecretsManager::Secret": "arn:{p}:secretsmanager:{r}:{a}:secret:{n}-??????",
            "AWS::Logs::LogGroup": "arn:{p}:logs:{r}:{a}:log-group:{n}:*",
            "AWS::Lambda::Function": "arn:{p}:lambda:{r}:{a}:function:{n}",
            "AWS::IAM::Role": "arn:{p}:iam::{a}:role/{n}",
        }
        if attr == "Arn" and kind in arns:
            return [arns[kind].format(p=PARTITION, r=REGION, a=ACCOUNT, n=n) for n in names]
        if (kind, attr) in (("AWS::SQS::Queue", "QueueName"), ("AWS::SNS::Topic", "TopicName"),
                            ("AWS::DynamoDB::Table", "TableName")):
            return names
        if (kind, attr) == ("AWS::SQS::Queue", "QueueUrl"):
            return self.ref(logical)
        if (kind, attr) == ("AWS::SNS::Topic", "TopicArn"):
            return self.getatt(logical, "Arn")
        raise TemplateError(f"Fn::GetAtt {logical}.{attr} ({kind}) is not supported")


def is_intrinsic(node):
    return len(node) == 1 and next(iter(node)) in (
        "Ref", "Fn::GetAtt", "Fn::Sub", "Fn::Join", "Fn::If", "Fn::Select")


def is_if(node):
    return isinstance(node, dict) and len(node) == 1 and "Fn::If" in node


# --- policies -------------------------------------------------------------------

class Statement:
    def __init__(self, raw, origin):
        self.origin = origin
        self.sid = raw.get("Sid")
        self.effect = raw.get("Effect")
        self.actions = as_list(raw.get("Action"))
        self.not_actions = as_list(raw.get("NotAction"))
        self.resources = as_list(raw.get("Resource"))
        self.not_resources = as_list(raw.get("NotResource"))
        self.conditional = bool(raw.get("Condition"))
        self.resource_groups = [[r] for r in self.resources]
        if self.effect not in ("Allow", "Deny"):
            raise TemplateError(f"{origin}: Effect {self.effect!r}")
        if bool(raw.get("Action") is not None) == bool(raw.get("NotAction") is not None):
            raise TemplateError(f"{origin}: exactly one of Action and NotAction")
        if bool(raw.get("Resource") is not None) == bool(raw.get("NotResource") is not None):
            raise TemplateError(f"{origin}: exactly one of Resource and NotResource")

    def matches(self, action, resource):
        if self.actions:
            hit = any(glob(p, action, fold=True) for p in self.actions)
        else:
            hit = not any(glob(p, action, fold=True) for p in self.not_actions)
        if not hit:
            return False
        if self.resources:
            return any(glob(p, resource) for p in self.resources)
        return not any(glob(p, resource) for p in self.not_resources)

    def where(self):
        return f"{self.origin}" + (f" Sid {self.sid}" if self.sid else "")


def as_list(v):
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


_GLOBS = {}


def glob(pattern, value, fold=False):
    """IAM's matching: `*` any run of characters (`/` and `:` included),
    `?` one character; actions ignore case, resources do not."""
    key = (pattern, fold)
    rx = _GLOBS.get(key)
    if rx is None:
        body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
        rx = _GLOBS[key] = re.compile(body, re.S | (re.I if fold else 0))
    return rx.fullmatch(value) is not None


def decide(statements, action, resource):
    """("Deny"|"Allow"|"ImplicitDeny", the deciding statement or None).
    An explicit Deny wins over any Allow; nothing matching is a deny too."""
    allow = None
    for s in statements:
        if not s.matches(action, resource):
            continue
        if s.effect == "Deny":
            return "Deny", s
        if not s.conditional and allow is None:
            allow = s
    return ("Allow", allow) if allow else ("ImplicitDeny", None)


def document_statements(resolver, document, origin):
    out = []
    for raw in as_list(document.get("Statement")):
        # A statement kept or dropped by a condition (`!If [C, {...}, NoValue]`).
        while is_if(raw):
            cond, yes, no = raw["Fn::If"]
            raw = yes if resolver.condition(cond) else no
        if raw == {"Ref": "AWS::NoValue"}:
            continue
        statement = Statement(resolver.value(raw), origin)
        # Each Resource entry with its alternatives (a template name and its
        # local one), so the review lists one grant once, not once a name.
        statement.resource_groups = [resolver.value([r]) for r in as_list(raw.get("Resource"))]
        out.append(statement)
    return out


def refers_to(resolver, items, logical):
    return any(isinstance(i, dict) and i.get("Ref") == logical for i in as_list(items))


def role_statements(template, resolver, role):
    """Everything that grants to or limits `role`: its inline policies, its
    managed policies (AWS's, vendored; the template's), and the template's
    policies that name it."""
    resources = template.get("Resources", {})
    props = resources[role].get("Properties") or {}
    out = []
    if props.get("PermissionsBoundary"):
        raise TemplateError(f"{role}: permission boundaries are not evaluated by this check")
    for policy in props.get("Policies") or []:
        out += document_statements(resolver, policy["PolicyDocument"],
                                   f"{role} inline {policy.get('PolicyName')}")
    managed = aws_managed_policies()
    for entry in as_list(props.get("ManagedPolicyArns")):
        if isinstance(entry, dict) and "Ref" in entry and entry["Ref"] in resources:
            continue  # the template's own, taken below by its Roles
        for arn in resolver.strings(entry):
            if arn not in managed:
                raise TemplateError(f"{role}: managed policy {arn} is neither in the template "
                                    f"nor vendored in {MANAGED_POLICIES_FILE}")
            out += document_statements(resolver, managed[arn], f"{role} managed {arn}")
    for logical, res in resources.items():
        p = res.get("Properties") or {}
        kind = res.get("Type")
        attached = (
            (kind in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy")
             and refers_to(resolver, p.get("Roles"), role))
            or (kind == "AWS::IAM::ManagedPolicy"
                and refers_to(resolver, props.get("ManagedPolicyArns"), logical))
            or (kind == "AWS::IAM::RolePolicy" and refers_to(resolver, p.get("RoleName"), role))
        )
        if attached:
            out += document_statements(resolver, p["PolicyDocument"], logical)
    return out


def function_role(template, function):
    res = template.get("Resources", {}).get(function)
    if res is None or res.get("Type") != "AWS::Lambda::Function":
        raise TemplateError(f"{function} is not a Lambda function of the template")
    role = res["Properties"].get("Role")
    if isinstance(role, dict) and "Fn::GetAtt" in role:
        logical = role["Fn::GetAtt"]
        logical = logical[0] if isinstance(logical, list) else logical.split(".")[0]
        return logical
    raise TemplateError(f"{function}: Role {role!r} is not a role of the template")


class Principals:
    """Each caller the records name, with its label and its statements."""

    def __init__(self, template, parameters=None):
        self.template = sam_transform(template)
        self.resolver = Resolver(self.template, parameters)
        self.statements = {}
        self.labels = {}
        self.problems = []
        for app, function in FUNCTIONS.items():
            role = function_role(self.template, function)
            self.labels[app] = function
            self.statements[app] = role_statements(self.template, self.resolver, role)
        resources = self.template.get("Resources", {})
        operator = resources.get(OPERATOR_POLICY)
        self.labels[OPERATOR_APP] = OPERATOR_POLICY
        if operator is None or operator.get("Type") != "AWS::IAM::ManagedPolicy":
            self.problems.append(f"MISSING {OPERATOR_POLICY}: no AWS::IAM::ManagedPolicy for the "
                                 f"operator CLI ({OPERATOR_APP}); its calls are all denied")
            self.statements[OPERATOR_APP] = []
        else:
            self.statements[OPERATOR_APP] = document_statements(
                self.resolver, operator["Properties"]["PolicyDocument"], OPERATOR_POLICY)
            output = (self.template.get("Outputs") or {}).get(OPERATOR_OUTPUT, {})
            if output.get("Value") != {"Ref": OPERATOR_POLICY}:
                self.problems.append(f"MISSING output {OPERATOR_OUTPUT}: !Ref {OPERATOR_POLICY}, "
                                     "for the operators' users or roles to attach")


# --- the records ------------------------------------------------------------------

def read_calls(paths):
    calls = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    calls.append(json.loads(line))
                except ValueError:
                    # A test process killed mid-write leaves half a line.
                    print(f"note: {path}:{n}: not a JSON line, skipped", file=sys.stderr)
    return calls


class Verdicts:
    def __init__(self, principals, calls):
        self.denied = defaultdict(set)      # (label, action) -> resources
        self.unjudged = Counter()           # app with no principal -> calls
        self.unrecognized = Counter()       # (label, service, error)
        self.counts = Counter()             # label -> calls
        self.actions = defaultdict(set)     # label -> actions
        self.exercised = defaultdict(set)   # app -> {(action, resource)}
        self.harness = 0
        for call in calls:
            app = call.get("app")
            if app is None:
                self.harness += 1
                continue
            if app not in principals.statements:
                self.unjudged[app] += 1
                continue
            label = principals.labels[app]
            self.counts[label] += 1
            if not call.get("action") or not call.get("service"):
                self.unrecognized[(label, call.get("service"), call.get("error"))] += 1
                continue
            action = f"{call['service']}:{call['action']}"
            self.actions[label].add(action)
            for resource in call.get("resources") or ["*"]:
                self.exercised[app].add((action, resource))
        for app, pairs in self.exercised.items():
            label = principals.labels[app]
            for action, resource in pairs:
                verdict, _ = decide(principals.statements[app], action, resource)
                if verdict != "Allow":
                    self.denied[(label, action)].add((resource, verdict))

    @property
    def failed(self):
        return bool(self.denied or self.unjudged or self.unrecognized)


def unexercised(principals, verdicts):
    """(label, action pattern, resource pattern, reason) of each grant no
    recorded call matched."""
    out = []
    for app, statements in principals.statements.items():
        label = principals.labels[app]
        used = verdicts.exercised.get(app, set())
        for s in statements:
            if s.effect != "Allow":
                continue
            actions = s.actions or [f"NotAction {' '.join(s.not_actions)}"]
            groups = s.resource_groups or [[f"NotResource {' '.join(s.not_resources)}"]]
            for a in actions:
                for group in groups:
                    if any(s.matches(act, res) and (not s.actions or glob(a, act, fold=True))
                           and (not s.resources or any(glob(r, res) for r in group))
                           for act, res in used):
                        continue
                    out.append((label, a, group[0], LAMBDA_SERVICE_USES.get(a.lower())))
    return sorted(set(out), key=lambda x: (x[0], x[1].lower(), x[2]))


SHOWN_RESOURCES = 3


def report(principals, verdicts, expect=(), out=None):
    out = out or sys.stdout
    failed = verdicts.failed
    for problem in principals.problems:
        print(problem, file=out)
    for (label, action), resources in sorted(verdicts.denied.items()):
        resources = sorted(resources)
        for resource, verdict in resources[:SHOWN_RESOURCES]:
            why = " (explicit Deny)" if verdict == "Deny" else ""
            print(f"DENIED {label} {action} {resource}{why}", file=out)
        if len(resources) > SHOWN_RESOURCES:
            print(f"DENIED {label} {action} ... and {len(resources) - SHOWN_RESOURCES} "
                  "more resources of the same call", file=out)
    for (label, service, error), n in sorted(verdicts.unrecognized.items(), key=str):
        print(f"UNRECOGNIZED {label}: {n} {service} calls the recorder could not name"
              + (f" ({error})" if error else ""), file=out)
    for app, n in sorted(verdicts.unjudged.items()):
        print(f"UNJUDGED app {app}: {n} calls, and no role in the template is its", file=out)
    for app in expect:
        label = principals.labels.get(app, app)
        if not verdicts.counts.get(label):
            print(f"NO CALLS from {app} ({label}): were the calls recorded with its app name?",
                  file=out)
            failed = True
    if not failed:
        for app, label in principals.labels.items():
            n = verdicts.counts.get(label, 0)
            actions = sorted(verdicts.actions.get(label, ()))
            print(f"ok {label} (app {app}): {n} calls, {len(actions)} distinct actions"
                  + (f": {', '.join(actions)}" if actions else ""), file=out)
        print(f"ok: every recorded call is allowed ({verdicts.harness} test-harness calls "
              "without an app name not judged)", file=out)
    for label, action, resource, reason in unexercised(principals, verdicts):
        print(f"granted but not exercised by any test: {label} {action} {resource}"
              + (f" (used by the Lambda service, not the code: {reason})" if reason else ""),
              file=out)
    return 1 if failed else 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("template")
    parser.add_argument("logs", nargs="*", help="JSON lines of tests/moto_server.py")
    parser.add_argument("--expect", action="append", default=[], metavar="APP",
                        help="fail when APP made no recorded call (an empty log proves nothing)")
    args = parser.parse_args(argv)
    try:
        principals = Principals(load_template(args.template))
    except TemplateError as e:
        print(f"cannot judge {args.template}: {e}", file=sys.stderr)
        return 2
    if not args.logs:
        print("note: no call logs given; only the grants are listed", file=sys.stderr)
    return report(principals, Verdicts(principals, read_calls(args.logs)), args.expect)


if __name__ == "__main__":
    sys.exit(main())
