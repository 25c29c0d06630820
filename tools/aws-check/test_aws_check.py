"""Offline tests of make aws-check: the skip path, the probe's handler against a small fake
Secrets Manager, the report builder on canned observations, the clean-up in a finally, and
the IAM lists against the calls the code makes. No network, no moto, no AWS account.

Run: .venv/bin/python -m unittest discover -s tools/aws-check -p 'test_*.py'
"""

import argparse
import contextlib
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid
import zipfile
from datetime import datetime, timezone
from email.utils import formatdate
from types import SimpleNamespace
from unittest import mock

import boto3
import botocore.session
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, ProfileNotFound
from botocore.validate import validate_parameters

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aws_check  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "aws_check.py")
README = os.path.join(HERE, "..", "..", "README.md")
ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:keyshift-check-x-s-AbCdEf"
OLD, TOKEN = "00000000-old0-0000-0000-000000000000", "11111111-tok1-1111-1111-111111111111"
ROTATION_TOKEN = "ROTATION-TOKEN-MUST-NOT-BE-LOGGED-0123456789"


ISOLATED = mock.patch.dict(os.environ)


def setUpModule():
    """No developer's AWS configuration, credentials or instance metadata reaches a test."""
    ISOLATED.start()
    for k in [k for k in os.environ if k.startswith("AWS_") or k == "KEYSHIFT_AWS_CHECK"]:
        del os.environ[k]
    os.environ.update(
        AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_EC2_METADATA_DISABLED="true"
    )


def tearDownModule():
    ISOLATED.stop()


def read(path):
    with open(path) as f:
        return f.read()


def client_error(code, message="m"):
    return ClientError({"Error": {"Code": code, "Message": message}}, "Op")


def run_main(argv, env):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = aws_check.main(argv, env)
    return code, out.getvalue()


class SkipPath(unittest.TestCase):
    def test_without_opt_in_no_session_is_made(self):
        with mock.patch.object(aws_check.boto3, "Session") as session:
            code, out = run_main([], {"AWS_ACCESS_KEY_ID": "AKIA", "AWS_REGION": "eu-west-1"})
        self.assertEqual(code, 0)
        self.assertEqual(out.count("\n"), 1, out)
        self.assertIn("aws-check: skipped: KEYSHIFT_AWS_CHECK is not set", out)
        session.assert_not_called()

    def test_opt_in_must_be_exactly_1(self):
        with mock.patch.object(aws_check.boto3, "Session") as session:
            code, out = run_main([], {"KEYSHIFT_AWS_CHECK": "yes"})
        self.assertEqual(code, 0)
        self.assertIn("KEYSHIFT_AWS_CHECK is 'yes', not 1", out)
        session.assert_not_called()

    def check_missing(self, region, credentials, expected, absent=()):
        with mock.patch.object(aws_check.boto3, "Session") as session:
            session.return_value.region_name = region
            session.return_value.get_credentials.return_value = credentials
            code, out = run_main([], {"KEYSHIFT_AWS_CHECK": "1"})
        self.assertEqual(code, 0)
        self.assertTrue(out.startswith("aws-check: skipped: "), out)
        self.assertEqual(out.count("\n"), 1, out)
        for e in expected:
            self.assertIn(e, out)
        for a in absent:
            self.assertNotIn(a, out)
        session.return_value.client.assert_not_called()
        session.return_value.resource.assert_not_called()

    def test_aws_region_is_honoured(self):
        with mock.patch.object(aws_check.boto3, "Session") as session:
            session.return_value.get_credentials.return_value = None
            run_main([], {"KEYSHIFT_AWS_CHECK": "1", "AWS_REGION": "eu-north-1"})
            session.assert_called_once_with(region_name="eu-north-1")
            run_main([], {"KEYSHIFT_AWS_CHECK": "1"})
            session.assert_called_with(region_name=None)

    def test_opt_in_without_credentials(self):
        self.check_missing("eu-west-1", None, ["no AWS credentials"], ["no AWS region"])

    def test_opt_in_without_region(self):
        self.check_missing(None, object(), ["no AWS region"], ["no AWS credentials"])

    def test_opt_in_without_either_names_both(self):
        self.check_missing(None, None, ["no AWS region", "no AWS credentials"])

    def test_unusable_profile_is_a_skip(self):
        with mock.patch.object(aws_check.boto3, "Session", side_effect=ProfileNotFound(profile="nope")):
            code, out = run_main([], {"KEYSHIFT_AWS_CHECK": "1"})
        self.assertEqual(code, 0)
        self.assertIn("skipped: the AWS configuration cannot be used", out)

    def test_the_script_itself_skips_fast(self):
        p = subprocess.run([sys.executable, SCRIPT], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"^aws-check: skipped: KEYSHIFT_AWS_CHECK is not set[^\n]*\n$")


class FakeSecretsManager:
    """Just enough of Secrets Manager's label rules for the probe's calls; records them."""

    def __init__(self, versions, tags):
        self.versions = versions  # id -> {"stages": [...], "value": str or None}
        self.tags, self.calls = dict(tags), []
        members = {"RotationToken": None, "SecretId": None}
        self.meta = SimpleNamespace(
            service_model=SimpleNamespace(
                operation_model=lambda op: SimpleNamespace(input_shape=SimpleNamespace(members=members))
            )
        )

    def labels(self):
        return {k: list(v["stages"]) for k, v in self.versions.items() if v["stages"]}

    def describe_secret(self, SecretId):
        self.calls.append(("DescribeSecret", {}))
        return {
            "ARN": ARN,
            "VersionIdsToStages": self.labels(),
            "Tags": [{"Key": k, "Value": v} for k, v in self.tags.items()],
        }

    def list_secret_version_ids(self, SecretId, IncludeDeprecated=False, **kw):
        self.calls.append(("ListSecretVersionIds", {"IncludeDeprecated": IncludeDeprecated}))
        return {
            "Versions": [
                {
                    "VersionId": k,
                    "VersionStages": list(v["stages"]),
                    "CreatedDate": datetime(2025, 1, 1, tzinfo=timezone.utc),
                }
                for k, v in self.versions.items()
            ]
        }

    def get_secret_value(self, SecretId, VersionId=None, VersionStage=None):
        self.calls.append(("GetSecretValue", {"VersionId": VersionId, "VersionStage": VersionStage}))
        v = (
            self.versions.get(VersionId)
            if VersionId
            else next((v for v in self.versions.values() if VersionStage in v["stages"]), None)
        )
        if v is None or v["value"] is None or (VersionStage and VersionStage not in v["stages"]):
            raise client_error("ResourceNotFoundException")
        return {"SecretString": v["value"], "VersionId": VersionId}

    def get_random_password(self, **kw):
        self.calls.append(("GetRandomPassword", kw))
        return {"RandomPassword": "FRESH-RANDOM-VALUE-MUST-NOT-BE-LOGGED"}

    def put_secret_value(self, SecretId, ClientRequestToken, SecretString, VersionStages, **kw):
        self.calls.append(
            (
                "PutSecretValue",
                {
                    "ClientRequestToken": ClientRequestToken,
                    "SecretString": SecretString,
                    "VersionStages": VersionStages,
                    **kw,
                },
            )
        )
        old = self.versions.get(ClientRequestToken)
        if old and old["value"] is not None and old["value"] != SecretString:
            raise client_error("ResourceExistsException")
        for v in self.versions.values():
            v["stages"] = [s for s in v["stages"] if s not in VersionStages]
        self.versions[ClientRequestToken] = {"stages": list(VersionStages), "value": SecretString}

    def update_secret_version_stage(self, SecretId, VersionStage, MoveToVersionId=None, RemoveFromVersionId=None):
        self.calls.append(
            (
                "UpdateSecretVersionStage",
                {
                    "VersionStage": VersionStage,
                    "MoveToVersionId": MoveToVersionId,
                    "RemoveFromVersionId": RemoveFromVersionId,
                },
            )
        )
        if RemoveFromVersionId:
            self.versions[RemoveFromVersionId]["stages"].remove(VersionStage)
            if VersionStage == "AWSCURRENT":
                for v in self.versions.values():
                    v["stages"] = [s for s in v["stages"] if s != "AWSPREVIOUS"]
                self.versions[RemoveFromVersionId]["stages"].append("AWSPREVIOUS")
        if MoveToVersionId:
            self.versions[MoveToVersionId]["stages"].append(VersionStage)

    def tag_resource(self, SecretId, Tags):
        self.calls.append(("TagResource", {"Tags": Tags}))
        self.tags.update({t["Key"]: t["Value"] for t in Tags})


class ProbeHandler(unittest.TestCase):
    def setUp(self):
        self.probe = aws_check.Probe.module()

    def fake(self, scenario, token_value="PENDING-VALUE-MUST-NOT-BE-LOGGED"):
        return FakeSecretsManager(
            {
                OLD: {"stages": ["AWSCURRENT"], "value": "OLD-VALUE-MUST-NOT-BE-LOGGED"},
                TOKEN: {"stages": ["AWSPENDING"], "value": token_value},
            },
            {"probe:scenario": scenario},
        )

    def invoke(self, fake, step, rotation_token=ROTATION_TOKEN, expect_error=None):
        self.probe["SM"] = fake
        event = {"Step": step, "SecretId": ARN, "ClientRequestToken": TOKEN}
        if rotation_token:
            event["RotationToken"] = rotation_token
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            if expect_error:
                with self.assertRaises(expect_error):
                    self.probe["handler"](event, None)
            else:
                self.assertEqual(self.probe["handler"](event, None), {"ok": True})
        lines = out.getvalue().splitlines()
        self.assertEqual(len(lines), 1, lines)
        for secret in ("MUST-NOT-BE-LOGGED", ROTATION_TOKEN):
            self.assertNotIn(secret, out.getvalue())
        rec = json.loads(lines[0])
        self.assertEqual((rec["probe"], rec["step"], rec["token"]), ("step", step, TOKEN))
        self.assertIs(rec["rotation_token"], rotation_token is not None)
        self.assertIn("before", rec)
        self.assertIn("after", rec)
        self.assertTrue(rec["versions"] and all({"id", "stages", "created"} <= set(v) for v in rec["versions"]))
        self.assertIn(("ListSecretVersionIds", {"IncludeDeprecated": True}), fake.calls)
        return rec

    def ops(self, fake, op):
        return [kw for name, kw in fake.calls if name == op]

    def test_source_compiles_and_is_packaged(self):
        compile(aws_check.PROBE_SOURCE, "probe.py", "exec")
        with zipfile.ZipFile(io.BytesIO(aws_check.Probe.package())) as z:
            self.assertEqual(z.namelist(), ["probe.py"])
            self.assertEqual(z.read("probe.py").decode(), aws_check.PROBE_SOURCE)

    def test_create_secret_fills_the_placeholder_with_the_rotation_token(self):
        fake = self.fake("baseline", token_value=None)
        rec = self.invoke(fake, "createSecret")
        (put,) = self.ops(fake, "PutSecretValue")
        self.assertEqual((put["ClientRequestToken"], put["VersionStages"]), (TOKEN, ["AWSPENDING"]))
        self.assertEqual(put["RotationToken"], ROTATION_TOKEN)
        self.assertEqual((rec["put"], rec["put_rotation_token"]), ("ok", "parameter"))

    def test_create_secret_without_rotation_token_sends_none(self):
        fake = self.fake("baseline", token_value=None)
        self.invoke(fake, "createSecret", rotation_token=None)
        self.assertNotIn("RotationToken", self.ops(fake, "PutSecretValue")[0])

    def test_create_secret_again_does_not_put(self):
        fake = self.fake("baseline")
        rec = self.invoke(fake, "createSecret")
        self.assertEqual(self.ops(fake, "PutSecretValue"), [])
        self.assertTrue(rec["put"].startswith("skipped"))

    def test_baseline_finish_moves_current_from_the_old_version(self):
        fake = self.fake("baseline")
        rec = self.invoke(fake, "finishSecret")
        self.assertEqual(
            self.ops(fake, "UpdateSecretVersionStage"),
            [{"VersionStage": "AWSCURRENT", "MoveToVersionId": TOKEN, "RemoveFromVersionId": OLD}],
        )
        self.assertEqual(self.ops(fake, "PutSecretValue"), [])
        self.assertIn("AWSCURRENT", rec["after"][TOKEN])

    def test_finish_without_move_changes_nothing(self):
        fake = self.fake("finish-without-move")
        rec = self.invoke(fake, "finishSecret")
        self.assertEqual(self.ops(fake, "UpdateSecretVersionStage") + self.ops(fake, "PutSecretValue"), [])
        self.assertEqual(rec["before"], rec["after"])

    def check_copy(self, scenario, passes_token):
        fake = self.fake(scenario)
        rec = self.invoke(fake, "finishSecret")
        (put,) = self.ops(fake, "PutSecretValue")
        self.assertNotEqual(put["ClientRequestToken"], TOKEN)
        self.assertEqual(put["ClientRequestToken"], rec["copy"])
        self.assertEqual(put["VersionStages"], ["AWSPENDING"])
        self.assertEqual(put["SecretString"], "PENDING-VALUE-MUST-NOT-BE-LOGGED")
        self.assertEqual(put.get("RotationToken"), ROTATION_TOKEN if passes_token else None)
        self.assertEqual(
            [u for u in self.ops(fake, "UpdateSecretVersionStage") if u["VersionStage"] == "AWSCURRENT"], []
        )
        self.assertEqual(rec["copy_put"], "ok")
        self.assertEqual(rec["after"][rec["copy"]], ["AWSPENDING"])

    def test_copy_in_finish_puts_a_copy_with_the_rotation_token(self):
        self.check_copy("copy-in-finish", passes_token=True)

    def test_copy_without_token_puts_a_copy_without_it(self):
        self.check_copy("copy-without-token", passes_token=False)

    def test_a_refused_copy_is_recorded_not_raised(self):
        fake = self.fake("copy-in-finish")
        fake.put_secret_value = mock.Mock(side_effect=client_error("InvalidRequestException", "nope"))
        rec = self.invoke(fake, "finishSecret")
        self.assertEqual(
            (rec["copy_put"], rec["copy_put_message"], rec["result"]), ("InvalidRequestException", "nope", "ok")
        )

    def test_fail_set_fails_once_and_marks_the_secret(self):
        fake = self.fake("fail-set")
        rec = self.invoke(fake, "setSecret", expect_error=RuntimeError)
        self.assertEqual((rec["result"], rec["error"]), ("error", "RuntimeError"))
        self.assertIn("probe:set-failed", fake.tags)
        self.assertEqual(self.invoke(fake, "setSecret")["result"], "ok")
        self.assertEqual(len(self.ops(fake, "TagResource")), 1)

    def test_other_scenarios_set_secret_succeeds(self):
        fake = self.fake("baseline")
        self.assertEqual(self.invoke(fake, "setSecret")["result"], "ok")
        self.assertEqual(self.ops(fake, "TagResource"), [])

    def test_placeholder_records_listing_lookup_and_read_after_write(self):
        fake = self.fake("placeholder", token_value=None)
        rec = self.invoke(fake, "createSecret")
        self.assertEqual((rec["placeholder_listed"], rec["placeholder_stages"]), (True, ["AWSPENDING"]))
        self.assertEqual(rec["get_before_put"], "ResourceNotFoundException")
        self.assertEqual(rec["read_after_write"], "found")
        gets = self.ops(fake, "GetSecretValue")
        self.assertEqual(gets[0], {"VersionId": TOKEN, "VersionStage": None})
        self.assertEqual(gets[-1], {"VersionId": TOKEN, "VersionStage": None})

    def test_test_secret_reads_the_pending_version(self):
        rec = self.invoke(self.fake("baseline"), "testSecret")
        self.assertEqual(rec["test"], "found")

    def test_a_failing_call_is_logged_then_raised(self):
        fake = self.fake("baseline")
        fake.update_secret_version_stage = mock.Mock(side_effect=client_error("AccessDeniedException"))
        rec = self.invoke(fake, "finishSecret", expect_error=ClientError)
        self.assertEqual(rec["error"], "AccessDeniedException")

    def test_the_readiness_check_reads_the_secret_and_logs_nothing(self):
        fake = self.fake("baseline")
        self.probe["SM"] = fake
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            self.assertEqual(self.probe["handler"]({"probe": "ready", "SecretId": ARN}, None), {"ok": True})
            fake.describe_secret = mock.Mock(side_effect=client_error("AccessDeniedException"))
            self.assertEqual(
                self.probe["handler"]({"probe": "ready", "SecretId": ARN}, None),
                {"ok": False, "error": "AccessDeniedException"},
            )
        self.assertEqual(out.getvalue(), "")

    def test_a_schedule_event_is_logged(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            self.probe["handler"](
                {"probe": "schedule", "label": "future", "due": "d", "scheduled_time": "s", "attempt": "1"}, None
            )
        rec = json.loads(out.getvalue())
        self.assertEqual((rec["probe"], rec["label"], rec["scheduled_time"]), ("schedule", "future", "s"))

    def put_through_botocore(self, knows):
        """A real botocore client; the request body is captured before it would be sent."""
        c = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1").client(
            "secretsmanager"
        )
        bodies = []

        def capture(request, **_):
            bodies.append(json.loads(request.body))
            raw = SimpleNamespace(stream=lambda **_: iter([b'{"ARN": "a", "VersionId": "v"}']))
            return AWSResponse(request.url, 200, {}, raw)

        c.meta.events.register("before-send.secrets-manager.PutSecretValue", capture)
        with mock.patch.dict(self.probe, {"knows_rotation_token": lambda _: knows}):
            how = self.probe["put_value"](
                c,
                ROTATION_TOKEN,
                SecretId="s",
                ClientRequestToken="t" * 32,
                SecretString="v",
                VersionStages=["AWSPENDING"],
            )
            self.probe["put_value"](c, None, SecretId="s", ClientRequestToken="u" * 32, SecretString="v")
        return how, bodies

    def test_rotation_token_as_a_parameter(self):
        how, bodies = self.put_through_botocore(knows=True)
        self.assertEqual((how, bodies[0]["RotationToken"]), ("parameter", ROTATION_TOKEN))
        self.assertNotIn("RotationToken", bodies[1])

    def test_rotation_token_injected_for_an_older_botocore(self):
        how, bodies = self.put_through_botocore(knows=False)
        self.assertEqual(
            (how, bodies[0]["RotationToken"], bodies[0]["ClientRequestToken"]), ("injected", ROTATION_TOKEN, "t" * 32)
        )
        self.assertNotIn("RotationToken", bodies[1])  # the hook was removed again


def line(t, step, token=TOKEN, before=None, after=None, result="ok", **extra):
    return {
        "probe": "step",
        "t": t,
        "t_end": t + 0.5,
        "step": step,
        "token": token,
        "rotation_token": True,
        "botocore": "1.34.0",
        "before": before or {},
        "after": after or {},
        "result": result,
        **extra,
    }


def scenario(calls=(), probe=(), polls=(), cloudtrail=(), **extra):
    return {
        "name": "keyshift-check-x-s",
        "secret": ARN,
        "start": 1000.0,
        "calls": list(calls),
        "probe": list(probe),
        "polls": list(polls),
        "cloudtrail": list(cloudtrail),
        "notes": [],
        "watched_until": 1300.0,
        **extra,
    }


PENDING = {OLD: ["AWSCURRENT"], TOKEN: ["AWSPENDING"]}
ROTATE = {"t": 1000.0, "op": "RotateSecret", "token": TOKEN}
REFUSED = {
    "t": 1200.0,
    "op": "RotateSecret",
    "error": "InvalidRequestException",
    "message": "A previous rotation isn't complete. That rotation will be reattempted.",
}


def four_steps(finish_after, t=1001.0):
    return [
        line(t, "createSecret", before=PENDING, after=PENDING),
        line(t + 1, "setSecret", before=PENDING, after=PENDING),
        line(t + 2, "testSecret", before=PENDING, after=PENDING),
        line(t + 3, "finishSecret", before=PENDING, after=finish_after),
    ]


def answers(name, sc):
    rep = aws_check.Report({"run": "r", "region": "eu-west-1", "scenarios": {name: sc}}).data
    return {a["question"]: a["answer"] for a in rep["scenarios"][name]["answers"]}, rep


class ReportBuilder(unittest.TestCase):
    def test_baseline(self):
        moved = {OLD: ["AWSPREVIOUS"], TOKEN: ["AWSCURRENT", "AWSPENDING"]}
        sc = scenario(
            [ROTATE],
            four_steps(moved),
            polls=[
                {"t": 1000.5, "labels": PENDING, "prev": None},
                {"t": 1010.0, "labels": {OLD: ["AWSPREVIOUS"], TOKEN: ["AWSCURRENT"]}, "prev": 1005.0},
            ],
            cloudtrail=[{"t": 1001.0, "name": "RotationStarted"}, {"t": 1006.0, "name": "RotationSucceeded"}],
        )
        a, rep = answers("baseline", sc)
        self.assertEqual(a["Outcome?"], "observed: RotationSucceeded at +6.0 s (CloudTrail)")
        self.assertTrue(
            a["Does AWSPENDING leave the token's version, and where does it end up?"].startswith(
                "observed: yes: the token's version had lost AWSPENDING +5.5 s after finishSecret returned"
            ),
            a,
        )
        self.assertIn(
            "AWSPENDING was then on no version",
            a["Does AWSPENDING leave the token's version, and where does it end up?"],
        )
        text = aws_check.render(rep)
        self.assertIn("* Outcome? observed: RotationSucceeded", text)
        self.assertRegex(text, r"cloudtrail +RotationSucceeded")
        self.assertRegex(text, r"probe +finishSecret token 11111111; RotationToken present; ok")
        self.assertNotIn(TOKEN, text)  # version ids are shortened

    def test_baseline_without_cloudtrail_is_unsettled(self):
        a, _ = answers("baseline", scenario([ROTATE], four_steps(PENDING)))
        self.assertTrue(a["Outcome?"].startswith("unsettled:"))

    def test_finish_without_move_stripped_and_refused(self):
        sc = scenario(
            [ROTATE, REFUSED],
            four_steps(PENDING),
            polls=[
                {"t": 1000.5, "labels": PENDING, "prev": None},
                {"t": 1009.0, "labels": {OLD: ["AWSCURRENT"]}, "prev": 1006.0},
            ],
            cloudtrail=[{"t": 1005.0, "name": "RotationFailed"}],
        )
        a, _ = answers("finish-without-move", sc)
        strip = a["Does the engine strip AWSPENDING from the token's version, and how soon?"]
        self.assertTrue(strip.startswith("observed: yes: the token's version had lost AWSPENDING +4.5 s"), strip)
        self.assertIn("not yet at +1.5 s", strip)
        self.assertEqual(a["RotationSucceeded or RotationFailed?"], "observed: RotationFailed at +5.0 s (CloudTrail)")
        self.assertEqual(
            a["Does it retry, and with the same token?"],
            "observed: no invocation in the 196 s watched after finishSecret returned",
        )
        self.assertEqual(
            a["Is the next RotateSecret refused?"],
            "observed: refused: InvalidRequestException: A previous rotation isn't complete. "
            "That rotation will be reattempted.",
        )

    def test_finish_without_move_not_stripped_but_retried(self):
        retry = line(1100.0, "createSecret", before=PENDING, after=PENDING)
        sc = scenario([ROTATE], four_steps(PENDING) + [retry], polls=[{"t": 1000.5, "labels": PENDING, "prev": None}])
        sc["polls"].append({"t": 1200.0, "labels": PENDING, "prev": 1195.0, "last_rotated": "x"})
        a, _ = answers("finish-without-move", sc)
        self.assertTrue(
            a["Does the engine strip AWSPENDING from the token's version, and how soon?"].startswith(
                "observed: no: the token's version still carried AWSPENDING"
            )
        )
        self.assertEqual(
            a["Does it retry, and with the same token?"],
            "observed: yes: 1 invocation(s) after it, the first createSecret at +95.5 s, all with the same token",
        )
        self.assertTrue(a["Is the next RotateSecret refused?"].startswith("unsettled:"))

    def copy_scenario(self, copy_put="ok"):
        copy = "22222222-copy-2222-2222-222222222222"
        after = {OLD: ["AWSCURRENT"], copy: ["AWSPENDING"]} if copy_put == "ok" else PENDING
        steps = four_steps(after)
        steps[-1].update(copy=copy, copy_put=copy_put, copy_rotation_token="parameter")
        if copy_put != "ok":
            steps[-1]["copy_put_message"] = "not allowed"
        return scenario(
            [ROTATE],
            steps,
            polls=[{"t": 1020.0, "labels": {OLD: ["AWSCURRENT"]}, "prev": 1015.0}],
            cloudtrail=[{"t": 1006.0, "name": "RotationAbandoned"}],
        )

    def test_copy_accepted_then_abandoned(self):
        a, _ = answers("copy-in-finish", self.copy_scenario())
        self.assertEqual(a["Is the put refused (which error code)?"], "observed: accepted (RotationToken parameter)")
        self.assertEqual(
            a["Does the engine abandon the rotation (RotationAbandoned)?"], "observed: yes: RotationAbandoned"
        )
        lost = a["Which version loses AWSPENDING?"]
        self.assertTrue(
            lost.startswith("observed: right after the copy: 00000000[AWSCURRENT] 22222222[AWSPENDING]"), lost
        )
        self.assertIn("the copy: yes: the copy had lost AWSPENDING +15.5 s", lost)
        self.assertIn(
            "the token's version: the token's version had already lost AWSPENDING when finishSecret returned", lost
        )

    def test_copy_refused(self):
        a, _ = answers("copy-without-token", self.copy_scenario(copy_put="InvalidRequestException"))
        self.assertEqual(
            a["Is the put refused (which error code)?"],
            "observed: refused: InvalidRequestException: not allowed (RotationToken parameter)",
        )
        self.assertTrue(a["Which version loses AWSPENDING?"].startswith("unsettled:"))

    def test_fail_set_retried_from_create_with_the_same_token(self):
        failed = line(1002.0, "setSecret", result="error", error="RuntimeError", before=PENDING, after=PENDING)
        retry = [
            line(1062.5, "createSecret", before=PENDING, after=PENDING),
            line(1063.0, "setSecret", before=PENDING, after=PENDING),
        ]
        sc = scenario(
            [ROTATE],
            [line(1001.0, "createSecret", before=PENDING, after=PENDING), failed] + retry,
            polls=[{"t": 1030.0, "labels": {OLD: ["AWSCURRENT"]}, "prev": 1025.0}],
        )
        a, _ = answers("fail-set", sc)
        self.assertEqual(a["Does the engine retry?"], "observed: yes: 2 invocation(s) after the failure")
        self.assertEqual(
            a["When?"], "observed: createSecret at +60.0 s, setSecret at +60.5 s after the failed setSecret returned"
        )
        self.assertEqual(a["Same ClientRequestToken?"], "observed: yes")
        self.assertEqual(
            a["Is AWSPENDING on the token's version at the retry?"],
            "observed: yes; it had lost it in between (a DescribeSecret poll, +27.5 s)",
        )
        self.assertEqual(
            a["Does it restart at createSecret?"], "observed: yes: the first step after the failure was createSecret"
        )

    def test_fail_set_not_retried(self):
        failed = line(1002.0, "setSecret", result="error", error="RuntimeError")
        a, _ = answers("fail-set", scenario([ROTATE], [failed]))
        self.assertEqual(a["Does the engine retry?"], "observed: no invocation in the 298 s watched after the failure")

    def test_placeholder(self):
        create = line(
            1001.0,
            "createSecret",
            placeholder_listed=True,
            placeholder_stages=["AWSPENDING"],
            get_before_put="ResourceNotFoundException",
            put="ok",
            read_after_write="found",
        )
        a, _ = answers("placeholder", scenario([ROTATE], [create]))
        self.assertEqual(
            a["Does ListSecretVersionIds list the value-less placeholder?"], "observed: yes, with stages ['AWSPENDING']"
        )
        self.assertEqual(
            a["What does GetSecretValue(VersionId=token) answer before the put?"], "observed: ResourceNotFoundException"
        )
        self.assertEqual(a["Is the value readable right after PutSecretValue (read-after-write)?"], "observed: yes")

    def test_schedules(self):
        calls = [
            {"t": 1000.0, "op": "CreateSchedule", "what": "at(2025-01-01T00:00:30)", "label": "future", "due": 1030.0},
            {
                "t": 1001.0,
                "op": "CreateSchedule",
                "what": "at(2025-01-01T00:00:00)",
                "label": "past",
                "due": 941.0,
                "error": "ValidationException",
                "message": "The schedule is in the past",
            },
        ]
        fired = [
            {
                "probe": "schedule",
                "t": 1042.25,
                "label": "future",
                "scheduled_time": "2025-01-01T00:00:30Z",
                "attempt": "1",
            }
        ]
        sc = scenario(calls, fired)
        sc.update(name=None, secret=None)
        a, rep = answers("schedule-in-past", sc)
        self.assertEqual(
            a["Does CreateSchedule accept an at() one minute in the past, and does it fire?"],
            "observed: refused: ValidationException: The schedule is in the past",
        )
        self.assertTrue(
            a["How precisely does an at() 30 s ahead fire?"].startswith(
                "observed: accepted; fired +12.2 s from its due time at(2025-01-01T00:00:30)"
            )
        )
        self.assertRegex(aws_check.render(rep), r"probe +schedule future fired")

    def test_general_answers(self):
        lines = four_steps(PENDING)
        lines[0].update(rotation_token=False, put_rotation_token="not sent")
        rep = aws_check.Report({"run": "r", "region": "x", "scenarios": {"baseline": scenario([ROTATE], lines)}}).data
        g = {a["question"]: a["answer"] for a in rep["general"]}
        self.assertEqual(g["Does the engine send a RotationToken?"], "observed: present in 3 of 4 invocations")
        self.assertEqual(
            g["Which botocore does the python3.12 runtime bundle?"],
            "observed: 1.34.0; createSecret sent the RotationToken as: not sent",
        )

    def test_probe_log_lines_are_parsed(self):
        self.assertEqual(aws_check.parse_probe_line('{"probe": "step", "t": 1}\n'), {"probe": "step", "t": 1})
        for other in ("START RequestId: x", "{not json", '{"other": 1}', "[ERROR] RuntimeError: probe"):
            self.assertIsNone(aws_check.parse_probe_line(other))


def args(**kw):
    return argparse.Namespace(
        **{"timeout": 1, "settle": 0, "poll": 0.01, "cloudtrail_wait": 0, "json": None, "scenarios": ["baseline"], **kw}
    )


class CleanUp(unittest.TestCase):
    def run_with(self, setup=None, scenarios=None, undo=()):
        session = mock.MagicMock(region_name="eu-west-1")
        run = aws_check.Run(session, args())
        deleted = []
        for what in undo:
            run.on_cleanup(what, (lambda w: lambda: deleted.append(w))(what) if isinstance(what, str) else what)
        run.setup = setup or mock.Mock()
        if scenarios:
            run.run_scenarios = scenarios
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = aws_check.execute(run, ["baseline"])
        return code, deleted, run, out.getvalue()

    def test_cleanup_runs_when_a_scenario_raises(self):
        def boom(run):
            raise client_error("AccessDeniedException", "no CreateSecret")

        with mock.patch.object(aws_check, "scenario_baseline", boom):
            code, deleted, run, out = self.run_with(undo=["role", "function"])
        self.assertEqual(code, 1)
        self.assertEqual(deleted, ["function", "role"])  # newest first
        self.assertEqual(run.obs["scenarios"]["baseline"]["error"], "AccessDeniedException: no CreateSecret")
        self.assertIn("stopped by AccessDeniedException: no CreateSecret", out)

    def test_cleanup_runs_when_setup_raises(self):
        code, deleted, run, out = self.run_with(setup=mock.Mock(side_effect=RuntimeError("half-way")), undo=["role"])
        self.assertEqual((code, deleted), (1, ["role"]))
        self.assertIn("stopped by RuntimeError: half-way", run.obs["notes"])

    def test_cleanup_runs_on_ctrl_c(self):
        code, deleted, run, _ = self.run_with(scenarios=mock.Mock(side_effect=KeyboardInterrupt), undo=["secret"])
        self.assertEqual((code, deleted), (1, ["secret"]))
        self.assertTrue(any("interrupted" in n for n in run.obs["notes"]))

    def test_what_could_not_be_deleted_is_reported(self):
        def denied():
            raise client_error("AccessDeniedException", "no DeleteRole")

        def gone():
            raise client_error("ResourceNotFoundException", "already gone")

        code, deleted, run, out = self.run_with(undo=["first", denied, gone, "last"])
        self.assertEqual((code, deleted), (1, ["last", "first"]))
        self.assertEqual(len(run.obs["not_deleted"]), 1)
        self.assertIn("could not delete", out)
        self.assertIn("NOT DELETED", out)

    def test_a_clean_run_exits_0(self):
        code, deleted, _, _ = self.run_with(scenarios=mock.Mock(), undo=["x"])
        self.assertEqual((code, deleted), (0, ["x"]))


class Permissions(unittest.TestCase):
    """The IAM lists against the calls the code makes (read from the source)."""

    IMPLIED = {
        "iam:PassRole": "CreateFunction and CreateSchedule pass a role",
        "lambda:GetFunction": "the function_active_v2 waiter",
        "secretsmanager:TagResource": "CreateSecret with Tags",
    }
    ACTION = {"lambda:Invoke": "lambda:InvokeFunction"}  # where the IAM action is not the API's name

    @staticmethod
    def calls(source, services):
        s = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
        mapping = {svc: s.client(svc).meta.method_to_api_mapping for svc in services}
        found = set()
        for method in set(re.findall(r"\.([a-z][a-z0-9_]*)\(", source)):
            owners = [svc for svc, m in mapping.items() if method in m]
            assert len(owners) <= 1, f"{method} is ambiguous: {owners}"
            found |= {f"{owners[0]}:{mapping[owners[0]][method]}"} if owners else set()
        return {Permissions.ACTION.get(a, a) for a in found}

    def test_caller_permissions_match_the_script(self):
        script = read(SCRIPT).replace(aws_check.PROBE_SOURCE, "")
        called = self.calls(script, {p.split(":")[0] for p in aws_check.CALLER_PERMISSIONS})
        self.assertEqual(called | set(self.IMPLIED), set(aws_check.CALLER_PERMISSIONS))
        self.assertEqual(called & set(self.IMPLIED), set())

    def test_readme_lists_exactly_the_caller_permissions(self):
        text = read(README)
        start = text.index("## Settling the engine's undocumented behaviours")
        end = text.find("\n## ", start + 1)
        section = text[start : end if end >= 0 else None]
        listed = set(re.findall(r"`([a-z]+:[A-Z][A-Za-z]+)`", section))
        self.assertEqual(listed, set(aws_check.CALLER_PERMISSIONS))

    def test_probe_role_grants_exactly_what_the_probe_calls(self):
        run = SimpleNamespace(id="keyshift-check-x", arn=lambda svc, res: f"arn:aws:{svc}:r:1:{res}")
        policy = aws_check.Probe(run).policy()
        granted = {
            a for st in policy["Statement"] for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])
        }
        called = self.calls(aws_check.PROBE_SOURCE, {"secretsmanager"})
        self.assertEqual({a for a in granted if a.startswith("secretsmanager:")}, called)
        star = [st for st in policy["Statement"] if st["Resource"] == "*"]
        self.assertEqual([st["Action"] for st in star], ["secretsmanager:GetRandomPassword"])
        scoped = [st["Resource"] for st in policy["Statement"] if st["Resource"] != "*"]
        self.assertTrue(all("keyshift-check-x" in r for r in scoped), scoped)


class FakeWorld:
    """A toy AWS for one whole run, end to end: IAM, Lambda (the real probe handler, invoked
    in-process), CloudWatch Logs, Secrets Manager with a rotation engine model, Scheduler
    and CloudTrail. The engine model is a guess, not AWS: what matters is that whatever it
    does shows up in the report's answers, and that every resource is gone at the end."""

    ENGINE_ROTATION_TOKEN = "ENGINE-ROTATION-TOKEN-MUST-NOT-APPEAR-0123"
    AHEAD = 7.0  # AWS's clock (the probe's, CloudTrail's) is 7 s ahead of this machine's

    def now(self):
        return time.time() + self.AHEAD

    def __init__(self):
        self.lock = threading.RLock()
        self.roles, self.functions, self.groups, self.schedules = set(), set(), set(), set()
        self.secrets, self.log, self.trail, self.role_tries, self.ready_checks = {}, [], [], 0, 0
        self.probe = aws_check.Probe.module()
        self.probe["SM"] = self.client("secretsmanager")
        self.probe["emit"] = lambda rec: self.log.append((self.now(), json.dumps(rec, default=str)))
        self.probe["time"] = SimpleNamespace(time=self.now)
        self.threads = []

    def client(self, name, config=None):
        return Validated(name, getattr(self, "_" + name)())

    # -- each service as a namespace of functions --
    def _sts(self):
        while abs(self.now() % 1 - 0.5) > 0.01:  # the Date header drops the fraction; the script adds half a second
            time.sleep(0.005)
        date = formatdate(self.now(), usegmt=True)
        return SimpleNamespace(
            get_caller_identity=lambda: {
                "Account": "123456789012",
                "Arn": "arn:aws:iam::123456789012:user/dev",
                "ResponseMetadata": {"HTTPHeaders": {"date": date}},
            }
        )

    def _iam(self):
        def create_role(RoleName, **_):
            self.roles.add(RoleName)
            return {"Role": {"Arn": f"arn:aws:iam::123456789012:role/{RoleName}"}}

        def delete_role(RoleName):
            self.roles.remove(RoleName)

        return SimpleNamespace(
            create_role=create_role,
            put_role_policy=lambda **_: None,
            delete_role_policy=lambda **_: None,
            delete_role=delete_role,
        )

    def _lambda(self):
        def create_function(FunctionName, **_):
            self.role_tries += 1
            if self.role_tries == 1:
                raise client_error(
                    "InvalidParameterValueException", "The role defined for the function cannot be assumed by Lambda."
                )
            self.functions.add(FunctionName)

        def delete_function(FunctionName):
            self.functions.remove(FunctionName)

        def invoke(FunctionName, Payload):
            self.ready_checks += 1
            out = (
                {"ok": False, "error": "AccessDeniedException"}
                if self.ready_checks == 1
                else self.probe["handler"](json.loads(Payload), None)
            )  # the first check comes before IAM caught up
            return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(out).encode())}

        return SimpleNamespace(
            create_function=create_function,
            add_permission=lambda **_: None,
            invoke=invoke,
            delete_function=delete_function,
            get_waiter=lambda name: SimpleNamespace(wait=lambda **_: None),
        )

    def _logs(self):
        def filter_log_events(logGroupName, startTime, nextToken=None):
            events = [
                {"eventId": str(i), "timestamp": int(t * 1000), "message": m + "\n"}
                for i, (t, m) in enumerate(list(self.log))
                if t * 1000 >= startTime
            ]
            events.insert(0, {"eventId": "start", "timestamp": startTime, "message": "START RequestId: x\n"})
            at = int(nextToken or 0)
            page = events[at : at + 3]  # small pages, to exercise nextToken
            return {"events": page, **({"nextToken": str(at + 3)} if at + 3 < len(events) else {})}

        def delete_log_group(logGroupName):
            self.groups.remove(logGroupName)

        return SimpleNamespace(
            create_log_group=lambda logGroupName: self.groups.add(logGroupName),
            filter_log_events=filter_log_events,
            delete_log_group=delete_log_group,
        )

    def _scheduler(self):
        def create_schedule(Name, ScheduleExpression, Target, **_):
            due = datetime.strptime(ScheduleExpression, "at(%Y-%m-%dT%H:%M:%S)").replace(tzinfo=timezone.utc)
            if due.timestamp() < self.now():
                raise client_error("ValidationException", "at() is in the past")
            self.schedules.add(Name)
            payload = json.loads(
                Target["Input"]
                .replace("<aws.scheduler.scheduled-time>", "2025-01-01T00:00:30Z")
                .replace("<aws.scheduler.attempt-number>", "1")
            )

            def fire():  # a tenth of a second later, whatever at() said: the toy keeps no calendar
                time.sleep(0.1)
                self.probe["handler"](payload, None)
                self.schedules.discard(Name)  # ActionAfterCompletion DELETE

            self.threads.append(threading.Thread(target=fire))
            self.threads[-1].start()

        def delete_schedule(Name):
            if Name not in self.schedules:
                raise client_error("ResourceNotFoundException", "no such schedule")
            self.schedules.remove(Name)

        return SimpleNamespace(create_schedule=create_schedule, delete_schedule=delete_schedule)

    def _cloudtrail(self):
        def lookup_events(LookupAttributes, **_):
            name = LookupAttributes[0]["AttributeValue"]
            return {
                "Events": [
                    {
                        "EventName": n,
                        "EventTime": datetime.fromtimestamp(t, timezone.utc),
                        "CloudTrailEvent": json.dumps({"eventName": n, "additionalEventData": {"SecretId": arn}}),
                    }
                    for n, t, arn in self.trail
                    if n == name
                ]
            }

        return SimpleNamespace(lookup_events=lookup_events)

    def _secretsmanager(self):
        return FakeWorldSecrets(self)

    # -- the engine model --
    def engine(self, secret, token):
        arn = secret["arn"]
        for attempt in range(2):
            try:
                for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
                    time.sleep(0.1)  # steps some polls apart, beyond the skew estimate's half second
                    self.probe["handler"](
                        {
                            "Step": step,
                            "SecretId": arn,
                            "ClientRequestToken": token,
                            "RotationToken": self.ENGINE_ROTATION_TOKEN,
                        },
                        None,
                    )
                break
            except RuntimeError:
                if attempt:
                    self.trail.append(("RotationFailed", self.now(), arn))
                    return
                time.sleep(0.3)
        time.sleep(0.6)
        with self.lock:
            labels = {v: d["stages"] for v, d in secret["versions"].items()}
            current = next(v for v, s in labels.items() if "AWSCURRENT" in s)
            pending = next((v for v, s in labels.items() if "AWSPENDING" in s), None)
            if pending == token:
                secret["versions"][token]["stages"].remove("AWSPENDING")
            name = (
                "RotationSucceeded"
                if current == token
                else ("RotationFailed" if pending == token else "RotationAbandoned")
            )
        self.trail.append((name, self.now(), arn))


class Validated:
    """A toy client whose every API call is first checked against botocore's model of the
    real one (names, types, lengths), so a misspelt parameter fails here, not on AWS."""

    REAL = {}

    def __init__(self, service, impl):
        if service not in self.REAL:
            self.REAL[service] = botocore.session.Session().create_client(  # not boto3's: a test patches that
                service, region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
            )
        self.impl, self.meta = impl, self.REAL[service].meta

    def __getattr__(self, method):
        fn = getattr(self.impl, method)
        api = self.meta.method_to_api_mapping.get(method)
        if api is None:
            return fn

        def call(**kw):
            validate_parameters(kw, self.meta.service_model.operation_model(api).input_shape)
            return fn(**kw)

        return call


class FakeWorldSecrets:
    def __init__(self, world):
        self.w = world

    def get(self, sid):
        s = next((s for s in self.w.secrets.values() if sid in (s["arn"], s["name"])), None)
        if s is None:
            raise client_error("ResourceNotFoundException", "no such secret")
        return s

    def holder(self, s, stage):
        return next((v for v, d in s["versions"].items() if stage in d["stages"]), None)

    def move(self, s, stage, to):
        for d in s["versions"].values():
            if stage in d["stages"]:
                d["stages"].remove(stage)
        s["versions"][to]["stages"].append(stage)

    def create_secret(self, Name, SecretString, Tags, **_):
        with self.w.lock:
            arn = f"arn:aws:secretsmanager:eu-west-1:123456789012:secret:{Name}-AbCdEf"
            self.w.secrets[Name] = {
                "arn": arn,
                "name": Name,
                "tags": {t["Key"]: t["Value"] for t in Tags},
                "versions": {"v0-" + "0" * 33: {"stages": ["AWSCURRENT"], "value": SecretString}},
            }
            return {"ARN": arn, "Name": Name}

    def delete_secret(self, SecretId, ForceDeleteWithoutRecovery):
        assert ForceDeleteWithoutRecovery
        with self.w.lock:
            del self.w.secrets[self.get(SecretId)["name"]]

    def rotate_secret(self, SecretId, RotationLambdaARN, RotationRules, RotateImmediately):
        with self.w.lock:
            s = self.get(SecretId)
            if self.holder(s, "AWSPENDING") not in (None, self.holder(s, "AWSCURRENT")):
                raise client_error("InvalidRequestException", "A previous rotation isn't complete.")
            token = str(uuid.uuid4())
            s["versions"][token] = {"stages": [], "value": None}
            self.move(s, "AWSPENDING", token)
            self.w.trail.append(("RotationStarted", self.w.now(), s["arn"]))
        t = threading.Thread(target=self.w.engine, args=(s, token))
        self.w.threads.append(t)
        t.start()
        return {"ARN": s["arn"], "VersionId": token}

    def describe_secret(self, SecretId):
        with self.w.lock:
            s = self.get(SecretId)
            return {
                "ARN": s["arn"],
                "Tags": [{"Key": k, "Value": v} for k, v in s["tags"].items()],
                "VersionIdsToStages": {v: list(d["stages"]) for v, d in s["versions"].items() if d["stages"]},
            }

    def list_secret_version_ids(self, SecretId, IncludeDeprecated=False, **_):
        with self.w.lock:
            return {
                "Versions": [
                    {"VersionId": v, "VersionStages": list(d["stages"]), "CreatedDate": datetime.now(timezone.utc)}
                    for v, d in self.get(SecretId)["versions"].items()
                ]
            }

    def get_secret_value(self, SecretId, VersionId=None, VersionStage=None):
        with self.w.lock:
            d = self.get(SecretId)["versions"].get(VersionId)
            if d is None or d["value"] is None or (VersionStage and VersionStage not in d["stages"]):
                raise client_error("ResourceNotFoundException", "no such version")
            return {"SecretString": d["value"]}

    def get_random_password(self, **_):
        return {"RandomPassword": "A-NEW-VALUE-MUST-NOT-APPEAR"}

    def put_secret_value(self, SecretId, ClientRequestToken, SecretString, VersionStages, RotationToken=None):
        with self.w.lock:
            s = self.get(SecretId)
            old = s["versions"].setdefault(ClientRequestToken, {"stages": [], "value": None})
            if old["value"] not in (None, SecretString):
                raise client_error("ResourceExistsException", "exists")
            old["value"] = SecretString
            for stage in VersionStages:
                self.move(s, stage, ClientRequestToken)

    def update_secret_version_stage(self, SecretId, VersionStage, MoveToVersionId, RemoveFromVersionId):
        with self.w.lock:
            s = self.get(SecretId)
            self.move(s, VersionStage, MoveToVersionId)
            if VersionStage == "AWSCURRENT":
                self.move(s, "AWSPREVIOUS", RemoveFromVersionId)

    def tag_resource(self, SecretId, Tags):
        with self.w.lock:
            self.get(SecretId)["tags"].update({t["Key"]: t["Value"] for t in Tags})


class EndToEnd(unittest.TestCase):
    """main() with opt-in, credentials and a region, against the toy AWS above."""

    def test_a_whole_run(self):
        world = FakeWorld()
        session = SimpleNamespace(region_name="eu-west-1", get_credentials=lambda: object(), client=world.client)
        with (
            tempfile.TemporaryDirectory() as tmp,
            mock.patch.object(aws_check.boto3, "Session", return_value=session),
            mock.patch.multiple(aws_check, RETRY_PAUSE=0.01, CT_PACE=0, CT_PAUSE=0.05),
            mock.patch.object(aws_check.LogReader, "MIN_AGE", 0),
        ):
            path = os.path.join(tmp, "report.json")
            code, out = run_main(
                ["--timeout", "5", "--settle", "1", "--poll", "0.05", "--cloudtrail-wait", "5", "--json", path],
                {"KEYSHIFT_AWS_CHECK": "1"},
            )
            dumped = read(path)
        for t in world.threads:
            t.join(5)
        self.assertEqual(code, 0, out)
        self.assertEqual(
            (world.roles, world.functions, world.groups, world.schedules, world.secrets),
            (set(), set(), set(), set(), {}),
            "everything made is deleted",
        )
        for secret in ("MUST-NOT-APPEAR", world.ENGINE_ROTATION_TOKEN):
            self.assertNotIn(secret, out + dumped + "".join(m for _, m in world.log))
        rep = json.loads(dumped)["report"]
        a = {n: {x["question"]: x["answer"] for x in r["answers"]} for n, r in rep["scenarios"].items()}
        self.assertEqual(set(a), set(aws_check.SCENARIOS))
        self.assertTrue(a["baseline"]["Outcome?"].startswith("observed: RotationSucceeded"), a["baseline"])
        self.assertIn(
            "AWSPENDING was then on no version",
            a["baseline"]["Does AWSPENDING leave the token's version, and where does it end up?"],
        )
        fwm = a["finish-without-move"]
        self.assertTrue(
            fwm["Does the engine strip AWSPENDING from the token's version, and how soon?"].startswith("observed: yes"),
            fwm,
        )
        self.assertTrue(fwm["RotationSucceeded or RotationFailed?"].startswith("observed: RotationFailed"), fwm)
        self.assertTrue(fwm["Is the next RotateSecret refused?"].startswith("observed: accepted"), fwm)
        for copy in ("copy-in-finish", "copy-without-token"):
            self.assertEqual(
                a[copy]["Is the put refused (which error code)?"].split(" (")[0], "observed: accepted", a[copy]
            )
            self.assertEqual(
                a[copy]["Does the engine abandon the rotation (RotationAbandoned)?"], "observed: yes: RotationAbandoned"
            )
            self.assertTrue(
                a[copy]["Is the next RotateSecret refused?"].startswith(
                    "observed: refused: InvalidRequestException: A previous rotation isn't complete."
                ),
                a[copy],
            )
        self.assertIn("(RotationToken parameter)", a["copy-in-finish"]["Is the put refused (which error code)?"])
        self.assertIn("(RotationToken not sent)", a["copy-without-token"]["Is the put refused (which error code)?"])
        fs = a["fail-set"]
        self.assertEqual(
            fs["Does it restart at createSecret?"], "observed: yes: the first step after the failure was createSecret"
        )
        self.assertEqual(fs["Same ClientRequestToken?"], "observed: yes")
        pl = a["placeholder"]
        self.assertEqual(
            pl["What does GetSecretValue(VersionId=token) answer before the put?"],
            "observed: ResourceNotFoundException",
        )
        self.assertEqual(pl["Is the value readable right after PutSecretValue (read-after-write)?"], "observed: yes")
        sp = a["schedule-in-past"]
        self.assertEqual(
            sp["Does CreateSchedule accept an at() one minute in the past, and does it fire?"],
            "observed: refused: ValidationException: at() is in the past",
        )
        self.assertIn(
            "scheduled-time attribute 2025-01-01T00:00:30Z", sp["How precisely does an at() 30 s ahead fire?"]
        )
        self.assertIn(
            "this machine's clock is 7 s behind AWS's (by the Date header); the script's times are corrected",
            rep["notes"],
        )
        self.assertEqual(rep["not_deleted"], [])
        self.assertEqual(world.ready_checks, 7, "one per rotated secret, and one retry after a refusal")
        self.assertIn("aws-check: deleting the", out)
        # this machine's times were corrected onto AWS's clock: the script's call comes before the probe's steps
        for name, r in rep["scenarios"].items():
            who = [row["who"] for row in r["timeline"]]
            self.assertLess(who.index("script"), who.index("probe"), (name, r["timeline"][:3]))
        self.assertEqual(fwm["Does it retry, and with the same token?"].split(" in the ")[0], "observed: no invocation")


if __name__ == "__main__":
    unittest.main()
