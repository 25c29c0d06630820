#!/usr/bin/env python3
"""The rotation function's deployed size, cold start and peak memory, beside the AWS
Python rotation template's (import boto3 + a Secrets Manager client).

Run by `make measure-bootstrap`. Standard library only.

* zip: the bootstrap zipped as Lambda gets it (`bootstrap` at the zip root, deflate 9).
* cold start: process start (just before fork/exec) to the first
  `GET /2018-06-01/runtime/invocation/next` reaching a minimal Runtime API on
  127.0.0.1 (a thread of this script); the median and the spread of RUNS runs, after
  one warm-up run that is not counted.
* peak memory: VmHWM of the process (/proc/PID/status) while it waits on that first
  request, read just before it is killed; the median of the runs.

The Python side is the start of the AWS Secrets Manager rotation template: the
interpreter, `import boto3` and `boto3.client("secretsmanager")` (the template makes
the client in its handler), then the same first request to the same Runtime API (with
http.client, which botocore has already imported). Lambda's own Python runtime client
(awslambdaric) is not included: that favours Python.

Only loopback traffic: the function is given dummy credentials and a Region, and
makes no AWS call before its first invocation.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = "keyshift-rotation"
NEXT = b"GET /2018-06-01/runtime/invocation/next"

# What the function needs to start: the Lambda runtime's variables, keyshift's required
# configuration (README, "Configuration"), a Region and dummy credentials.
FUNCTION_ENV = {
    "AWS_LAMBDA_FUNCTION_NAME": "keyshift-rotation",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_LOG_STREAM_NAME": "measure",
    "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/keyshift-rotation",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "AKIDMEASURE",
    "AWS_SECRET_ACCESS_KEY": "measure",
    "AWS_SESSION_TOKEN": "measure",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    "KEYSHIFT_GAP_SECONDS": "3900",
    "KEYSHIFT_SCHEDULER": "scheduler",
    "KEYSHIFT_SCHEDULER_ROLE_ARN": "arn:aws:iam::123456789012:role/keyshift-scheduler",
    "KEYSHIFT_SCHEDULE_GROUP": "keyshift",
    "RUST_LOG": "info",
}

# Where the one-file root certificate bundle is (Debian, then Amazon Linux).
CERT_BUNDLES = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"]

PYTHON_TEMPLATE = """
import os, http.client
import boto3
service_client = boto3.client("secretsmanager")
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
c = http.client.HTTPConnection(host, int(port))
c.request("GET", "/2018-06-01/runtime/invocation/next")
c.getresponse()
"""


class RuntimeApi:
    """Accepts one connection at a time and records when the first `next` request
    arrives; never answers it (the process stays parked in its long poll)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.arrived = threading.Event()
        self.at_ns = 0
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        buf = b""
        while NEXT not in buf:
            try:
                chunk = conn.recv(4096)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
        if not self.arrived.is_set():
            self.at_ns = time.monotonic_ns()
            self.arrived.set()

    def reset(self) -> None:
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass
        self.conns.clear()
        self.at_ns = 0
        self.arrived.clear()


def vm_hwm_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def one_run(api: RuntimeApi, argv: list[str], env: dict[str, str], timeout: float) -> tuple[float, float]:
    """(milliseconds to the first request, peak RSS in MiB)."""
    api.reset()
    full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env}
    full_env["AWS_LAMBDA_RUNTIME_API"] = f"127.0.0.1:{api.port}"
    t0 = time.monotonic_ns()
    proc = subprocess.Popen(argv, env=full_env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        if not api.arrived.wait(timeout):
            proc.kill()
            _, err = proc.communicate()
            raise RuntimeError(f"{argv[0]}: no request to the Runtime API in {timeout} s: {err.decode(errors='replace')[-2000:]}")
        hwm = vm_hwm_kib(proc.pid)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    return (api.at_ns - t0) / 1e6, hwm / 1024


def measure(api: RuntimeApi, argv: list[str], env: dict[str, str], runs: int) -> dict[str, float]:
    one_run(api, argv, env, 30)  # warm-up: page cache, .pyc files
    starts, peaks = [], []
    for _ in range(runs):
        s, p = one_run(api, argv, env, 30)
        starts.append(s)
        peaks.append(p)
    return {
        "start_ms": statistics.median(starts),
        "start_min": min(starts),
        "start_max": max(starts),
        "peak_mib": statistics.median(peaks),
    }


def build(profile: str) -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    cmd = [os.environ.get("CARGO", "cargo"), "build", "--profile", profile, "-p", "keyshift-lambda", "--bin", BIN]
    print("+", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, cwd=ROOT, check=True)
    out_dir = "debug" if profile == "dev" else profile
    return target / out_dir / BIN


def zip_size(bootstrap: Path) -> int:
    with tempfile.TemporaryDirectory() as d:
        z = Path(d) / "function.zip"
        with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
            info = zipfile.ZipInfo("bootstrap")
            info.external_attr = 0o755 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, bootstrap.read_bytes(), compresslevel=9)
        return z.stat().st_size


def amazon_linux_layout(tmp: Path, bundle: Path) -> dict[str, str]:
    """What the bootstrap's certificate loading finds on Lambda's Amazon Linux 2023, rebuilt
    from this machine's bundle, as the variables that point rustls-native-certs at it.

    Without SSL_CERT_FILE and SSL_CERT_DIR, rustls-native-certs takes openssl-probe's
    answer: on the Fedora/RHEL layout that Amazon Linux 2023 follows, the file
    /etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem and the directory
    /etc/pki/tls/certs, which holds two symlinks: ca-bundle.crt (to that same file, read
    once: files are told apart by inode) and ca-bundle.trust.crt (to
    /etc/pki/ca-trust/extracted/openssl/ca-bundle.trust.crt, the same roots as OpenSSL
    "TRUSTED CERTIFICATE" blocks, which are read and skipped). Modelled here with this
    machine's roots: the trust bundle is the bundle with its blocks relabelled (the real
    one also carries each root's trust settings, a few dozen bytes each). An assumption,
    not a measurement on Lambda: the layout is the distribution's, the roots are Debian's.
    """
    pem, openssl, certs = tmp / "pem", tmp / "openssl", tmp / "certs"
    for d in (pem, openssl, certs):
        d.mkdir()
    text = bundle.read_text()
    (pem / "tls-ca-bundle.pem").write_text(text)
    (openssl / "ca-bundle.trust.crt").write_text(
        text.replace("-----BEGIN CERTIFICATE-----", "-----BEGIN TRUSTED CERTIFICATE-----").replace(
            "-----END CERTIFICATE-----", "-----END TRUSTED CERTIFICATE-----"
        )
    )
    (certs / "ca-bundle.crt").symlink_to(pem / "tls-ca-bundle.pem")
    (certs / "ca-bundle.trust.crt").symlink_to(openssl / "ca-bundle.trust.crt")
    return {"SSL_CERT_FILE": str(pem / "tls-ca-bundle.pem"), "SSL_CERT_DIR": str(certs)}


def mb(n: int) -> str:
    return f"{n / 1_000_000:.2f} MB"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="bootstrap", help="Cargo profile to build the bootstrap with (default: bootstrap)")
    ap.add_argument("--bootstrap", type=Path, help="measure this binary instead of building one")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--python", default=None, help="the interpreter with boto3 (default: $KEYSHIFT_VENV/bin/python)")
    ap.add_argument("--no-python", action="store_true", help="skip the Python template")
    ap.add_argument("--no-bundle-row", action="store_true", help="skip the runs with SSL_CERT_FILE set and with the Amazon Linux layout")
    args = ap.parse_args()

    bootstrap = args.bootstrap or build(args.profile)
    label = str(args.bootstrap) if args.bootstrap else f"keyshift bootstrap (profile {args.profile})"
    api = RuntimeApi()
    rows = []
    size, zsize = mb(bootstrap.stat().st_size), mb(zip_size(bootstrap))
    rust = measure(api, [str(bootstrap)], FUNCTION_ENV, args.runs)
    rows.append((label, size, zsize, rust))
    # The SDK's HTTPS client loads the platform's root certificates at start
    # (rustls-native-certs): the bundle and, unless SSL_CERT_FILE or SSL_CERT_DIR is
    # set, every file of the certificate directory. Debian's has hundreds.
    bundle = next((b for b in CERT_BUNDLES if Path(b).exists()), None)
    if bundle and not args.no_bundle_row:
        r = measure(api, [str(bootstrap)], {**FUNCTION_ENV, "SSL_CERT_FILE": bundle}, args.runs)
        rows.append((f"  same, SSL_CERT_FILE={bundle}", size, zsize, r))
        with tempfile.TemporaryDirectory() as tmp:
            r = measure(api, [str(bootstrap)], {**FUNCTION_ENV, **amazon_linux_layout(Path(tmp), Path(bundle))}, args.runs)
        rows.append(("  same, Amazon Linux 2023's certificate layout (modelled)", size, zsize, r))

    if not args.no_python:
        python = args.python or str(Path(os.environ.get("KEYSHIFT_VENV", ROOT / ".venv")) / "bin" / "python")
        if not Path(python).exists():
            print(f"{python} not found: run `make venv` (boto3 comes with moto)", file=sys.stderr)
            return 1
        version = subprocess.run(
            [python, "-c", "import sys, boto3; print(sys.version.split()[0], boto3.__version__)"],
            capture_output=True, text=True, check=True,
        ).stdout.split()
        py = measure(api, [python, "-c", PYTHON_TEMPLATE], FUNCTION_ENV, args.runs)
        rows.append((f"Python {version[0]} + boto3 {version[1]} (rotation template start)", "-", "-", py))

    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\n{args.runs} runs each, median (min-max); {os.cpu_count()} cores, load average {load}; Linux {os.uname().release}\n")
    print(f"| {'what':<58} | {'binary':>9} | {'zip':>9} | {'cold start (ms)':>22} | {'peak RSS':>9} |")
    print(f"|{'-' * 60}|{'-' * 11}|{'-' * 11}|{'-' * 24}|{'-' * 11}|")
    for name, size, zsize, r in rows:
        start = f"{r['start_ms']:.1f} ({r['start_min']:.1f}-{r['start_max']:.1f})"
        print(f"| {name:<58} | {size:>9} | {zsize:>9} | {start:>22} | {r['peak_mib']:>5.1f} MiB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
