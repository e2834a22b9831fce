"""The gateway's logging config keeps botocore's credential-bearing DEBUG lines out of the log for
every botocore user (Bedrock, and the S3 and DynamoDB destinations), not only once Bedrock is built."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
TOKEN = "FQoGZXIvYXdzEXAMPLESESSIONTOKEN"
STS_SECRET = "wJalrXUtnFEMIEXAMPLESTSSECRET"

# Run in a child: dictConfig changes the process's loggers, and the config is what the CLI installs.
SCRIPT = textwrap.dedent(f"""
    import logging, logging.config
    from app.server.accesslog import log_config
    logging.config.dictConfig(log_config(logging.DEBUG))  # --detailed_debug
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    from botocore.parsers import create_parser
    request = AWSRequest("PUT", "https://bucket.s3.us-east-1.amazonaws.com/span.json", data=b"{{}}")
    SigV4Auth(Credentials("AKIDEXAMPLE", "secret", {TOKEN!r}), "s3", "us-east-1").add_auth(request)
    body = b"<AssumeRoleResponse><SecretAccessKey>{STS_SECRET}</SecretAccessKey></AssumeRoleResponse>"
    try:
        create_parser("query").parse({{"headers": {{}}, "body": body, "status_code": 200}}, None)
    except Exception:
        pass
    logging.getLogger("spangate.check").debug("debug is on")
""")


def test_detailed_debug_logs_no_session_token_nor_sts_body() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=60, check=True)
    assert "spangate.check: debug is on" in done.stderr  # the capture is at DEBUG
    assert TOKEN not in done.stderr and STS_SECRET not in done.stderr
    assert "botocore.auth" not in done.stderr and "botocore.parsers" not in done.stderr
