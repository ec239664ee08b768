"""A light HTTP/1.1 load generator for benchmarks/serve.py, run in its own process.

Usage: python benchmarks/loadgen.py HOST PORT REQUESTS_FILE CLIENTS SECONDS

REQUESTS_FILE is JSON: a list of [path, body] pairs, sent in turn. Each client keeps one
connection alive (TCP_NODELAY, as browsers and HTTP libraries set it) and sends its next request
as soon as the last response is read in full. Raw asyncio sockets, a few tens of microseconds per
request, so that on a 2-core machine the load itself takes little of the CPU the server needs
(an httpx client in threads took about one core of two). Prints JSON: responses, non-200
responses, seconds, and every latency in seconds.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import sys
import time

LENGTH = re.compile(rb"content-length:\s*(\d+)", re.IGNORECASE)


async def client(host: str, port: int, requests: list[bytes], start: int, stop: float,
                 out: dict) -> None:  # fmt: skip
    reader, writer = await asyncio.open_connection(host, port)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    i = start
    while time.perf_counter() < stop:
        began = time.perf_counter()
        writer.write(requests[i % len(requests)])
        head = await reader.readuntil(b"\r\n\r\n")
        match = LENGTH.search(head)
        await reader.readexactly(int(match.group(1)) if match else 0)
        out["latencies"].append(time.perf_counter() - began)
        out["responses"] += 1
        if not head.startswith(b"HTTP/1.1 200"):
            out["errors"] += 1
        i += 1
    writer.close()


async def main() -> None:
    host, port, path, clients, seconds = sys.argv[1:6]
    pairs = json.loads(open(path, encoding="utf-8").read())  # noqa: PTH123, SIM115
    requests = []
    for target, body in pairs:
        data = body.encode()
        requests.append(
            f"POST {target} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(data)}\r\n\r\n".encode()
            + data
        )
    out: dict = {"responses": 0, "errors": 0, "latencies": []}
    began = time.perf_counter()
    stop = began + float(seconds)
    n = int(clients)
    await asyncio.gather(*(client(host, int(port), requests, k * 7, stop, out) for k in range(n)))
    out["seconds"] = time.perf_counter() - began
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())
