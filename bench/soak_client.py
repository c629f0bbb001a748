#!/usr/bin/env python3
"""Mixed-load client of bench/soak.sh: keep-alive HTTP/1.1 lanes against frugal that
count, per lane, every response whose head arrived, so that the count can be compared
with the ledger's rows after the run. Unlike wrk, it stops by finishing the requests in
flight (a request abandoned at the deadline would have a row but no count).

Lanes (concurrency in brackets, all against /v1/chat/completions):
  plain [4]     non-streamed, temperature 0.7 (not cacheable)
  stream [3]    streamed, 8 chunks
  cache [2]     temperature 0, one of 16 bodies: exact-cache hits after the first
  escalate [2]  a cascade whose first tier's log-probs are bad every other request
  flap [2]      a model served by an upstream that bench/soak.sh restarts periodically
  cancel [1]    a slow stream the client drops after its first bytes

Prints one JSON object: per lane the responses by status, the cancelled streams, the
requests that got no head (connection errors) and the total with a head.
"""
import argparse
import asyncio
import itertools
import json
import time

BASE = {"model": "gpt-4o-mini", "messages": [{"role": "system", "content": "You are terse."},
                                             {"role": "user", "content": "Say hello in five words."}]}


def body(**extra):
    b = dict(BASE)
    b.update(extra)
    return json.dumps(b, separators=(",", ":")).encode()


class Lane:
    def __init__(self, name, concurrency, bodies, headers=(), cancel=False):
        self.name, self.concurrency, self.cancel = name, concurrency, cancel
        self.bodies = itertools.cycle(bodies)
        self.headers = "".join(f"{k}: {v}\r\n" for k, v in headers)
        self.status = {}
        self.cancelled = 0
        self.no_head = 0
        self.broken_body = 0

    def request(self):
        b = next(self.bodies)
        return (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"{self.headers}Content-Length: {len(b)}\r\n\r\n").encode() + b


async def read_body(reader, headers):
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readline()).split(b";")[0].strip(), 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b""):  # trailers
                    pass
                return
            await reader.readexactly(size + 2)
    await reader.readexactly(int(headers.get("content-length", "0")))


async def worker(lane, port, deadline):
    reader = writer = None
    while time.monotonic() < deadline:
        if writer is None:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                lane.no_head += 1
                await asyncio.sleep(0.05)
                continue
        got_head = False
        try:
            writer.write(lane.request())
            status_line = await reader.readline()
            if not status_line:
                raise ConnectionError("closed before the head")
            status = int(status_line.split()[1])
            headers = {}
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                k, _, v = line.decode("latin-1").partition(":")
                headers[k.strip().lower()] = v.strip()
            got_head = True
            lane.status[status] = lane.status.get(status, 0) + 1
            if lane.cancel and status == 200:
                await reader.read(1)  # the first bytes of the stream, then hang up
                lane.cancelled += 1
                writer.close()
                writer = None
                continue
            await read_body(reader, headers)
            if headers.get("connection", "").lower() == "close":
                writer.close()
                writer = None
        except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError, IndexError):
            if got_head:
                lane.broken_body += 1
            else:
                lane.no_head += 1
            if writer is not None:
                writer.close()
            writer = None
    if writer is not None:
        writer.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--duration", type=float, required=True)
    args = ap.parse_args()
    # Per-model mock scripts (bench/mock_upstream): tier-small's log-probs decide the
    # cascade (accepted at -0.1, rejected at -3).
    good = {"mock": {"models": {"tier-small": {"logprobs": [-0.1, -0.2]}}}}
    bad = {"mock": {"models": {"tier-small": {"logprobs": [-3.0, -2.5]}}}}
    lanes = [
        Lane("plain", 4, [body(temperature=0.7)], [("Cache-Control", "no-store")]),
        Lane("stream", 3, [body(stream=True, temperature=0.7, mock={"chunks": 8})], [("Cache-Control", "no-store")]),
        Lane("cache", 2, [body(temperature=0, seed=i) for i in range(16)]),
        Lane("escalate", 2, [body(model="auto", temperature=0.7, **good), body(model="auto", temperature=0.7, **bad)],
             [("x-frugal-request-type", "escalate"), ("Cache-Control", "no-store")]),
        Lane("flap", 2, [body(model="flap-model", temperature=0.7)], [("Cache-Control", "no-store")]),
        Lane("cancel", 1, [body(stream=True, temperature=0.7, mock={"chunks": 20, "chunk_delay_ms": 20})],
             [("Cache-Control", "no-store")], cancel=True),
    ]
    deadline = time.monotonic() + args.duration
    await asyncio.gather(*(worker(l, args.port, deadline) for l in lanes for _ in range(l.concurrency)))
    report = {l.name: {"status": {str(k): v for k, v in sorted(l.status.items())}, "cancelled": l.cancelled,
                       "broken_body": l.broken_body, "no_head": l.no_head} for l in lanes}
    report["responses"] = sum(sum(l.status.values()) for l in lanes)
    report["no_head"] = sum(l.no_head for l in lanes)
    print(json.dumps(report))


asyncio.run(main())
