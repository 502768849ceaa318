"""The IAM check's own tests: the evaluator, the intrinsics, and that the
real template fails the check as soon as a role loses an action a recorded
call needs."""
import copy
import io
import json
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import check_roles as cr  # noqa: E402

TEMPLATE = os.path.join(HERE, "..", "..", "infra", "template.yaml")
RECORDED = os.path.join(HERE, "fixtures", "recorded-calls.jsonl")


def stmt(effect="Allow", **raw):
    return cr.Statement({"Effect": effect, **raw}, "test")


class Matching(unittest.TestCase):
    def test_star_spans_colons_and_slashes_and_question_mark_is_one_character(self):
        self.assertTrue(cr.glob("arn:aws:s3:::*-reports/*", "arn:aws:s3:::p-x-reports/r/1.json"))
        self.assertTrue(cr.glob("arn:*", "arn:aws:sqs:us-east-1:1:q"))
        self.assertTrue(cr.glob("secret:p/token-??????", "secret:p/token-AbC123"))
        self.assertFalse(cr.glob("secret:p/token-??????", "secret:p/token-AbC12"))
        self.assertFalse(cr.glob("arn:aws:s3:::*-reports", "arn:aws:s3:::p-reports/x"))

    def test_actions_ignore_case_and_resources_do_not(self):
        s = stmt(Action="DynamoDB:putitem", Resource="arn:aws:dynamodb:*:*:table/T")
        self.assertTrue(s.matches("dynamodb:PutItem", "arn:aws:dynamodb:r:a:table/T"))
        self.assertFalse(s.matches("dynamodb:PutItem", "arn:aws:dynamodb:r:a:table/t"))

    def test_service_wildcard_in_actions(self):
        s = stmt(Action="sqs:*Message*", Resource="*")
        self.assertTrue(s.matches("sqs:ReceiveMessage", "q"))
        self.assertFalse(s.matches("sqs:GetQueueUrl", "q"))


class Decisions(unittest.TestCase):
    TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/p-links"

    def test_explicit_deny_wins_over_allow_whatever_the_order(self):
        allow = stmt(Action="dynamodb:*", Resource="*")
        deny = stmt("Deny", Action="dynamodb:DeleteItem", Resource=self.TABLE)
        for statements in ([allow, deny], [deny, allow]):
            self.assertEqual(cr.decide(statements, "dynamodb:DeleteItem", self.TABLE)[0], "Deny")
            self.assertEqual(cr.decide(statements, "dynamodb:GetItem", self.TABLE)[0], "Allow")

    def test_nothing_matching_is_an_implicit_deny(self):
        s = stmt(Action="dynamodb:GetItem", Resource=self.TABLE)
        self.assertEqual(cr.decide([s], "dynamodb:PutItem", self.TABLE), ("ImplicitDeny", None))
        self.assertEqual(cr.decide([s], "dynamodb:GetItem", self.TABLE + "x")[0], "ImplicitDeny")
        self.assertEqual(cr.decide([], "dynamodb:GetItem", self.TABLE)[0], "ImplicitDeny")

    def test_not_action_and_not_resource(self):
        everything_but_deletes = stmt(NotAction=["dynamodb:Delete*"], Resource="*")
        self.assertEqual(cr.decide([everything_but_deletes], "dynamodb:PutItem", self.TABLE)[0], "Allow")
        self.assertEqual(cr.decide([everything_but_deletes], "dynamodb:DeleteItem", self.TABLE)[0],
                         "ImplicitDeny")
        deny_elsewhere = stmt("Deny", Action="dynamodb:*", NotResource=[self.TABLE])
        allow = stmt(Action="dynamodb:*", Resource="*")
        self.assertEqual(cr.decide([allow, deny_elsewhere], "dynamodb:GetItem", self.TABLE)[0], "Allow")
        self.assertEqual(cr.decide([allow, deny_elsewhere], "dynamodb:GetItem", self.TABLE + "2")[0],
                         "Deny")

    def test_a_call_without_a_resource_needs_a_grant_on_star(self):
        scoped = stmt(Action="sqs:ListQueues", Resource="arn:aws:sqs:*:*:p-*")
        self.assertEqual(cr.decide([scoped], "sqs:ListQueues", "*")[0], "ImplicitDeny")
        self.assertEqual(cr.decide([stmt(Action="sqs:ListQueues", Resource="*")],
                                   "sqs:ListQueues", "*")[0], "Allow")

    def test_conditions_are_not_evaluated_so_they_never_grant(self):
        conditional = stmt(Action="s3:GetObject", Resource="*",
                           Condition={"Bool": {"aws:SecureTransport": "true"}})
        self.assertEqual(cr.decide([conditional], "s3:GetObject", "arn:aws:s3:::b/k")[0], "ImplicitDeny")
        deny = stmt("Deny", Action="s3:*", Resource="*", Condition={"Bool": {"x": "y"}})
        self.assertEqual(cr.decide([stmt(Action="s3:*", Resource="*"), deny], "s3:GetObject", "k")[0],
                         "Deny")

    def test_a_statement_needs_exactly_one_of_action_and_notaction(self):
        with self.assertRaises(cr.TemplateError):
            stmt(Action="s3:*", NotAction="s3:Get*", Resource="*")
        with self.assertRaises(cr.TemplateError):
            stmt(Action="s3:*")


MINI = {
    "Parameters": {"ResourcePrefix": {"Type": "String", "Default": "hubspot-warp"},
                   "AlertEmail": {"Type": "String", "Default": ""},
                   "Stage": {"Type": "String", "Default": "prod"}},
    "Conditions": {"HasAlertEmail": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlertEmail"}, ""]}]},
                   "IsProd": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]},
                   "ProdWithMail": {"Fn::And": [{"Condition": "IsProd"}, {"Condition": "HasAlertEmail"}]}},
    "Resources": {
        "Table": {"Type": "AWS::DynamoDB::Table",
                  "Properties": {"TableName": {"Fn::Sub": "${ResourcePrefix}-links"}}},
        "Queue": {"Type": "AWS::SQS::Queue",
                  "Properties": {"QueueName": {"Fn::Join": ["-", [{"Ref": "ResourcePrefix"}, "sync"]]}}},
        "Unnamed": {"Type": "AWS::SQS::Queue", "Properties": {}},
        "Secret": {"Type": "AWS::SecretsManager::Secret",
                   "Properties": {"Name": {"Fn::Sub": "${ResourcePrefix}/warp-api-token"}}},
        "Logs": {"Type": "AWS::Logs::LogGroup",
                 "Properties": {"LogGroupName": {"Fn::Sub": "/aws/lambda/${ResourcePrefix}-x"}}},
        "ReportsBucket": {"Type": "AWS::S3::Bucket", "Properties": {
            "BucketName": {"Fn::Sub": "${ResourcePrefix}-reports-${AWS::AccountId}-${AWS::Region}"}}},
    },
}


class Intrinsics(unittest.TestCase):
    def setUp(self):
        self.r = cr.Resolver(copy.deepcopy(MINI))

    def test_resource_prefix_is_a_wildcard_and_other_parameters_their_defaults(self):
        self.assertEqual(self.r.strings({"Ref": "ResourcePrefix"}), ["*"])
        self.assertEqual(self.r.strings({"Fn::Sub": "${Stage}:${AWS::Region}:${AWS::AccountId}"}),
                         ["prod:us-east-1:123456789012"])

    def test_getatt_and_ref_by_resource_type(self):
        self.assertEqual(self.r.strings({"Fn::GetAtt": ["Table", "Arn"]}),
                         ["arn:aws:dynamodb:us-east-1:123456789012:table/*-links"])
        self.assertEqual(self.r.strings({"Fn::GetAtt": "Queue.Arn"}),
                         ["arn:aws:sqs:us-east-1:123456789012:*-sync"])
        self.assertEqual(self.r.strings({"Fn::GetAtt": ["Queue", "QueueName"]}), ["*-sync"])
        self.assertEqual(self.r.strings({"Ref": "Queue"}),
                         ["https://sqs.us-east-1.amazonaws.com/123456789012/*-sync"])
        self.assertEqual(self.r.strings({"Ref": "Secret"}),
                         ["arn:aws:secretsmanager:us-east-1:123456789012:secret:*/warp-api-token-??????"])
        self.assertEqual(self.r.strings({"Fn::GetAtt": ["Logs", "Arn"]}),
                         ["arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/*-x:*"])
        self.assertEqual(self.r.strings({"Fn::GetAtt": ["Unnamed", "Arn"]}),
                         ["arn:aws:sqs:us-east-1:123456789012:*"])

    def test_sub_with_its_own_variables_and_attribute_shorthand(self):
        self.assertEqual(self.r.strings({"Fn::Sub": ["${T}/index/*", {"T": {"Fn::GetAtt": ["Table", "Arn"]}}]}),
                         ["arn:aws:dynamodb:us-east-1:123456789012:table/*-links/index/*"])
        self.assertEqual(self.r.strings({"Fn::Sub": "${Table.Arn}/stream/${!Literal}"}),
                         ["arn:aws:dynamodb:us-east-1:123456789012:table/*-links/stream/${Literal}"])

    def test_the_local_bucket_name_is_an_alternative_of_the_deployed_one(self):
        self.assertEqual(self.r.strings({"Fn::Sub": "${ReportsBucket.Arn}/*"}),
                         ["arn:aws:s3:::*-reports-123456789012-us-east-1/*", "arn:aws:s3:::*-reports/*"])

    def test_if_follows_the_conditions(self):
        doc = {"Resource": [{"Fn::If": ["HasAlertEmail", "mail", {"Ref": "AWS::NoValue"}]},
                            {"Fn::If": ["IsProd", {"Fn::GetAtt": ["Table", "Arn"]}, "other"]},
                            {"Fn::If": ["ProdWithMail", "both", "not-both"]}]}
        self.assertEqual(self.r.value(doc), {"Resource": [
            "arn:aws:dynamodb:us-east-1:123456789012:table/*-links", "not-both"]})
        with_mail = cr.Resolver(copy.deepcopy(MINI), {"AlertEmail": "ops@example.com"})
        self.assertEqual(with_mail.value(doc)["Resource"][0], "mail")

    def test_a_reference_to_nothing_is_an_error_not_a_wildcard(self):
        with self.assertRaises(cr.TemplateError):
            self.r.strings({"Fn::GetAtt": ["Missing", "Arn"]})
        with self.assertRaises(cr.TemplateError):
            self.r.strings({"Ref": "Missing"})
        with self.assertRaises(cr.TemplateError):
            self.r.strings({"Fn::GetAtt": ["Table", "StreamArn"]})


def load_calls(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def run(principals, calls):
    out = io.StringIO()
    code = cr.report(principals, cr.Verdicts(principals, calls), out=out)
    return code, out.getvalue()


def without_action(principals, app, action):
    """The principals with `action` taken out of every statement of `app`
    that names it (a statement left with no action goes)."""
    mutated = copy.copy(principals)
    mutated.statements = dict(principals.statements)
    kept = []
    for s in principals.statements[app]:
        s = copy.copy(s)
        s.actions = [a for a in s.actions if a.lower() != action.lower()]
        if s.actions or s.not_actions:
            kept.append(s)
    mutated.statements[app] = kept
    return mutated


class RealTemplate(unittest.TestCase):
    """infra/template.yaml with calls recorded by a real test run
    (fixtures/recorded-calls.jsonl, see fixtures/README)."""

    @classmethod
    def setUpClass(cls):
        cls.template = cr.load_template(TEMPLATE)
        cls.principals = cr.Principals(cls.template)
        cls.calls = load_calls(RECORDED)

    def test_the_recorded_calls_pass(self):
        code, out = run(self.principals, self.calls)
        self.assertEqual(code, 0, out)
        for app in cr.FUNCTIONS:
            self.assertIn(f"(app {app}): ", out)

    def test_the_recording_covers_every_function(self):
        apps = {c["app"] for c in self.calls}
        self.assertLessEqual(set(cr.FUNCTIONS), apps)

    def test_removing_any_exercised_action_fails_naming_it(self):
        exercised = {(c["app"], f"{c['service']}:{c['action']}") for c in self.calls
                     if c.get("app") in self.principals.statements}
        self.assertGreater(len(exercised), 10)
        for app, action in sorted(exercised):
            with self.subTest(app=app, action=action):
                code, out = run(without_action(self.principals, app, action), self.calls)
                self.assertEqual(code, 1, out)
                self.assertIn(f"DENIED {self.principals.labels[app]} {action} ", out)

    def test_removing_put_item_from_the_receivers_template_statement_fails(self):
        template = copy.deepcopy(self.template)
        role = template["Resources"]["WebhookReceiverRole"]["Properties"]
        for policy in role["Policies"]:
            for s in policy["PolicyDocument"]["Statement"]:
                if isinstance(s["Action"], list) and "dynamodb:PutItem" in s["Action"]:
                    s["Action"].remove("dynamodb:PutItem")
        code, out = run(cr.Principals(template), self.calls)
        self.assertEqual(code, 1)
        self.assertRegex(out, r"DENIED WebhookReceiverFunction dynamodb:PutItem "
                              r"arn:aws:dynamodb:us-east-1:123456789012:table/\S+-webhook-events")

    def test_an_explicit_deny_in_the_template_overrides_the_roles_allow(self):
        template = copy.deepcopy(self.template)
        template["Resources"]["DenyWrites"] = {"Type": "AWS::IAM::ManagedPolicy", "Properties": {
            "Roles": [{"Ref": "SyncConsumerRole"}],
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Deny", "Action": "dynamodb:BatchWriteItem", "Resource": "*"}]}}}
        code, out = run(cr.Principals(template), self.calls)
        self.assertEqual(code, 1)
        self.assertIn("DENIED SyncConsumerFunction dynamodb:BatchWriteItem", out)
        self.assertIn("(explicit Deny)", out)

    def test_sam_generated_roles_carry_the_vendored_managed_policies(self):
        template = copy.deepcopy(self.template)
        fn = template["Resources"]["SyncConsumerFunction"]["Properties"]
        del fn["Role"]
        fn["Policies"] = []
        principals = cr.Principals(template)
        code, out = run(principals, [])
        self.assertIn("granted but not exercised by any test: SyncConsumerFunction "
                      "sqs:ReceiveMessage * (used by the Lambda service", out)

    def test_the_operator_policy_must_exist(self):
        template = copy.deepcopy(self.template)
        del template["Resources"][cr.OPERATOR_POLICY]
        del template["Outputs"][cr.OPERATOR_OUTPUT]
        hubwarp_calls = [c for c in self.calls if c["app"] == cr.OPERATOR_APP]
        self.assertTrue(hubwarp_calls)
        code, out = run(cr.Principals(template), hubwarp_calls)
        self.assertEqual(code, 1)
        self.assertIn(f"MISSING {cr.OPERATOR_POLICY}", out)
        self.assertIn(f"DENIED {cr.OPERATOR_POLICY} ", out)

    def test_a_grant_is_reviewed_once_under_its_deployed_name_and_used_by_its_local_one(self):
        _, unused = run(self.principals, [])
        lines = [l for l in unused.splitlines()
                 if l.startswith("granted but not exercised by any test: NightlyReconcilerFunction s3:PutObject ")]
        self.assertEqual(lines, ["granted but not exercised by any test: NightlyReconcilerFunction "
                                 "s3:PutObject arn:aws:s3:::*-reports-123456789012-us-east-1/*"])
        self.assertTrue(any(c["app"] == "nightly-reconciler" and c["action"] == "PutObject"
                            for c in self.calls))
        _, out = run(self.principals, self.calls)
        self.assertNotIn("NightlyReconcilerFunction s3:PutObject", out)

    def test_every_lambda_service_grant_is_listed_with_its_reason(self):
        _, out = run(self.principals, self.calls)
        for fn in cr.FUNCTIONS.values():
            self.assertRegex(out, rf"not exercised by any test: {fn} logs:PutLogEvents "
                                  r"arn:aws:logs:\S+ \(used by the Lambda service")


class Cli(unittest.TestCase):
    def test_an_app_with_no_calls_fails_when_expected(self):
        log = os.path.join(HERE, "fixtures", "recorded-calls.jsonl")
        out = io.StringIO()
        sys_stdout, sys.stdout = sys.stdout, out
        try:
            code = cr.main([TEMPLATE, log, "--expect", "no-such-app"])
        finally:
            sys.stdout = sys_stdout
        self.assertEqual(code, 1)
        self.assertIn("NO CALLS from no-such-app", out.getvalue())


if __name__ == "__main__":
    unittest.main()
