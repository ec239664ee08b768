"""Run a GitHub workflow's steps here, as a runner would: the test harness of test_workflow_runs.

A job's steps run in order in a clone: `run:` steps in bash exactly as GitHub runs them (with
`shell: bash`, from the step, the job's or the workflow's `defaults.run`: `bash --noprofile
--norc -eo pipefail`; with no shell named, `bash -e`, without pipefail), with the workflow's,
the job's and the step's `env`, `${{ }}` expressions substituted from the event, the
repository's variables and secrets, and earlier steps' outputs, and GITHUB_OUTPUT, GITHUB_ENV
and GITHUB_STEP_SUMMARY files. `uses:` steps are stood in
for by what they do to the job (set-up actions do nothing here; the AWS action exports the
test's S3 credentials; the App-token action outputs a token; upload-artifact copies). The
commands that reach GitHub (`cml`, `gh`) are shims on PATH that record their arguments and
answer as the real ones do; `uv run` and `make sync` are shims that use this environment.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import BIN

TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>\d+(?:\.\d+)?)|(?P<op>==|!=|&&|\|\||!|\(|\)|,)"
    r"|(?P<name>[A-Za-z_][\w.\-\[\]']*))"
)

SHIMS = {
    "cml": r"""#!/usr/bin/env bash
# stand-in for CML: records its arguments; `pr create` prints the pull request's URL, and
# records the commit it would make as CML 0.20.6's prCreate makes it (src/cml.js): the branch
# `--branch`, else `<target>-cml-pr-<sha8>` (which, if it exists, returns the old pull request
# and commits nothing), and the message `--message`, else `CML PR for <sha8>`, with
# ` [skip ci]` appended when --skip-ci is given, or no --message and no merge option is;
# `comment update` keeps the Markdown it would post
python3 - "$@" <<'PY'
import json, os, shutil, subprocess, sys
args = sys.argv[1:]
with open(os.environ["HARNESS_LOG"], "a") as fh:
    fh.write(json.dumps({"tool": "cml", "args": args}) + "\n")
out = os.environ["HARNESS_OUT"]

def opt(name):
    found = [args[i + 1] for i, a in enumerate(args[:-1]) if a == name]
    return found[0] if found else None

if args[:2] == ["pr", "create"]:
    sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    short = sha.strip()[:8]
    target = subprocess.run(["git", "branch", "--show-current"], capture_output=True,
                            text=True).stdout.strip()
    branch = opt("--branch") or f"{target}-cml-pr-{short}"
    merge = bool({"--merge", "--auto-merge", "--rebase", "--squash"} & set(args))
    message = opt("--message") or f"CML PR for {short}"
    if "--skip-ci" in args or (opt("--message") is None and not merge):
        message += " [skip ci]"
    existing = set(filter(None, os.environ.get("HARNESS_BRANCHES", "").split(",")))
    record = {"tool": "cml-commit", "args": [branch, message, str(branch in existing)]}
    with open(os.environ["HARNESS_LOG"], "a") as fh:
        fh.write(json.dumps(record) + "\n")
    print("https://github.com/acme/tabml/pull/7")
elif args[:2] == ["comment", "update"]:
    shutil.copyfile(args[-1], os.path.join(out, "comment.md"))
PY
""",
    "gh": r"""#!/usr/bin/env bash
# stand-in for GitHub's CLI: records its arguments and answers from the harness's files
python3 - "$@" <<'PY'
import glob, json, os, shutil, sys
args = sys.argv[1:]
with open(os.environ["HARNESS_LOG"], "a") as fh:
    fh.write(json.dumps({"tool": "gh", "args": args}) + "\n")
out = os.environ["HARNESS_OUT"]

def opt(name):
    return [args[i + 1] for i, a in enumerate(args[:-1]) if a == name]

if args[:2] in (["issue", "create"], ["issue", "comment"]):
    shutil.copyfile(opt("--body-file")[0], os.path.join(out, "issue.md"))
elif args[:2] == ["issue", "list"]:
    print(os.environ.get("HARNESS_OPEN_ISSUE", ""))
elif args[:2] == ["run", "list"]:
    print(os.environ.get("HARNESS_LAST_RUN", ""))
elif args[:2] == ["release", "download"]:
    source = os.path.join(os.environ["HARNESS_RELEASES"], args[2])
    dest = opt("--dir")[0]
    os.makedirs(dest, exist_ok=True)
    for pattern in opt("--pattern"):
        for f in glob.glob(os.path.join(source, pattern)):
            shutil.copy(f, dest)
elif args[:2] == ["run", "download"]:
    name, dest = opt("--name")[0], opt("--dir")[0]
    shutil.copytree(os.path.join(os.environ["HARNESS_ARTIFACTS"], name), dest, dirs_exist_ok=True)
PY
""",
    "uv": """#!/usr/bin/env bash
# `uv run --locked --no-sync CMD`: this environment's CMD (already synced)
if [ "$1" = run ]; then
  shift
  while [ "${1:-}" != "${1#--}" ]; do shift; done
  exec "$@"
fi
exec "$HARNESS_UV" "$@"
""",
    "make": """#!/usr/bin/env bash
# `make sync`: the environment is this one, already synced
if [ "$1" = sync ]; then exit 0; fi
exec /usr/bin/make "$@"
""",
}


class Context:
    """The expression contexts of one job: github, vars, secrets, env, steps."""

    def __init__(self, github: dict[str, Any], vars: dict[str, str], secrets: dict[str, str]):
        self.data: dict[str, Any] = {
            "github": github, "vars": vars, "secrets": secrets, "env": {}, "steps": {},
        }  # fmt: skip
        self.failed = False

    def lookup(self, dotted: str) -> Any:
        node: Any = self.data
        for part in re.split(r"\.|\[|\]", dotted.replace("'", "")):
            if not part:
                continue
            if isinstance(node, dict):
                node = node.get(part, "")
            else:
                return ""
        return node

    def evaluate(self, expr: str) -> Any:
        """A GitHub expression: literals, contexts, == != && || !, and the functions the
        workflows use."""
        out, pos = [], 0
        while pos < len(expr.strip()):
            m = TOKEN.match(expr, pos)
            if not m or m.end() == pos:
                raise ValueError(f"cannot read the expression {expr!r} at {expr[pos:]!r}")
            pos = m.end()
            if m["str"]:
                out.append(repr(m["str"][1:-1].replace("''", "'")))
            elif m["num"]:
                out.append(m["num"])
            elif m["op"]:
                out.append({"&&": " and ", "||": " or ", "!": " not "}.get(m["op"], m["op"]))
            else:
                name = m["name"]
                following = expr[pos:].lstrip()[:1]
                if following == "(":
                    out.append(f"_f_{name}")
                elif name in ("true", "false"):
                    out.append(name.capitalize())
                else:
                    out.append(f"_get({name!r})")
        code = "".join(out)

        def status(ok: bool) -> bool:
            return ok

        names = {
            "_get": self.lookup,
            "_f_contains": lambda a, b: str(b).lower() in str(a).lower(),
            "_f_startsWith": lambda a, b: str(a).lower().startswith(str(b).lower()),
            "_f_endsWith": lambda a, b: str(a).lower().endswith(str(b).lower()),
            "_f_cancelled": lambda: False,
            "_f_always": lambda: True,
            "_f_success": lambda: not self.failed,
            "_f_failure": lambda: self.failed,
        }
        return eval(code, {"__builtins__": {}}, names)

    def substitute(self, text: str) -> str:
        def one(m: re.Match[str]) -> str:
            value = self.evaluate(m.group(1))
            if isinstance(value, bool):
                return "true" if value else "false"
            return "" if value is None else str(value)

        return re.sub(r"\$\{\{\s*(.*?)\s*\}\}", one, text)

    def condition(self, text: str | bool | None) -> bool:
        if text is None:
            return not self.failed
        if isinstance(text, bool):
            return text
        inner = re.fullmatch(r"\s*\$\{\{\s*(.*?)\s*\}\}\s*", text)
        return bool(self.evaluate(inner.group(1) if inner else text))


@dataclass
class Job:
    ran: list[str] = field(default_factory=list)  # the names of the steps that ran
    skipped: list[str] = field(default_factory=list)
    failed: str | None = None
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    summary: str = ""
    log: str = ""


def shell_command(shell: str | None) -> list[str]:
    """How GitHub runs a `run:` step on Linux: `shell: bash` is `bash --noprofile --norc -eo
    pipefail {0}`; no shell at all is `bash -e {0}`, which does not set pipefail."""
    if shell is None:
        return ["bash", "-e"]
    if shell == "bash":
        return ["bash", "--noprofile", "--norc", "-eo", "pipefail"]
    raise AssertionError(f"the harness runs bash steps only, not {shell!r}")


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    if True in data:  # YAML 1.1 reads `on:` as True
        data["on"] = data.pop(True)
    return data


def tag_triggers(workflow: dict[str, Any], tag: str) -> bool:
    """Whether pushing `tag` starts the workflow: GitHub's tag filters, negations last."""
    patterns = workflow["on"].get("push", {}).get("tags", [])
    matched = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        glob = pattern[1:] if negate else pattern
        # GitHub's `*` matches any character but `/`
        if fnmatch.fnmatchcase(tag, glob) and "/" not in tag:
            matched = not negate
    return matched


class Runner:
    def __init__(self, repo: Path, work: Path, env: dict[str, str]) -> None:
        self.repo, self.work = repo, work
        self.shims = work / "shims"
        self.out = work / "out"
        self.artifacts = work / "artifacts"
        for d in (self.shims, self.out, self.artifacts):
            d.mkdir(parents=True, exist_ok=True)
        for name, text in SHIMS.items():
            path = self.shims / name
            path.write_text(textwrap.dedent(text))
            path.chmod(0o755)
        self.log = work / "calls.jsonl"
        self.log.touch()
        self._default_shell: str | None = None
        self._shell = shell_command(None)
        self.base_env = {
            **env,
            "PATH": os.pathsep.join(
                [str(self.shims), str(BIN), env.get("PATH", os.environ["PATH"])]
            ),
            "HARNESS_LOG": str(self.log),
            "HARNESS_OUT": str(self.out),
            "HARNESS_ARTIFACTS": str(self.artifacts),
            "HARNESS_UV": shutil.which("uv", path=str(BIN.parent.parent / ".tools/bin")) or "uv",
        }

    def calls(self, tool: str) -> list[list[str]]:
        lines = self.log.read_text().splitlines()
        return [r["args"] for r in map(json.loads, lines) if r["tool"] == tool]

    def run(
        self,
        workflow_path: Path,
        job_name: str,
        github: dict[str, Any],
        vars: dict[str, str] | None = None,
        secrets: dict[str, str] | None = None,
        aws: dict[str, str] | None = None,
        extra_env: dict[str, str] | None = None,
        start_at: str | None = None,
        given: dict[str, dict[str, str]] | None = None,
    ) -> Job:
        """Run one job. `start_at` skips the steps before the named one, whose outputs (by step
        id) `given` supplies, as if they had run."""
        workflow = load(workflow_path)
        job_def = workflow["jobs"][job_name]
        ctx = Context(github, vars or {}, {"GITHUB_TOKEN": "gh-token", **(secrets or {})})
        for step_id, outputs in (given or {}).items():
            ctx.data["steps"][step_id] = {"outputs": outputs}
        job = Job()
        if not ctx.condition(job_def.get("if", True)):
            job.skipped.append("(job)")
            return job
        env = {**self.base_env, **(extra_env or {})}
        env.update({k: ctx.substitute(str(v)) for k, v in workflow.get("env", {}).items()})
        env.update({k: ctx.substitute(str(v)) for k, v in job_def.get("env", {}).items()})
        env.update({
            "GITHUB_REPOSITORY": github.get("repository", ""),
            "GITHUB_SHA": github.get("sha", ""),
            "GITHUB_REF_NAME": github.get("ref_name", ""),
            "GITHUB_RUN_ID": str(github.get("run_id", "1")),
            "GITHUB_RUN_ATTEMPT": str(github.get("run_attempt", "1")),
            "GITHUB_ACTIONS": "true",
        })  # fmt: skip
        summary = self.work / f"summary-{job_name}.md"
        summary.write_text("")
        self._default_shell = job_def.get("defaults", {}).get("run", {}).get(
            "shell"
        ) or workflow.get("defaults", {}).get("run", {}).get("shell")
        started = start_at is None
        for i, step in enumerate(job_def["steps"]):
            name = step.get("name") or step.get("uses", f"step {i}")
            started = started or name == start_at
            if not started:
                continue
            ctx.data["env"] = env
            if not ctx.condition(step.get("if")):
                job.skipped.append(name)
                continue
            job.ran.append(name)
            outputs: dict[str, str] = {}
            if "uses" in step:
                outputs = self._action(step, ctx, env, aws)
            else:
                ok, outputs, new_env = self._script(step, ctx, env, summary, i)
                env.update(new_env)
                if not ok:
                    job.failed = name
                    ctx.failed = True
            if "id" in step:
                ctx.data["steps"][step["id"]] = {"outputs": outputs}
                job.outputs[step["id"]] = outputs
            if job.failed:
                break
        job.summary = summary.read_text()
        return job

    def _action(
        self, step: dict[str, Any], ctx: Context, env: dict[str, str], aws: dict[str, str] | None
    ) -> dict[str, str]:
        action = step["uses"].split("@")[0]
        with_ = {k: ctx.substitute(str(v)) for k, v in step.get("with", {}).items()}
        if action in (
            "actions/checkout", "actions/setup-python", "astral-sh/setup-uv",
            "iterative/setup-cml",
        ):  # fmt: skip
            return {}
        if action == "aws-actions/configure-aws-credentials":
            assert with_.get("role-to-assume"), "the OIDC role is given"
            env.update(aws or {})
            return {}
        if action == "actions/create-github-app-token":
            assert with_["app-id"] and with_["private-key"]
            return {"token": "app-token"}
        if action == "actions/upload-artifact":
            dest = self.artifacts / with_["name"]
            src = self.repo / with_["path"]
            if src.is_dir():
                shutil.copytree(src, dest, dirs_exist_ok=True)
            return {}
        raise AssertionError(f"the harness has no stand-in for {action}")

    def _script(
        self, step: dict[str, Any], ctx: Context, env: dict[str, str], summary: Path, i: int
    ) -> tuple[bool, dict[str, str], dict[str, str]]:
        self._shell = shell_command(step.get("shell") or self._default_shell)
        step_env = {k: ctx.substitute(str(v)) for k, v in step.get("env", {}).items()}
        output, genv = self.work / f"output-{i}", self.work / f"env-{i}"
        output.write_text("")
        genv.write_text("")
        script = self.work / f"step-{i}.sh"
        script.write_text(ctx.substitute(step["run"]))
        proc = subprocess.run(
            [*self._shell, str(script)],
            cwd=self.repo,
            env={**env, **step_env, "GITHUB_OUTPUT": str(output), "GITHUB_ENV": str(genv),
                 "GITHUB_STEP_SUMMARY": str(summary)},
            capture_output=True, text=True,
        )  # fmt: skip
        self.last = proc
        with (self.work / "steps.log").open("a") as fh:
            fh.write(f"\n=== {step.get('name')} (exit {proc.returncode})\n")
            fh.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        outputs = dict(
            line.split("=", 1) for line in output.read_text().splitlines() if "=" in line
        )
        new_env = dict(line.split("=", 1) for line in genv.read_text().splitlines() if "=" in line)
        return proc.returncode == 0, outputs, new_env

    def steps_log(self) -> str:
        path = self.work / "steps.log"
        return path.read_text() if path.exists() else ""
