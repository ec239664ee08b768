"""The S3 remote, against a real S3-protocol server on loopback (moto's standalone server).

The server runs as a subprocess on 127.0.0.1 and a free port, with IAM authentication on
(`INITIAL_NO_AUTH_ACTION_COUNT`): the first four requests create a user, its policy, its access
key and the bucket; every request after that must be signed with that key. DVC reaches it
through the project's `storage` remote, with `endpointurl` and the credentials set the way a
user sets them (`.dvc/config.local` and the environment), never in the committed config.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import BIN, git, tool_env
from tests.integration.conftest import ran

BUCKET = "tabml-test"
# outputs DVC caches (and so pushes); cache: false reports stay in the workspace
CACHED = ["data/raw", "data/interim", "data/processed", "data/predictions", "models"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class S3Server:
    def __init__(self, tmp: Path, host: str = "127.0.0.1") -> None:
        self.port = free_port()
        # an empty AWS config: never the machine's own profiles or credentials
        self.aws_config = tmp / "aws-config"
        self.aws_config.write_text("")
        self.endpoint = f"http://{host}:{self.port}"
        env = {**tool_env(), "INITIAL_NO_AUTH_ACTION_COUNT": "4"}
        self.log = (tmp / "moto.log").open("w")
        self.proc = subprocess.Popen(
            [str(BIN / "moto_server"), "-H", host, "-p", str(self.port)],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection((host, self.port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"moto_server did not start: {(tmp / 'moto.log').read_text()}")
        self.key, self.secret = self._bootstrap()

    def client(self, service: str, key: str = "bootstrap", secret: str = "bootstrap") -> object:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=key,
            aws_secret_access_key=secret,
        )

    def _bootstrap(self) -> tuple[str, str]:
        iam = self.client("iam")
        iam.create_user(UserName="tabml")  # type: ignore[attr-defined]
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
        }
        iam.put_user_policy(  # type: ignore[attr-defined]
            UserName="tabml", PolicyName="s3", PolicyDocument=json.dumps(policy)
        )
        key = iam.create_access_key(UserName="tabml")["AccessKey"]  # type: ignore[attr-defined]
        self.client("s3").create_bucket(Bucket=BUCKET)  # type: ignore[attr-defined]
        return key["AccessKeyId"], key["SecretAccessKey"]

    def s3(self) -> object:
        return self.client("s3", self.key, self.secret)

    def env(self, secret: str | None = None) -> dict[str, str]:
        return {
            **tool_env(),
            "AWS_ACCESS_KEY_ID": self.key,
            "AWS_SECRET_ACCESS_KEY": secret or self.secret,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(self.aws_config),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.aws_config),
        }

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.close()


def dvc(
    repo: Path, *args: str, env: dict[str, str], check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(BIN / "dvc"), *args], cwd=repo, env=env, capture_output=True, text=True
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def point_at(repo: Path, server: S3Server, prefix: str) -> None:
    """What a user does once per clone: bucket and endpoint in the git-ignored local config."""
    env = server.env()
    dvc(repo, "remote", "modify", "--local", "storage", "url", f"s3://{BUCKET}/{prefix}", env=env)
    dvc(repo, "remote", "modify", "--local", "storage", "endpointurl", server.endpoint, env=env)


def digests(repo: Path) -> dict[str, str]:
    out = {}
    for top in CACHED:
        for f in sorted((repo / top).rglob("*")):
            if f.is_file():
                out[f.relative_to(repo).as_posix()] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def pushed(project: Path, server: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the built project, its lock committed, pushed with its run-cache."""
    repo = tmp_path_factory.mktemp("remote") / "repo"
    shutil.copytree(project, repo, symlinks=True)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", "pipeline run")
    point_at(repo, server, "store")
    dvc(repo, "push", "--run-cache", env=server.env())
    return repo


def test_push_wipe_and_verified_pull_restore_every_output(pushed: Path, server: S3Server) -> None:
    s3 = server.s3()
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="store/")  # type: ignore[attr-defined]
    assert listed["KeyCount"] > 0
    # .dvc/config asks for server-side encryption: every upload carried the header, and the
    # server reports each object encrypted at rest
    for obj in listed["Contents"]:
        head = s3.head_object(Bucket=BUCKET, Key=obj["Key"])  # type: ignore[attr-defined]
        assert head.get("ServerSideEncryption") == "AES256", obj["Key"]
    before = digests(pushed)
    assert "models/package/MANIFEST.sha256" in before
    shutil.rmtree(pushed / ".dvc/cache")
    for top in CACHED:
        shutil.rmtree(pushed / top)
    dvc(pushed, "remote", "modify", "--local", "storage", "verify", "true", env=server.env())
    dvc(pushed, "pull", env=server.env())
    assert digests(pushed) == before
    status = dvc(pushed, "status", env=server.env()).stdout
    assert "up to date" in status, status


def test_second_clone_reproduces_by_pulling_without_running_a_stage(
    pushed: Path, server: S3Server, tmp_path: Path
) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(pushed), str(clone)], check=True)
    point_at(clone, server, "store")
    proc = dvc(clone, "repro", "--pull", "--allow-missing", env=server.env())
    assert ran(proc.stdout) == [], proc.stdout
    # the committed metrics came with git; the data and models come with one pull
    assert (clone / "reports/metrics.json").is_file()
    dvc(clone, "pull", env=server.env())
    assert digests(clone) == digests(pushed)
    assert "up to date" in dvc(clone, "status", env=server.env()).stdout


def test_an_object_corrupted_in_the_remote_is_detected_on_pull(
    pushed: Path, server: S3Server, tmp_path: Path
) -> None:
    import yaml

    s3 = server.s3()
    train_outs = yaml.safe_load((pushed / "dvc.lock").read_text())["stages"]["train"]["outs"]
    md5 = next(o["md5"] for o in train_outs if o["path"] == "models/reference.parquet")
    contents = s3.list_objects_v2(Bucket=BUCKET, Prefix="store/")["Contents"]  # type: ignore[attr-defined]
    victim = next(o["Key"] for o in contents if o["Key"].endswith(f"{md5[:2]}/{md5[2:]}"))
    s3.put_object(Bucket=BUCKET, Key=victim, Body=b"corrupted")  # type: ignore[attr-defined]
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(pushed), str(clone)], check=True)
    point_at(clone, server, "store")
    dvc(clone, "remote", "modify", "--local", "storage", "verify", "true", env=server.env())
    proc = dvc(clone, "pull", env=server.env(), check=False)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    # DVC checks what it downloads against dvc.lock, and names what it refused
    assert "ERROR" in proc.stderr and "models/reference.parquet" in proc.stderr, proc.stderr
    # the corrupted file never lands in the workspace
    reference = clone / "models/reference.parquet"
    assert not reference.exists() or reference.read_bytes() != b"corrupted"


def test_wrong_credentials_get_a_clear_error(pushed: Path, server: S3Server) -> None:
    proc = dvc(pushed, "push", env=server.env(secret="not-the-secret"), check=False)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "ERROR" in proc.stderr and "Forbidden" in proc.stderr, proc.stderr


def test_committed_config_names_the_remote_without_credentials() -> None:
    from tests.conftest import ROOT

    text = (ROOT / ".dvc/config").read_text()
    assert "['remote \"storage\"']" in text and "url = s3://" in text
    assert "remote = storage" in text
    for secret in ("access_key_id", "secret_access_key", "session_token", "password"):
        assert secret not in text
