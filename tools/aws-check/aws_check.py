#!/usr/bin/env python3
"""make aws-check: settle, on a real AWS account, what keyshift assumes about the Secrets
Manager rotation engine and EventBridge Scheduler but AWS does not document.

keyshift's safety argument leans on engine behaviours nobody on the team could observe:
whether the engine strips AWSPENDING after a finishSecret that did not move AWSCURRENT
(and how soon), whether it retries a failed step (when, with which token, from which
step), whether it refuses or abandons a rotation whose finishSecret wrote a copy of the
pending value, whether it sends a RotationToken, what the value-less placeholder looks
like, and whether Scheduler accepts an at() in the past. This script asks the engine
itself: it deploys a small probe rotation function that behaves per secret as a scenario
says, rotates one throw-away secret per scenario, records every invocation with the
labels it saw, reads CloudTrail's rotation events, and prints each answer on one line,
marked as observed (or unsettled, with the reason).

It is opt-in: without KEYSHIFT_AWS_CHECK=1, credentials and a region from boto3's usual
chain it prints one line naming what is missing and exits 0 (CI has none of them, and the
opt-in is checked before any credential lookup, so it never touches the network).

Everything it creates is named keyshift-check-<random>-... and is deleted in a `finally`,
even on Ctrl-C; what could not be deleted is printed. It never prints or logs a secret
value or a RotationToken (presence only).
"""

import argparse
import io
import json
import os
import secrets
import signal
import sys
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

SCENARIOS = ("baseline", "finish-without-move", "copy-in-finish", "copy-without-token",
             "fail-set", "placeholder", "schedule-in-past")
CT_NAMES = ("RotationStarted", "RotationSucceeded", "RotationFailed", "RotationAbandoned",
            "TestRotationStarted", "TestRotationSucceeded", "TestRotationFailed")
TERMINAL = ("RotationSucceeded", "RotationFailed", "RotationAbandoned")
GONE = ("ResourceNotFoundException", "NoSuchEntity", "NoSuchEntityException")
RETRY_PAUSE = 3  # seconds between tries while a new role or permission propagates
CT_PACE = 0.6  # seconds between LookupEvents requests (it allows two a second)
CT_PAUSE = 30  # seconds between two looks at CloudTrail while events are missing
# What the caller needs (README lists the same; a test checks both against the calls below).
CALLER_PERMISSIONS = (
    "sts:GetCallerIdentity", "iam:CreateRole", "iam:PutRolePolicy", "iam:DeleteRolePolicy",
    "iam:DeleteRole", "iam:PassRole", "lambda:CreateFunction", "lambda:GetFunction",
    "lambda:AddPermission", "lambda:InvokeFunction", "lambda:DeleteFunction",
    "logs:CreateLogGroup", "logs:FilterLogEvents", "logs:DeleteLogGroup",
    "secretsmanager:CreateSecret", "secretsmanager:TagResource", "secretsmanager:RotateSecret",
    "secretsmanager:DescribeSecret", "secretsmanager:ListSecretVersionIds",
    "secretsmanager:DeleteSecret", "scheduler:CreateSchedule", "scheduler:DeleteSchedule",
    "cloudtrail:LookupEvents")

PROBE_SOURCE = r'''
"""keyshift aws-check probe: a rotation function that behaves as its secret's tag
probe:scenario says. Every invocation prints one JSON line: the step, the token, whether a
RotationToken came (never its value), and the labels and versions it saw."""
import json, time, uuid
import boto3, botocore
from botocore.exceptions import ClientError

SM = None
MOVES_CURRENT = ("baseline", "fail-set", "placeholder")
COPIES = ("copy-in-finish", "copy-without-token")


def client():
    global SM
    if SM is None:
        SM = boto3.client("secretsmanager")
    return SM


def code(e):
    return e.response.get("Error", {}).get("Code", "ClientError") if isinstance(e, ClientError) else type(e).__name__


def attempt(fn, **kw):
    """'found' or the error code; the response (which may hold a value) is dropped."""
    try:
        fn(**kw)
        return "found"
    except ClientError as e:
        return code(e)


def versions(c, sid):
    out, kw = [], {}
    for _ in range(20):
        r = c.list_secret_version_ids(SecretId=sid, IncludeDeprecated=True, **kw)
        out += [{"id": v["VersionId"], "stages": v.get("VersionStages", []),
                 "created": str(v.get("CreatedDate"))} for v in r.get("Versions", [])]
        if not r.get("NextToken"):
            break
        kw = {"NextToken": r["NextToken"]}
    return out


def knows_rotation_token(c):
    try:
        return "RotationToken" in c.meta.service_model.operation_model("PutSecretValue").input_shape.members
    except AttributeError:
        return True


def put_value(c, rotation_token, **kw):
    """PutSecretValue with the RotationToken as a parameter, or written into the request
    body when the runtime's botocore predates the parameter. Returns how it was sent."""
    if rotation_token is None:
        c.put_secret_value(**kw)
        return "not sent"
    if knows_rotation_token(c):
        c.put_secret_value(RotationToken=rotation_token, **kw)
        return "parameter"

    def inject(params, **_):
        body = json.loads(params["body"] or b"{}")
        body["RotationToken"] = rotation_token
        params["body"] = json.dumps(body).encode()
    event = "before-call.secrets-manager.PutSecretValue"
    c.meta.events.register(event, inject, unique_id="probe-rotation-token")
    try:
        c.put_secret_value(**kw)
    finally:
        c.meta.events.unregister(event, unique_id="probe-rotation-token")
    return "injected"


def create_secret(c, sid, token, rt, scenario, tags, rec):
    if scenario == "placeholder":
        listed = [v for v in rec["versions"] if v["id"] == token]
        rec["placeholder_listed"] = bool(listed)
        rec["placeholder_stages"] = listed[0]["stages"] if listed else None
        rec["get_before_put"] = attempt(c.get_secret_value, SecretId=sid, VersionId=token)
    rec["pending_check"] = attempt(c.get_secret_value, SecretId=sid, VersionId=token, VersionStage="AWSPENDING")
    if rec["pending_check"] == "found":
        rec["put"] = "skipped: the token's version has a value"
        return
    value = c.get_random_password(PasswordLength=32, ExcludePunctuation=True)["RandomPassword"]
    try:
        rec["put_rotation_token"] = put_value(c, rt, SecretId=sid, ClientRequestToken=token,
                                              SecretString=value, VersionStages=["AWSPENDING"])
        rec["put"] = "ok"
    except ClientError as e:
        rec["put"] = code(e)
        raise
    if scenario == "placeholder":
        rec["read_after_write"] = attempt(c.get_secret_value, SecretId=sid, VersionId=token)


def set_secret(c, sid, token, rt, scenario, tags, rec):
    if scenario == "fail-set" and "probe:set-failed" not in tags:
        c.tag_resource(SecretId=sid, Tags=[{"Key": "probe:set-failed", "Value": token}])
        rec["deliberate_failure"] = True
        raise RuntimeError("probe: setSecret fails on purpose, once")


def test_secret(c, sid, token, rt, scenario, tags, rec):
    rec["test"] = attempt(c.get_secret_value, SecretId=sid, VersionId=token, VersionStage="AWSPENDING")


def finish_secret(c, sid, token, rt, scenario, tags, rec):
    if scenario in MOVES_CURRENT:
        current = next((v for v, s in rec["before"].items() if "AWSCURRENT" in s), None)
        if current == token:
            rec["finish"] = "already current"
            return
        c.update_secret_version_stage(SecretId=sid, VersionStage="AWSCURRENT",
                                      MoveToVersionId=token, RemoveFromVersionId=current)
        rec["finish"] = "moved AWSCURRENT"
    elif scenario in COPIES:
        value = c.get_secret_value(SecretId=sid, VersionId=token)["SecretString"]
        rec["copy"] = copy = str(uuid.uuid4())
        send = rt if scenario == "copy-in-finish" else None
        try:
            rec["copy_rotation_token"] = put_value(c, send, SecretId=sid, ClientRequestToken=copy,
                                                   SecretString=value, VersionStages=["AWSPENDING"])
            rec["copy_put"] = "ok"
        except ClientError as e:
            rec["copy_put"] = code(e)
            rec["copy_put_message"] = str(e.response.get("Error", {}).get("Message", ""))[:300]
        rec["finish"] = "copied, AWSCURRENT not moved"
    else:
        rec["finish"] = "returned without moving AWSCURRENT"


STEPS = {"createSecret": create_secret, "setSecret": set_secret,
         "testSecret": test_secret, "finishSecret": finish_secret}


def emit(rec):
    print(json.dumps(rec, sort_keys=True, default=str), flush=True)


def handler(event, context):
    t = time.time()
    if event.get("probe") == "ready":  # the script's check that this role may read the secret yet
        try:
            client().describe_secret(SecretId=event["SecretId"])
            return {"ok": True}
        except ClientError as e:
            return {"ok": False, "error": code(e)}
    if event.get("probe") == "schedule":
        emit({"probe": "schedule", "t": t, "label": event.get("label"), "due": event.get("due"),
              "scheduled_time": event.get("scheduled_time"), "attempt": event.get("attempt")})
        return {"ok": True}
    c = client()
    step, sid, token = event.get("Step"), event.get("SecretId"), event.get("ClientRequestToken")
    rt = event.get("RotationToken") or None
    rec = {"probe": "step", "t": t, "step": step, "secret": sid, "token": token,
           "rotation_token": rt is not None, "botocore": botocore.__version__}
    try:
        d = c.describe_secret(SecretId=sid)
        tags = {x["Key"]: x["Value"] for x in d.get("Tags", [])}
        rec["scenario"] = scenario = tags.get("probe:scenario", "baseline")
        rec["before"] = d.get("VersionIdsToStages", {})
        rec["versions"] = versions(c, sid)
        STEPS[step](c, sid, token, rt, scenario, tags, rec)
        rec["result"] = "ok"
    except Exception as e:
        rec["result"], rec["error"] = "error", code(e)
        raise
    finally:
        try:
            rec["after"] = c.describe_secret(SecretId=sid).get("VersionIdsToStages", {})
        except Exception as e:
            rec["after_error"] = code(e)
        rec["t_end"] = time.time()
        emit(rec)
    return {"ok": True}
'''


class Interrupted(Exception):
    """Raised in a scenario's thread once the run is stopping (Ctrl-C)."""


def say(msg):
    print(f"aws-check: {msg}", flush=True)


def err(e):
    """(code, message) of an AWS error, the message cut short."""
    if isinstance(e, ClientError):
        e_ = e.response.get("Error", {})
        return e_.get("Code", "ClientError"), str(e_.get("Message", ""))[:300]
    return type(e).__name__, str(e)[:300]


def preflight(env):
    """(session, None) when the check may run, else (None, what is missing)."""
    flag = env.get("KEYSHIFT_AWS_CHECK")
    if flag != "1":
        what = "is not set" if flag is None else f"is {flag!r}, not 1"
        return None, (f"KEYSHIFT_AWS_CHECK {what}; credentials and region were not looked up "
                      "(opt in with KEYSHIFT_AWS_CHECK=1: the check creates and then deletes IAM "
                      "roles, a Lambda function, secrets and schedules on the account)")
    try:  # boto3 reads AWS_DEFAULT_REGION and the profile's region, not AWS_REGION: that one first, as the CLI does
        session = boto3.Session(region_name=env.get("AWS_REGION") or None)
        missing = []
        if not session.region_name:
            missing.append("no AWS region (set AWS_REGION or AWS_DEFAULT_REGION, or a region in the profile)")
        if session.get_credentials() is None:
            missing.append("no AWS credentials (boto3's chain found none: set AWS_PROFILE, "
                           "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
    except BotoCoreError as e:
        return None, f"the AWS configuration cannot be used: {e}"
    return (None, "; ".join(missing)) if missing else (session, None)


class Probe:
    """The probe rotation function: its source, its package, and its deployment."""
    SOURCE = PROBE_SOURCE

    @classmethod
    def module(cls):
        ns = {"__name__": "probe"}
        exec(compile(cls.SOURCE, "probe.py", "exec"), ns)
        return ns

    @classmethod
    def package(cls):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("probe.py", cls.SOURCE)
        return buf.getvalue()

    def __init__(self, run):
        self.run = run
        self.name = f"{run.id}-probe"
        self.group = f"/aws/lambda/{self.name}"
        self.arn = run.arn("lambda", f"function:{self.name}")

    def policy(self):
        own_secrets = self.run.arn("secretsmanager", f"secret:{self.run.id}-*")
        logs = self.run.arn("logs", f"log-group:{self.group}:*")
        calls = ("DescribeSecret", "GetSecretValue", "PutSecretValue", "UpdateSecretVersionStage",
                 "ListSecretVersionIds", "TagResource")
        return {"Version": "2012-10-17", "Statement": [
            {"Sid": "ThrowAwaySecrets", "Effect": "Allow", "Resource": own_secrets,
             "Action": [f"secretsmanager:{a}" for a in calls]},
            {"Sid": "Values", "Effect": "Allow", "Action": "secretsmanager:GetRandomPassword", "Resource": "*"},
            {"Sid": "OwnLogGroup", "Effect": "Allow", "Resource": logs,
             "Action": ["logs:CreateLogStream", "logs:PutLogEvents"]}]}

    def deploy(self):
        run, lam, logs = self.run, self.run.client("lambda"), self.run.client("logs")
        run.on_cleanup(f"log group {self.group}", lambda: logs.delete_log_group(logGroupName=self.group))
        logs.create_log_group(logGroupName=self.group)
        role = run.create_role("probe", "lambda.amazonaws.com", self.policy())
        run.on_cleanup(f"Lambda function {self.name}", lambda: lam.delete_function(FunctionName=self.name))
        deadline = time.time() + 60
        while True:  # a new role takes a while to be assumable by Lambda
            try:
                lam.create_function(FunctionName=self.name, Runtime="python3.12", Role=role, Handler="probe.handler",
                                    Code={"ZipFile": self.package()}, Timeout=60, MemorySize=128,
                                    Description="keyshift aws-check probe (deleted at the end of the run)")
                break
            except ClientError as e:
                code, msg = err(e)
                if code != "InvalidParameterValueException" or "assume" not in msg or time.time() > deadline:
                    raise
                run.sleep(RETRY_PAUSE)
        lam.get_waiter("function_active_v2").wait(FunctionName=self.name)
        lam.add_permission(FunctionName=self.name, StatementId="SecretsManagerRotation", Action="lambda:InvokeFunction",
                           Principal="secretsmanager.amazonaws.com", SourceAccount=run.account)
        say(f"probe function {self.name} is active")

    def ready(self, sc):
        """Invokes the probe until its role may read the secret: a new role's policy takes a
        while to apply, and a first step failing for that would spoil the scenario."""
        deadline = time.time() + 90
        while True:
            payload = json.dumps({"probe": "ready", "SecretId": sc["secret"]}).encode()
            r = self.run.client("lambda").invoke(FunctionName=self.name, Payload=payload)
            out = json.loads(r["Payload"].read() or b"{}")
            if isinstance(out, dict) and out.get("ok"):
                return
            if time.time() > deadline:
                raise RuntimeError(f"the probe cannot read {sc['name']}: {out}")
            self.run.sleep(RETRY_PAUSE)


def parse_probe_line(message):
    line = message.strip()
    if not line.startswith("{"):
        return None
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    return rec if isinstance(rec, dict) and rec.get("probe") in ("step", "schedule") else None


class LogReader:
    """The probe's JSON lines, fetched at most every few seconds and shared by the threads."""

    def __init__(self, client, group, start):
        self.client, self.group = client, group
        self.since_ms = int(start * 1000) - 60_000
        self.lines, self.ids, self.fetched = [], set(), 0.0
        self.lock = threading.Lock()

    MIN_AGE = 3.0  # seconds between fetches

    def refresh(self):
        with self.lock:
            if time.time() - self.fetched < self.MIN_AGE:
                return
            kw, newest = {"logGroupName": self.group, "startTime": self.since_ms}, self.since_ms
            for _ in range(50):
                r = self.client.filter_log_events(**kw)
                for e in r.get("events", []):
                    newest = max(newest, e.get("timestamp", 0))
                    if e["eventId"] not in self.ids:
                        self.ids.add(e["eventId"])
                        rec = parse_probe_line(e.get("message", ""))
                        if rec:
                            self.lines.append(rec)
                if not r.get("nextToken"):
                    break
                kw["nextToken"] = r["nextToken"]
            self.fetched = time.time()
            self.since_ms = max(self.since_ms, newest - 300_000)  # late arrivals: overlap 5 min

    def steps(self, sc):
        self.refresh()
        mine = (sc["secret"], sc["name"])
        return sorted((ln for ln in self.lines if ln["probe"] == "step" and ln.get("secret") in mine),
                      key=lambda ln: ln["t"])

    def schedules(self):
        self.refresh()
        return [ln for ln in self.lines if ln["probe"] == "schedule"]


class Run:
    """One run: its clients, its resources (and how to delete them), its observations."""

    def __init__(self, session, args):
        self.session, self.args = session, args
        self.id = "keyshift-check-" + secrets.token_hex(4)
        self.region = session.region_name
        self.clients, self.undo, self.stop, self.lock = {}, [], threading.Event(), threading.Lock()
        self.skew = 0.0
        self.account = self.partition = self.probe = self.logs = self.scheduler_role = None
        self.obs = {"run": self.id, "region": self.region, "started": time.time(),
                    "scenarios": {}, "notes": [], "not_deleted": []}

    def client(self, name):
        with self.lock:  # a boto3 session is not thread-safe; its clients are
            if name not in self.clients:
                retries = Config(retries={"mode": "standard", "max_attempts": 8})
                self.clients[name] = self.session.client(name, config=retries)
            return self.clients[name]

    def arn(self, service, resource):
        return f"arn:{self.partition}:{service}:{self.region}:{self.account}:{resource}"

    def now(self):
        return time.time() + self.skew

    def sleep(self, seconds):
        if self.stop.wait(seconds):
            raise Interrupted()

    def on_cleanup(self, what, fn):
        self.undo.append((what, fn))

    def cleanup(self):
        """Deletes everything, newest first; True when nothing was left behind."""
        main = threading.current_thread() is threading.main_thread()
        old = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
        try:
            if self.undo:
                say(f"deleting the {len(self.undo)} resources this run created (Ctrl-C is ignored until done)")
            while self.undo:
                what, fn = self.undo.pop()
                try:
                    fn()
                except Exception as e:  # noqa: BLE001 - every failure is reported, none stops the rest
                    code, msg = err(e)
                    if code not in GONE:
                        self.obs["not_deleted"].append(f"{what}: {code}: {msg}")
                        say(f"could not delete {what}: {code}: {msg}")
        finally:
            if old is not None:
                signal.signal(signal.SIGINT, old)
        return not self.obs["not_deleted"]

    def create_role(self, suffix, service, policy):
        iam, name = self.client("iam"), f"{self.id}-{suffix}"
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": service},
                                                          "Action": "sts:AssumeRole"}]}
        if service == "scheduler.amazonaws.com":
            trust["Statement"][0]["Condition"] = {"StringEquals": {"aws:SourceAccount": self.account}}

        def delete():
            try:
                iam.delete_role_policy(RoleName=name, PolicyName="probe")
            except ClientError as e:
                if err(e)[0] not in GONE:
                    raise
            iam.delete_role(RoleName=name)
        self.on_cleanup(f"IAM role {name}", delete)
        role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust),
                               Description="keyshift aws-check (deleted at the end of the run)")
        iam.put_role_policy(RoleName=name, PolicyName="probe", PolicyDocument=json.dumps(policy))
        return role["Role"]["Arn"]

    def setup(self, names):
        ident = self.client("sts").get_caller_identity()
        self.account, self.partition = ident["Account"], ident["Arn"].split(":")[1]
        date = ident.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
        if date:
            skew = parsedate_to_datetime(date).timestamp() + 0.5 - time.time()  # the header drops the fraction
            if abs(skew) >= 2:  # the Date header has one-second resolution
                self.skew = skew
                way = "behind" if skew > 0 else "ahead of"
                self.obs["notes"].append(f"this machine's clock is {abs(skew):.0f} s {way} AWS's (by the Date header); "
                                         "the script's times are corrected")
        say(f"run {self.id}: account {self.account}, region {self.region}, scenarios: {', '.join(names)}")
        self.probe = Probe(self)
        if "schedule-in-past" in names:
            invoke = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "lambda:InvokeFunction",
                                                              "Resource": [self.probe.arn, self.probe.arn + ":*"]}]}
            self.scheduler_role = self.create_role("scheduler", "scheduler.amazonaws.com", invoke)
        self.probe.deploy()
        self.logs = LogReader(self.client("logs"), self.probe.group, self.obs["started"])

    def run_scenarios(self, names):
        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            futures = [pool.submit(self.guarded, name) for name in names]
            try:
                while wait(futures, timeout=1)[1]:
                    pass
            except KeyboardInterrupt:
                say("interrupted: stopping the scenarios, then deleting everything")
                self.stop.set()
                wait(futures)
                raise

    def scenario(self, name):
        """The observations of one scenario (the report reads nothing else)."""
        return self.obs["scenarios"].setdefault(name, {"name": None, "secret": None, "start": self.now(), "calls": [],
                                                       "polls": [], "probe": [], "cloudtrail": [], "notes": []})

    def guarded(self, name):
        sc = self.scenario(name)
        try:
            globals()["scenario_" + name.replace("-", "_")](self)
        except Interrupted:
            sc["notes"].append("interrupted")
        except Exception as e:  # noqa: BLE001 - one scenario's failure is reported, the others go on
            code, msg = err(e)
            sc["error"] = f"{code}: {msg}"
            say(f"{name}: stopped by {code}: {msg}")

    # -- the rotation scenarios' building blocks --

    def new_secret(self, scenario):
        sm, name, sc = self.client("secretsmanager"), f"{self.id}-{scenario}", self.scenario(scenario)
        sc["name"] = name

        def delete():
            sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
            sc["deleted"] = self.now()
        self.on_cleanup(f"secret {name}", delete)
        r = sm.create_secret(Name=name, SecretString=secrets.token_urlsafe(24),
                             Description="keyshift aws-check throw-away secret (deleted at the end of the run)",
                             Tags=[{"Key": "probe:scenario", "Value": scenario},
                                   {"Key": "keyshift-check", "Value": self.id}])
        sc["secret"] = r["ARN"]
        return sc

    def rotate(self, sc):
        """RotateSecret with the probe; the token, or None when refused (recorded either way)."""
        deadline = time.time() + 60
        while True:
            t = self.now()
            try:
                r = self.client("secretsmanager").rotate_secret(
                    SecretId=sc["secret"], RotationLambdaARN=self.probe.arn,
                    RotationRules={"AutomaticallyAfterDays": 30}, RotateImmediately=True)
                sc["calls"].append({"t": t, "op": "RotateSecret", "token": r.get("VersionId")})
                return r.get("VersionId")
            except ClientError as e:
                code, msg = err(e)
                if code == "AccessDeniedException" and time.time() < deadline:
                    self.sleep(RETRY_PAUSE)  # the function's resource policy may still be propagating
                    continue
                sc["calls"].append({"t": t, "op": "RotateSecret", "error": code, "message": msg})
                return None

    def poll(self, sc):
        """One DescribeSecret, kept; True when the labels or LastRotatedDate changed."""
        d = self.client("secretsmanager").describe_secret(SecretId=sc["secret"])
        last = sc["polls"][-1] if sc["polls"] else None
        sc["polls"].append({"t": self.now(), "prev": last and last["t"], "labels": d.get("VersionIdsToStages", {}),
                            "last_rotated": str(d.get("LastRotatedDate") or "")})
        return last is None or any(last[k] != sc["polls"][-1][k] for k in ("labels", "last_rotated"))

    def watch(self, sc, token):
        """Polls until finishSecret succeeded for `token` and nothing changed for --settle
        seconds, or --timeout passed. True when it settled."""
        a, start, quiet, seen = self.args, time.time(), time.time(), -1
        while True:
            changed = self.poll(sc)
            sc["probe"] = self.logs.steps(sc)
            if len(sc["probe"]) != seen:
                seen, changed = len(sc["probe"]), True
            now = time.time()
            quiet = now if changed else quiet
            done = any(ln["step"] == "finishSecret" and ln.get("result") == "ok" and ln.get("token") == token
                       for ln in sc["probe"])
            if done and now - quiet >= a.settle:
                return True
            if now - start >= a.timeout:
                why = "while labels or invocations still changed" if done else "without a successful finishSecret"
                sc["notes"].append(f"watch of token {short(token)} ended at --timeout {a.timeout:.0f} s {why}")
                return False
            self.sleep(a.poll)

    def rotation(self, scenario, rotate_again=False):
        sc = self.new_secret(scenario)
        self.probe.ready(sc)
        say(f"{scenario}: rotating {sc['name']}")
        token = self.rotate(sc)
        if token:
            self.watch(sc, token)
            if rotate_again:
                say(f"{scenario}: the first rotation is over or timed out; a second RotateSecret")
                token = self.rotate(sc)
                if token:
                    self.watch(sc, token)
        sc["watched_until"] = self.now()
        r = self.client("secretsmanager").list_secret_version_ids(SecretId=sc["secret"], IncludeDeprecated=True)
        sc["final_versions"] = [{"id": v["VersionId"], "stages": v.get("VersionStages", []),
                                 "created": str(v.get("CreatedDate"))} for v in r.get("Versions", [])]
        say(f"{scenario}: done")
        return sc

    def create_schedule(self, sc, label, offset):
        sch, name = self.client("scheduler"), f"{self.id}-{label}"
        self.on_cleanup(f"schedule {name}", lambda: sch.delete_schedule(Name=name))
        deadline = time.time() + 60
        while True:
            due = datetime.fromtimestamp(self.now(), timezone.utc).replace(microsecond=0) + timedelta(seconds=offset)
            expr = f"at({due:%Y-%m-%dT%H:%M:%S})"
            payload = {"probe": "schedule", "label": label, "due": due.isoformat(),
                       "scheduled_time": "<aws.scheduler.scheduled-time>", "attempt": "<aws.scheduler.attempt-number>"}
            call = {"t": self.now(), "op": "CreateSchedule", "what": expr, "label": label, "due": due.timestamp()}
            try:
                sch.create_schedule(Name=name, ScheduleExpression=expr, ScheduleExpressionTimezone="UTC",
                                    FlexibleTimeWindow={"Mode": "OFF"}, ActionAfterCompletion="DELETE",
                                    Target={"Arn": self.probe.arn, "RoleArn": self.scheduler_role,
                                            "Input": json.dumps(payload)})
            except ClientError as e:
                code, msg = err(e)
                if code == "ValidationException" and "role" in msg.lower() and time.time() < deadline:
                    self.sleep(RETRY_PAUSE)  # the new scheduler role is not assumable yet
                    continue
                call.update(error=code, message=msg)
            sc["calls"].append(call)
            return


def short(vid):
    return (vid or "-")[:8]


# -- one function per scenario (each runs in its own thread, on its own secret) --

def scenario_baseline(run):
    run.rotation("baseline")


def scenario_finish_without_move(run):
    run.rotation("finish-without-move", rotate_again=True)


def scenario_copy_in_finish(run):
    run.rotation("copy-in-finish", rotate_again=True)


def scenario_copy_without_token(run):
    run.rotation("copy-without-token", rotate_again=True)


def scenario_fail_set(run):
    run.rotation("fail-set")


def scenario_placeholder(run):
    run.rotation("placeholder")


def scenario_schedule_in_past(run):
    sc = run.obs["scenarios"]["schedule-in-past"]
    say("schedule-in-past: one at() 30 s ahead, one 60 s in the past")
    run.create_schedule(sc, "future", 30)
    run.create_schedule(sc, "past", -60)
    accepted, start = [c["label"] for c in sc["calls"] if not c.get("error")], time.time()
    while True:
        sc["probe"] = sorted(run.logs.schedules(), key=lambda ln: ln["t"])
        pending = [a for a in accepted if not any(ln.get("label") == a for ln in sc["probe"])]
        if not pending:
            break
        if time.time() - start >= run.args.timeout:
            sc["notes"].append(f"not fired within --timeout {run.args.timeout:.0f} s: {', '.join(pending)}")
            break
        run.sleep(run.args.poll)
    sc["watched_until"] = run.now()
    say("schedule-in-past: done")


# -- CloudTrail --

def scrub(value):
    """Drops any field that could hold a value or a RotationToken."""
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items()
                if not any(w in k.lower() for w in ("rotationtoken", "secretstring", "secretbinary"))}
    return [scrub(v) for v in value] if isinstance(value, list) else value


def lookup_rotation_events(ct, start, end):
    """[(event, raw JSON)] for every rotation event name, paced for LookupEvents' 2 requests/s."""
    out = []
    for name in CT_NAMES:
        kw = {"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": name}],
              "StartTime": start, "EndTime": end, "MaxResults": 50}
        for _ in range(20):
            time.sleep(CT_PACE)
            r = ct.lookup_events(**kw)
            for e in r.get("Events", []):
                raw = e.get("CloudTrailEvent") or "{}"
                d = json.loads(raw)
                out.append(({"t": e["EventTime"].timestamp(), "name": e["EventName"], "error": d.get("errorCode"),
                             "message": (d.get("errorMessage") or "")[:300] or None,
                             "detail": scrub(d.get("additionalEventData"))}, raw))
            if not r.get("NextToken"):
                break
            kw["NextToken"] = r["NextToken"]
    return out


def read_cloudtrail(run, lookup=lookup_rotation_events):
    scs = {n: sc for n, sc in run.obs["scenarios"].items() if sc.get("secret")}
    wait_s = run.args.cloudtrail_wait
    if not scs:
        return
    if wait_s <= 0:
        run.obs["notes"].append("CloudTrail not read (--cloudtrail-wait 0): the outcome questions stay unsettled")
        return
    say(f"reading CloudTrail's rotation events (delivery can lag ~15 min; waiting up to {wait_s:.0f} s)")
    deadline, ct = time.time() + wait_s, run.client("cloudtrail")
    while True:
        events = lookup(ct, datetime.fromtimestamp(run.obs["started"] - 300, timezone.utc),
                        datetime.now(timezone.utc))
        for sc in scs.values():
            keys = (sc["secret"], f'"{sc["name"]}"', f':secret:{sc["name"]}-')
            sc["cloudtrail"] = sorted((e for e, raw in events if any(k in raw for k in keys)), key=lambda e: e["t"])
        waiting = [n for n, sc in scs.items() if len(ends(sc)) < len(tokens(sc))]
        if not waiting:
            return
        if time.time() >= deadline:
            run.obs["notes"].append(f"CloudTrail: gave up after {wait_s:.0f} s with no end event yet for: "
                                    f"{', '.join(waiting)} (a longer --cloudtrail-wait may settle those)")
            return
        say(f"CloudTrail: no end event yet for {', '.join(waiting)}; next look in {CT_PAUSE} s")
        time.sleep(CT_PAUSE)


# -- the report: a timeline and one answer per question, from the observations alone --

def fmt_labels(labels):
    return " ".join(f"{short(v)}[{','.join(s)}]" for v, s in labels.items() if s) or "(none)"


def rel(seconds):
    return f"{seconds:+.1f} s"


def tokens(sc):
    return [c["token"] for c in sc["calls"] if c.get("token")]


def ends(sc):
    """CloudTrail's end events for the secret, up to its deletion."""
    return [e for e in sc["cloudtrail"] if e["name"] in TERMINAL and e["t"] <= (sc.get("deleted") or float("inf"))]


def finish_ok(sc, token):
    return next((ln for ln in sc["probe"] if ln.get("step") == "finishSecret" and ln.get("result") == "ok"
                 and ln.get("token") == token), None)


def second_call(sc):
    return sc["calls"][1]["t"] if len(sc["calls"]) > 1 else float("inf")


def event_text(ln):
    if ln["probe"] == "schedule":
        return (f"schedule {ln.get('label')} fired (scheduled-time {ln.get('scheduled_time')}, "
                f"attempt {ln.get('attempt')})")
    parts = [f"{ln.get('step')} token {short(ln.get('token'))}",
             f"RotationToken {'present' if ln.get('rotation_token') else 'absent'}",
             ln.get("result", "?") + (f" {ln['error']}" if ln.get("error") else "")]
    parts += [f"{k}={ln[k]}" for k in ("placeholder_listed", "get_before_put", "pending_check", "put",
                                      "read_after_write", "test", "finish", "copy_put") if k in ln]
    parts += [f"copy {short(ln['copy'])}"] if ln.get("copy") else []
    return "; ".join(parts) + f"; labels after: {fmt_labels(ln.get('after', {}))}"


def call_text(c):
    head = c["op"] + (f" {c['what']}" if c.get("what") else "")
    if c.get("error"):
        return f"{head}: refused: {c['error']}: {c.get('message')}"
    return f"{head}: accepted" + (f", token {short(c['token'])}" if c.get("token") else "")


def timeline(sc):
    rows = [(c["t"], "script", call_text(c)) for c in sc["calls"]]
    rows += [(p["t"], "script", f"DescribeSecret: {fmt_labels(p['labels'])}"
              + (f"; LastRotatedDate {p['last_rotated']}" if p.get("last_rotated") else ""))
             for i, p in enumerate(sc["polls"]) if i == 0 or (p["labels"], p.get("last_rotated")) != (
                 sc["polls"][i - 1]["labels"], sc["polls"][i - 1].get("last_rotated"))]  # changes only
    rows += [(ln["t"], "probe", event_text(ln)) for ln in sc["probe"]]
    rows += [(e["t"], "cloudtrail", e["name"] + (f" {e['error']}: {e.get('message')}" if e.get("error") else ""))
             for e in sc["cloudtrail"]]
    if sc.get("final_versions"):
        rows.append((sc["watched_until"], "script", "ListSecretVersionIds (IncludeDeprecated): " + " ".join(
            f"{short(v['id'])}[{','.join(v['stages'])}] created {v['created']}" for v in sc["final_versions"])))
    rows += [(sc["deleted"], "script", "DeleteSecret (clean-up)")] if sc.get("deleted") else []
    return [{"t": t, "who": who, "what": what} for t, who, what in sorted(rows, key=lambda r: r[0])]


def snapshots(sc):
    """Every view of the labels: (time, labels, when they were last seen before, by whom)."""
    out = [(p["t"], p["labels"], p.get("prev"), "a DescribeSecret poll") for p in sc["polls"]]
    out += [(ln["t"], ln["before"], None, f"the probe at {ln['step']}") for ln in sc["probe"] if "before" in ln]
    out += [(ln["t_end"], ln["after"], None, f"the probe after {ln['step']}") for ln in sc["probe"] if "after" in ln]
    return sorted(out, key=lambda s: s[0])


def outcome(sc):
    if ends(sc):
        return "observed: " + ", ".join(f"{e['name']} at {rel(e['t'] - sc['start'])}" for e in ends(sc)) + \
            " (CloudTrail)"
    return "unsettled: no RotationSucceeded, RotationFailed or RotationAbandoned in CloudTrail (see the notes)"


def pending_fate(sc, vid, fin, what):
    """Whether and when AWSPENDING left `vid` after finishSecret `fin` returned, up to a
    second RotateSecret, and where it was last seen (no 'observed:' prefix)."""
    if "after" in fin and "AWSPENDING" not in fin["after"].get(vid, []):
        return f"{what} had already lost AWSPENDING when finishSecret returned"
    views = [s for s in snapshots(sc) if fin["t_end"] < s[0] < second_call(sc)]
    for t, labels, prev, who in views:
        if "AWSPENDING" not in labels.get(vid, []):
            window = f", not yet at {rel(prev - fin['t_end'])}" if prev and prev > fin["t_end"] else ""
            now_on = next((v for v, s in labels.items() if "AWSPENDING" in s), None)
            return (f"yes: {what} had lost AWSPENDING {rel(t - fin['t_end'])} after finishSecret returned "
                    f"(seen by {who}{window}); AWSPENDING was then on {short(now_on) if now_on else 'no version'}")
    if not views:
        return "unsettled: the labels were not read after finishSecret"
    return f"no: {what} still carried AWSPENDING {rel(views[-1][0] - fin['t_end'])} after finishSecret returned"


def observed(text):
    return text if text.startswith("unsettled") else "observed: " + text


def next_rotation(sc):
    if len(sc["calls"]) < 2:
        return "unsettled: no second RotateSecret was made (the first rotation did not end in time)"
    c = sc["calls"][1]
    if c.get("error"):
        return f"observed: refused: {c['error']}: {c.get('message')}"
    return f"observed: accepted (new token {short(c['token'])}); its finishSecret " + (
        "succeeded" if finish_ok(sc, c["token"]) else "was not seen succeed")


NO_FINISH = "unsettled: finishSecret was not seen succeed for the first token"


def answers_baseline(sc):
    tok = (tokens(sc) or [None])[0]
    fin = finish_ok(sc, tok)
    return [("Outcome?", outcome(sc)),
            ("Does AWSPENDING leave the token's version, and where does it end up?",
             observed(pending_fate(sc, tok, fin, "the token's version")) if fin else NO_FINISH)]


def answers_finish_without_move(sc):
    tok = (tokens(sc) or [None])[0]
    fin = finish_ok(sc, tok)
    if fin:
        later = [ln for ln in sc["probe"] if fin["t_end"] < ln["t"] < second_call(sc)]
        watched = min(second_call(sc), sc.get("watched_until") or fin["t_end"]) - fin["t_end"]
        retry = (f"observed: yes: {len(later)} invocation(s) after it, the first {later[0]['step']} at "
                 f"{rel(later[0]['t'] - fin['t_end'])}, " + ("all with the same token" if all(
                     ln.get("token") == tok for ln in later) else "not all with the same token")) if later else (
            f"observed: no invocation in the {watched:.0f} s watched after finishSecret returned")
    return [("Does the engine strip AWSPENDING from the token's version, and how soon?",
             observed(pending_fate(sc, tok, fin, "the token's version")) if fin else NO_FINISH),
            ("RotationSucceeded or RotationFailed?", outcome(sc)),
            ("Does it retry, and with the same token?", retry if fin else NO_FINISH),
            ("Is the next RotateSecret refused?", next_rotation(sc))]


def answers_copy(sc):
    tok = (tokens(sc) or [None])[0]
    fin = finish_ok(sc, tok)
    if not fin:
        return [("Is the put refused?", NO_FINISH), ("Outcome?", outcome(sc)),
                ("Is the next RotateSecret refused?", next_rotation(sc))]
    sent = fin.get("copy_rotation_token", "not sent")
    sent += "" if fin.get("rotation_token") or sent != "not sent" else " (the event had none to pass)"
    if fin.get("copy_put") == "ok":
        put = f"observed: accepted (RotationToken {sent})"
        copy_fate = pending_fate(sc, fin["copy"], fin, "the copy").replace("unsettled: ", "")
        token_fate = pending_fate(sc, tok, fin, "the token's version").replace("unsettled: ", "")
        lost = (f"observed: right after the copy: {fmt_labels(fin.get('after', {}))}; the copy: {copy_fate}; "
                f"the token's version: {token_fate}")
    else:
        put = f"observed: refused: {fin.get('copy_put')}: {fin.get('copy_put_message')} (RotationToken {sent})"
        lost = "unsettled: the copy was refused, so there is no copy to follow"
    names = [e["name"] for e in ends(sc)]
    abandoned = ("observed: yes: RotationAbandoned" if "RotationAbandoned" in names else
                 f"observed: no: {', '.join(names)}" if names else outcome(sc))
    return [("Is the put refused (which error code)?", put),
            ("Does the engine abandon the rotation (RotationAbandoned)?", abandoned),
            ("Which version loses AWSPENDING?", lost),
            ("Is the next RotateSecret refused?", next_rotation(sc))]


def answers_fail_set(sc):
    tok = (tokens(sc) or [None])[0]
    fail = next((ln for ln in sc["probe"] if ln.get("step") == "setSecret" and ln.get("result") == "error"), None)
    if not fail:
        return [("Does the engine retry?", "unsettled: the deliberate setSecret failure was not seen")]
    later = [ln for ln in sc["probe"] if ln["t"] > fail["t"]]
    if not later:
        watched = (sc.get("watched_until") or fail["t_end"]) - fail["t_end"]
        return [("Does the engine retry?", f"observed: no invocation in the {watched:.0f} s watched after the failure"),
                ("Outcome?", outcome(sc))]
    first = later[0]
    gap = [(t, who) for t, labels, _, who in snapshots(sc)
           if fail["t_end"] < t < first["t"] and "AWSPENDING" not in labels.get(tok, [])]
    back = "AWSPENDING" in first.get("before", {}).get(tok, [])
    return [("Does the engine retry?", f"observed: yes: {len(later)} invocation(s) after the failure"),
            ("When?", "observed: " + ", ".join(f"{ln['step']} at {rel(ln['t'] - fail['t_end'])}" for ln in later[:6])
             + " after the failed setSecret returned"),
            ("Same ClientRequestToken?",
             "observed: " + ("yes" if all(ln.get("token") == tok for ln in later) else "no")),
            ("Is AWSPENDING on the token's version at the retry?", "observed: " + ("yes" if back else "no")
             + (f"; it had lost it in between ({gap[0][1]}, {rel(gap[0][0] - fail['t_end'])})" if gap
                else "; it was never seen without it in between")),
            ("Does it restart at createSecret?", f"observed: {'yes' if first['step'] == 'createSecret' else 'no'}: "
             f"the first step after the failure was {first['step']}"),
            ("Outcome?", outcome(sc))]


def answers_placeholder(sc):
    c = next((ln for ln in sc["probe"] if ln.get("step") == "createSecret" and "placeholder_listed" in ln), None)
    if not c:
        return [("What does createSecret see?", "unsettled: no createSecret was seen")]
    raw = c.get("read_after_write")
    return [("Does ListSecretVersionIds list the value-less placeholder?",
             "observed: " + (f"yes, with stages {c.get('placeholder_stages')}" if c["placeholder_listed"] else "no")),
            ("What does GetSecretValue(VersionId=token) answer before the put?",
             f"observed: {c.get('get_before_put')}"),
            ("Is the value readable right after PutSecretValue (read-after-write)?",
             ("observed: " + ("yes" if raw == "found" else f"no: {raw}")) if raw
             else f"unsettled: the put was {c.get('put')}")]


def answers_schedule_in_past(sc):
    def answer(label, base, since):
        c = next((c for c in sc["calls"] if c.get("label") == label), None)
        fired = [ln for ln in sc["probe"] if ln.get("label") == label]
        if not c:
            return "unsettled: not tried"
        if c.get("error"):
            return f"observed: refused: {c['error']}: {c.get('message')}"
        if not fired:
            return "observed: accepted, and did not fire while watched"
        return (f"observed: accepted; fired {rel(fired[0]['t'] - c[base])} {since.format(what=c['what'])} "
                f"(scheduled-time attribute {fired[0].get('scheduled_time')}, attempt {fired[0].get('attempt')}; "
                "includes the probe's start-up)")
    return [("Does CreateSchedule accept an at() one minute in the past, and does it fire?",
             answer("past", "t", "after CreateSchedule")),
            ("How precisely does an at() 30 s ahead fire?", answer("future", "due", "from its due time {what}"))]


ANSWERS = {"baseline": answers_baseline, "finish-without-move": answers_finish_without_move,
           "copy-in-finish": answers_copy, "copy-without-token": answers_copy, "fail-set": answers_fail_set,
           "placeholder": answers_placeholder, "schedule-in-past": answers_schedule_in_past}


def general_answers(obs):
    lines = [ln for sc in obs["scenarios"].values() for ln in sc["probe"] if ln["probe"] == "step"]
    if not lines:
        return []
    sent = sorted({ln["put_rotation_token"] for ln in lines if "put_rotation_token" in ln})
    return [("Does the engine send a RotationToken?",
             f"observed: present in {sum(bool(ln.get('rotation_token')) for ln in lines)} of {len(lines)} invocations"),
            ("Which botocore does the python3.12 runtime bundle?",
             f"observed: {', '.join(sorted({str(ln.get('botocore')) for ln in lines}))}; "
             f"createSecret sent the RotationToken as: {', '.join(sent) or 'never sent'}")]


class Report:
    """The report builder: the observations in (nothing else), per scenario a timeline and
    one answer per question out, as a dict (for --json) and as text."""

    def __init__(self, obs):
        def qa(pairs):
            return [{"question": q, "answer": a} for q, a in pairs]
        self.data = {
            "run": obs.get("run"), "region": obs.get("region"), "notes": list(obs.get("notes", [])),
            "not_deleted": list(obs.get("not_deleted", [])), "general": qa(general_answers(obs)),
            "scenarios": {name: {"secret": sc.get("name"), "timeline": timeline(sc), "answers": qa(ANSWERS[name](sc)),
                                 "notes": sc["notes"] + ([f"stopped by {sc['error']}"] if sc.get("error") else [])}
                          for name, sc in obs["scenarios"].items()}}

    def text(self):
        return render(self.data)


def render(rep):
    out = [f"== aws-check report: run {rep['run']}, region {rep['region']} =="]
    for name, r in rep["scenarios"].items():
        out.append(f"\n-- {name}" + (f" ({r['secret']})" if r.get("secret") else "") + " --")
        t0 = r["timeline"][0]["t"] if r["timeline"] else 0
        for row in r["timeline"]:
            stamp = datetime.fromtimestamp(row["t"], timezone.utc).strftime("%H:%M:%S.%f")[:-5]
            out.append(f"  {stamp} {rel(row['t'] - t0):>9}  {row['who']:<10} {row['what']}")
        out += [f"  note: {n}" for n in r["notes"]] + [f"  * {a['question']} {a['answer']}" for a in r["answers"]]
    if rep["general"]:
        out += ["\n-- every scenario --"] + [f"  * {a['question']} {a['answer']}" for a in rep["general"]]
    return "\n".join(out + [f"note: {n}" for n in rep["notes"]] + [f"NOT DELETED: {n}" for n in rep["not_deleted"]])


def execute(run, names):
    """Setup and scenarios, then the clean-up in a finally; then CloudTrail and the report.
    Returns the exit code."""
    ok = True
    try:
        run.setup(names)
        run.run_scenarios(names)
    except KeyboardInterrupt:
        run.obs["notes"].append("interrupted (Ctrl-C): the report covers what was observed until then")
        ok = False
    except Exception as e:  # noqa: BLE001 - reported, then cleaned up
        code, msg = err(e)
        run.obs["notes"].append(f"stopped by {code}: {msg}")
        say(f"stopped by {code}: {msg}")
        ok = False
    finally:
        ok = run.cleanup() and ok
    try:
        read_cloudtrail(run)
    except KeyboardInterrupt:
        run.obs["notes"].append("CloudTrail wait interrupted (Ctrl-C)")
    except Exception as e:  # noqa: BLE001
        run.obs["notes"].append("CloudTrail not read: %s: %s" % err(e))
    report = Report(run.obs)
    print(report.text(), flush=True)
    if run.args.json:
        with open(run.args.json, "w") as f:
            json.dump({"observations": run.obs, "report": report.data}, f, indent=2, default=str)
        say(f"wrote {run.args.json}")
    return 0 if ok and not any(sc.get("error") for sc in run.obs["scenarios"].values()) else 1


def parse_args(argv):
    p = argparse.ArgumentParser(description="Settle the Secrets Manager rotation engine's undocumented behaviours "
                                            "on a real AWS account (opt in with KEYSHIFT_AWS_CHECK=1).")
    p.add_argument("--timeout", type=float, default=300, help="seconds to watch one rotation at most (default 300)")
    p.add_argument("--settle", type=float, default=90,
                   help="seconds without a new invocation or label change after finishSecret before a rotation "
                        "counts as ended (default 90)")
    p.add_argument("--poll", type=float, default=5, help="seconds between DescribeSecret polls (default 5)")
    p.add_argument("--cloudtrail-wait", type=float, default=900,
                   help="seconds to wait for CloudTrail's rotation events (default 900 = 15 min; 0 skips CloudTrail)")
    p.add_argument("--scenarios", default=",".join(SCENARIOS),
                   help="comma-separated subset of: " + ", ".join(SCENARIOS))
    p.add_argument("--json", metavar="FILE", help="also write the observations and the report as JSON")
    args = p.parse_args(argv)
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = sorted(set(args.scenarios) - set(SCENARIOS))
    if unknown or not args.scenarios:
        p.error(f"unknown scenarios: {', '.join(unknown)}" if unknown else "no scenario selected")
    return args


def main(argv=None, env=None):
    args = parse_args(argv)
    session, why = preflight(os.environ if env is None else env)
    if session is None:
        print(f"aws-check: skipped: {why}", flush=True)
        return 0
    return execute(Run(session, args), args.scenarios)


if __name__ == "__main__":
    sys.exit(main())
