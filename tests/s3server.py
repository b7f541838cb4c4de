"""A real S3 API server for the tests: moto's server in a process of its own on 127.0.0.1, never a mock of the client.

Run as a script it serves S3 on the port given, and obeys lines on its standard input: ``stop`` closes the HTTP
listener (clients then get connection refused, as from a server that went down), ``start`` opens it again on the
same port with the buckets as they were; end of input ends it. :class:`S3Server` starts one and drives it.

With ``auth`` the server checks credentials (moto's IAM checks, after the few unchecked calls that make a user and
its key): :attr:`S3Server.options` holds that user's key, and any other key is refused as S3 refuses it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from typing import Any

#: The calls that make the user, its policy and its key, before moto starts checking credentials.
SETUP_CALLS = 3
POLICY = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class S3Server:
    """moto's S3 server in a child process, on a free port of 127.0.0.1."""

    def __init__(self, auth: bool = False) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "MOTO_PORT": str(self.port)}
        env.pop("AWS_PROFILE", None)
        if auth:
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(SETUP_CALLS)
        self.process = subprocess.Popen(
            [sys.executable, __file__, str(self.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        self._expect("started")
        self.key, self.secret = "testing", "testing"
        if auth:
            self.key, self.secret = self._make_user()

    @property
    def options(self) -> dict[str, Any]:
        """The storage options an s3fs client needs to reach it (the endpoint, the key, no retry storms)."""
        return {"endpoint_url": self.endpoint, "key": self.key, "secret": self.secret, "client_kwargs": {
            "region_name": "us-east-1"}}  # fmt: skip

    def cli_options(self, **extra: Any) -> list[str]:
        """The same as --storage-option arguments."""
        import json

        pairs = {**self.options, **extra}
        return [arg for key, value in pairs.items() for arg in ("--storage-option", f"{key}={json.dumps(value)}"
                if not isinstance(value, str) else f"{key}={value}")]  # fmt: skip

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=self.key, aws_secret_access_key=self.secret,
            region_name="us-east-1",
        )  # fmt: skip

    def _make_user(self) -> tuple[str, str]:
        import boto3

        iam = boto3.client(
            "iam", endpoint_url=self.endpoint, aws_access_key_id="setup", aws_secret_access_key="setup",
            region_name="us-east-1",
        )  # fmt: skip
        iam.create_user(UserName="sneakernet")
        iam.put_user_policy(UserName="sneakernet", PolicyName="all", PolicyDocument=POLICY)
        key = iam.create_access_key(UserName="sneakernet")["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    def _expect(self, word: str) -> None:
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if line != word:
            raise RuntimeError(f"the S3 test server said {line!r}, not {word!r}")

    def _say(self, word: str, answer: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(word + "\n")
        self.process.stdin.flush()
        self._expect(answer)

    def stop(self) -> None:
        """Close the listener: clients get connection refused until :meth:`start`."""
        self._say("stop", "stopped")

    def start(self) -> None:
        self._say("start", "started")

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def _serve(port: int) -> None:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    print("started", flush=True)
    for line in sys.stdin:
        if line.strip() == "stop":
            server.stop()
            print("stopped", flush=True)
        elif line.strip() == "start":
            # A new listener over the same backends: the buckets are as they were.
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
            server.start()
            print("started", flush=True)
    server.stop()


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
