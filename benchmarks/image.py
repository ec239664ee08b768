"""Benchmark: the serving image (Dockerfile), built and run with podman.

Usage: uv run python benchmarks/image.py [--package models/package] [--starts 5]

Needs podman and the local base (deploy/podman/setup, or `make podman`) and a built package
(`make repro`). Builds the image of a release tarball made from the package, as
`make image` does, then measures, in one run:

- the image's size, uncompressed (target <= 400 MB), and the base's, for scale;
- from `podman run` to the first 200 from /ready, over --starts starts (target < 3 s), against
  the same container running `python3 -c pass` (the container's own start, the bare cost) and
  against building the app in this process on the host (loading and verifying the package);
- scores: 1,000 production records through the container's /predict against `tabml predict`'s
  scores of the same rows, compared as float64 values (target: every one identical).

Prints Markdown tables for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ENV, ROOT

VERSION = "v0.0.0-bench"
IMAGE = "localhost/tabml-bench-model"


def podman_env() -> dict[str, str]:
    out = subprocess.run(
        [str(ROOT / "deploy/podman/setup")], capture_output=True, text=True, check=True
    ).stdout
    exports = out.strip().splitlines()[-1].removeprefix("export ").split()
    return {**ENV, **dict(pair.split("=", 1) for pair in exports), "IMAGE": IMAGE}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serving(env: dict[str, str], image: str) -> Iterator[tuple[int, float]]:
    """The image serving on a free port, read-only with a tmpfs /tmp as deployed: yields the
    port and the seconds from `podman run` to the first 200 from /ready; removed afterwards."""
    import httpx

    port = free_port()
    name = f"tabml-bench-{port}"
    start = time.perf_counter()
    subprocess.run(
        ["podman", "run", "-d", "--name", name, "--read-only", "--tmpfs", "/tmp",
         "-e", "TABML_API_TOKEN=benchmark-token-0123456789",
         "-p", f"127.0.0.1:{port}:8000", image],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    try:
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.perf_counter() - start > 60:
                raise RuntimeError("/ready never answered")
            time.sleep(0.01)
        yield port, time.perf_counter() - start
    finally:
        subprocess.run(["podman", "rm", "-f", "-t", "5", name], env=env, capture_output=True)


def start_to_ready(env: dict[str, str], image: str) -> float:
    with serving(env, image) as (_, seconds):
        return seconds


def bare_start(env: dict[str, str], image: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        ["podman", "run", "--rm", "--read-only", "--network", "none", "--entrypoint",
         "python3", image, "-c", "pass"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    return time.perf_counter() - start


def in_process_load(package: Path) -> float:
    code = (
        "import time; t = time.perf_counter(); "
        "from tabml.service.server import Settings, create_app; "
        f"create_app(Settings(package={str(package)!r}, no_auth=True)); "
        "print(time.perf_counter() - t)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=ENV, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def same_scores(env: dict[str, str], image: str, package: Path) -> tuple[int, int]:
    import httpx
    import pandas as pd

    from tabml.learning import package as pkg
    from tabml.learning.predict import score

    batch = pd.read_parquet(ROOT / "data/raw/production.parquet").iloc[:1000]
    batch = batch.drop(columns=["y_pred_proba", "y_pred"], errors="ignore")
    want = score(pkg.load(package), batch, "batch").set_index("id")["score"]
    body = {"records": json.loads(batch.to_json(orient="records", date_format="iso"))}
    with serving(env, image) as (port, _):
        got = httpx.post(f"http://127.0.0.1:{port}/predict", json=body, timeout=60).json()
    served = pd.DataFrame(got["predictions"]).set_index("id")["score"]
    same = int((served == want.loc[served.index]).sum())
    return same, len(served)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", type=Path, default=ROOT / "models/package")
    parser.add_argument("--starts", type=int, default=5)
    args = parser.parse_args()
    from tabml.governance import release as rel
    from tabml.learning import package as pkg

    env = podman_env()
    stem = f"tabml-model-{VERSION}"
    tarball = ROOT / "dist" / f"{stem}.tar.gz"
    rel.write_tarball(args.package, tarball, stem, 1_700_000_000)
    tarball.with_name(tarball.name + ".sha256").write_text(
        f"{pkg.sha256(tarball)}  {tarball.name}\n"
    )
    began = time.perf_counter()
    built = subprocess.run(
        [str(ROOT / "deploy/podman/build-image"), VERSION],
        env=env, cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout.strip().splitlines()[-1]  # fmt: skip
    build_s = time.perf_counter() - began

    def size(ref: str) -> int:
        out = subprocess.run(
            ["podman", "image", "inspect", ref], env=env, capture_output=True, text=True
        ).stdout
        return int(json.loads(out)[0]["Size"])

    image_mb = size(built) / 1e6
    base_mb = size("localhost/tabml-base:bookworm") / 1e6
    start_to_ready(env, built)  # warm the page cache once
    ready = [start_to_ready(env, built) for _ in range(args.starts)]
    bare = [bare_start(env, built) for _ in range(args.starts)]
    load = [in_process_load(args.package) for _ in range(args.starts)]
    same, total = same_scores(env, built, args.package)
    for path in (tarball, tarball.with_name(tarball.name + ".sha256")):
        path.unlink()
    subprocess.run(["podman", "rmi", "-f", built], env=env, capture_output=True)

    med = statistics.median
    print(f"<!-- benchmarks/image.py, {time.strftime('%Y-%m-%d')}, starts={args.starts} -->")
    print("| image | figure | target |")
    print("|---|---:|---:|")
    print(f"| size, uncompressed | {image_mb:.0f} MB | <= 400 MB |")
    print(f"| of which the base (Debian bookworm, python3) | {base_mb:.0f} MB | - |")
    print(f"| build from a warm cache | {build_s:.1f} s | - |")
    print()
    print(f"| start, median of {args.starts} | seconds | ratio to `python3 -c pass` | target |")
    print("|---|---:|---:|---:|")
    print(f"| `podman run` to the first 200 from /ready | {med(ready):.2f} | "
          f"**{med(ready) / med(bare):.2f}** | < 3 s |")  # fmt: skip
    print(f"| `podman run` of `python3 -c pass` (bare) | {med(bare):.2f} | 1.00 | - |")
    print(f"| the app built on the host, in process (load, verify) | {med(load):.2f} | - | - |")
    print()
    print(f"Scores from the container's /predict identical to `tabml predict`: {same:,} of "
          f"{total:,} (float64 equality).")  # fmt: skip
    print(f"<!-- ready runs: {', '.join(f'{x:.2f}' for x in ready)}; bare runs: "
          f"{', '.join(f'{x:.2f}' for x in bare)} -->")  # fmt: skip
    if os.environ.get("TABML_BENCH_JSON"):
        Path(os.environ["TABML_BENCH_JSON"]).write_text(
            json.dumps({"image_mb": image_mb, "ready": ready, "bare": bare, "load": load})
        )


if __name__ == "__main__":
    main()
