"""Soak test of a running `llmkit serve`: several clients send a random mix of requests for
--seconds, then the server's state is checked.

The mix, per request (each client its own seeded random stream; --kinds picks a subset):
  stream    stream chat (include_usage)          30%   must be 200 and end with [DONE]
  chat      non-stream chat                      15%   200
  completions  stream or not                     15%   200
  drop      stream chat dropped after k chunks   15%   the client closes the socket after
                                                       k = 1..6 content chunks: a cancellation
  malformed malformed JSON                        7%   400
  big       body over --max-body                  5%   413
  overflow  prompt over the context               5%   400 (context_length_exceeded)
  get       GET /health, /v1/models, /metrics     8%   200
max_tokens is 4-32 (random); 429 or 503 (queue full) count as clean refusals, anything else
unexpected (a 5xx, a wrong status, a reset connection, a request over --request-timeout) is an
error. The server's VmRSS is sampled every 5 s.

At the end, after a drain of up to --drain seconds, it checks and prints:
  - the server process is alive and /health answers;
  - /health slots_busy == 0 and queue == 0;
  - VmRSS growth over the second half (last sample vs the sample at half time) is under
    --rss-growth-pct percent (default 5) or under --rss-growth-mib (default 4), whichever is larger;
  - the rise of llmkit_cancelled_total is within max(3, 10%) of the streams the clients dropped
    before [DONE];
  - no errors.
Exits 1 if a check fails. Also writes --json.

Usage: soak.py --url http://127.0.0.1:PORT --pid PID [--seconds 600] [--clients 6]
               [--max-body 65536] [--context 2048] [--kinds stream,chat,...] [--json out.json]
"""
import argparse
import asyncio
import json
import os
import random
import re
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from load import PROMPTS, body_chunks, read_http_head, read_status  # noqa: E402


class Tally:
    def __init__(self):
        self.kinds = {}          # kind -> {"sent": n, "ok": n, statuses...}
        self.errors = []         # (kind, what)
        self.dropped = 0         # streams closed by us before [DONE]
        self.dropped_after_done = 0
        self.refused = 0         # 429 / 503
        self.tokens = 0          # completion tokens reported by usage

    def count(self, kind, key):
        d = self.kinds.setdefault(kind, {})
        d[key] = d.get(key, 0) + 1

    def error(self, kind, what):
        self.count(kind, "error")
        if len(self.errors) < 200:
            self.errors.append((kind, what))


async def http(host, port, method, path, body=b"", headers=None, timeout=120):
    """One request on a new connection: returns (status, reader, writer)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    h = {"Host": f"{host}:{port}", "Connection": "close", "Content-Length": str(len(body))}
    if body:
        h["Content-Type"] = "application/json"
    h.update(headers or {})
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
    writer.write(head.encode() + body)
    await writer.drain()
    status, rh = await asyncio.wait_for(read_http_head(reader), timeout)
    return status, rh, reader, writer


async def close(writer):
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass


async def read_all(reader, rh, timeout):
    out = b""
    async def go():
        nonlocal out
        async for d in body_chunks(reader, rh):
            out += d
    await asyncio.wait_for(go(), timeout)
    return out


def events(buf):
    """Splits complete SSE events off buf: (list of data payloads, rest)."""
    out = []
    while b"\n\n" in buf:
        ev, buf = buf.split(b"\n\n", 1)
        for line in ev.split(b"\n"):
            if line.startswith(b"data:"):
                out.append(line[5:].strip())
    return out, buf


async def do_stream(host, port, path, payload, tally, kind, drop_after, timeout):
    """A streaming request; drop_after > 0: close after that many content chunks."""
    status, rh, reader, writer = await http(host, port, "POST", path, json.dumps(payload).encode(),
                                            {"Accept": "text/event-stream"}, timeout)
    try:
        if status in (429, 503):
            tally.refused += 1
            tally.count(kind, str(status))
            await read_all(reader, rh, timeout)
            return
        if status != 200:
            tally.error(kind, f"status {status}: {(await read_all(reader, rh, timeout))[:200]!r}")
            return
        buf, n, done = b"", 0, False
        deadline = time.monotonic() + timeout
        agen = body_chunks(reader, rh).__aiter__()
        while True:
            try:
                data = await asyncio.wait_for(agen.__anext__(), max(0.1, deadline - time.monotonic()))
            except StopAsyncIteration:
                break
            buf += data
            evs, buf = events(buf)
            for d in evs:
                if d == b"[DONE]":
                    done = True
                    continue
                obj = json.loads(d)
                if obj.get("usage"):
                    tally.tokens += obj["usage"].get("completion_tokens", 0)
                for ch in obj.get("choices", []):
                    piece = ch.get("delta", {}).get("content") if "delta" in ch else ch.get("text")
                    if piece:
                        n += 1
            if drop_after and n >= drop_after and not done:
                tally.dropped += 1
                tally.count(kind, "dropped")
                return  # finally closes the socket mid-stream
            if done:
                break
        if drop_after:
            tally.dropped_after_done += 1   # finished before k chunks: not a cancellation
        if done:
            # Read on to the end of the chunked body, as a well-behaved client does.
            async def rest():
                async for _ in agen:
                    pass
            await asyncio.wait_for(rest(), timeout)
            tally.count(kind, "ok")
        else:
            tally.error(kind, "stream ended without [DONE]")
    finally:
        await close(writer)


async def do_plain(host, port, method, path, body, tally, kind, want, timeout):
    status, rh, reader, writer = await http(host, port, method, path, body, None, timeout)
    try:
        data = await read_all(reader, rh, timeout)
        if status in (429, 503) and want == 200:
            tally.refused += 1
            tally.count(kind, str(status))
            return
        if status != want:
            tally.error(kind, f"status {status} (want {want}): {data[:200]!r}")
            return
        if status == 200 and path.startswith("/v1/") and method == "POST":
            tally.tokens += json.loads(data).get("usage", {}).get("completion_tokens", 0)
        tally.count(kind, "ok")
    finally:
        await close(writer)


# The mix: name -> weight (--kinds picks a subset, e.g. to find which kind makes RSS grow).
MIX = {"stream": 30, "chat": 15, "completions": 15, "drop": 15, "malformed": 7, "big": 5,
       "overflow": 5, "get": 8}


async def one(rng, host, port, args, tally):
    names = args.kinds
    pick = rng.choices(names, weights=[MIX[n] for n in names])[0]
    prompt = rng.choice(PROMPTS)
    mt = rng.randint(4, 32)
    chat = {"messages": [{"role": "user", "content": prompt}], "max_tokens": mt,
            "temperature": rng.choice([0, 0.7]), "seed": rng.randint(0, 1 << 30)}
    t = args.request_timeout
    if pick == "stream":
        kind = "stream chat"
        p = dict(chat, stream=True, stream_options={"include_usage": True})
        await do_stream(host, port, "/v1/chat/completions", p, tally, kind, 0, t)
    elif pick == "chat":
        kind = "chat"
        await do_plain(host, port, "POST", "/v1/chat/completions", json.dumps(chat).encode(),
                       tally, kind, 200, t)
    elif pick == "completions":
        kind = "completions"
        p = {"prompt": prompt, "max_tokens": mt, "temperature": 0}
        if rng.random() < 0.5:
            await do_stream(host, port, "/v1/completions", dict(p, stream=True), tally,
                            kind + " stream", 0, t)
        else:
            await do_plain(host, port, "POST", "/v1/completions", json.dumps(p).encode(), tally,
                           kind, 200, t)
    elif pick == "drop":
        kind = "stream chat, dropped"
        p = dict(chat, stream=True, max_tokens=32)
        await do_stream(host, port, "/v1/chat/completions", p, tally, kind, rng.randint(1, 6), t)
    elif pick == "malformed":
        kind = "malformed JSON"
        body = rng.choice([b'{"messages": [', b"not json", b'{"messages": [{"role": "user", '
                           b'"content": "hi"}], "max_tokens": }', b"\xff\xfe{}"])
        await do_plain(host, port, "POST", "/v1/chat/completions", body, tally, kind, 400, t)
    elif pick == "big":
        kind = "body over --max-body"
        body = json.dumps({"messages": [{"role": "user", "content": "x" * (args.max_body + 10)}]})
        await do_plain(host, port, "POST", "/v1/chat/completions", body.encode(), tally, kind, 413, t)
    elif pick == "overflow":
        kind = "prompt over the context"
        # ~1 token per "word ": a few thousand tokens, over the context yet under --max-body.
        words = " ".join(f"w{rng.randint(0, 999)}" for _ in range(args.context + 200))
        body = json.dumps({"messages": [{"role": "user", "content": words}], "max_tokens": 4})
        await do_plain(host, port, "POST", "/v1/chat/completions", body.encode(), tally, kind, 400, t)
    else:
        path = rng.choice(["/health", "/v1/models", "/metrics"])
        kind = "GET " + path
        await do_plain(host, port, "GET", path, b"", tally, kind, 200, t)
    return kind


async def client(i, host, port, args, tally, t_end):
    rng = random.Random(args.seed * 1000 + i)
    while time.monotonic() < t_end:
        kind = "?"
        try:
            kind = await one(rng, host, port, args, tally)
        except (asyncio.TimeoutError, TimeoutError):
            tally.error(kind, "timed out")
        except (ConnectionError, OSError, asyncio.IncompleteReadError, ValueError) as e:
            tally.error(kind, f"{type(e).__name__}: {e}")
        await asyncio.sleep(rng.random() * 0.2)


async def sampler(pid, samples, t0, t_end):
    while time.monotonic() < t_end:
        rss, _ = read_status(pid)
        samples.append((round(time.monotonic() - t0, 1), rss))
        await asyncio.sleep(5)


def get(url, path, timeout=10):
    with urllib.request.urlopen(url + path, timeout=timeout) as r:
        return r.read().decode()


def metric(text, name):
    """Sum of a metric's samples (all label sets) in Prometheus text, or None."""
    vals = [float(m.group(1)) for m in re.finditer(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M)]
    return sum(vals) if vals else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--clients", type=int, default=6)
    ap.add_argument("--max-body", type=int, default=65536, help="the server's --max-body")
    ap.add_argument("--context", type=int, default=2048, help="the server's --context")
    ap.add_argument("--request-timeout", type=float, default=180)
    ap.add_argument("--drain", type=float, default=60)
    ap.add_argument("--rss-growth-pct", type=float, default=5)
    ap.add_argument("--rss-growth-mib", type=float, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--kinds", default=",".join(MIX),
                    help="the request kinds to send, of " + ",".join(MIX) + " (default: all)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    args.kinds = args.kinds.split(",")
    for k in args.kinds:
        if k not in MIX:
            ap.error(f"unknown kind {k!r}")
    host, port = re.match(r"http://([^:/]+):(\d+)", args.url).groups()
    port = int(port)

    m0 = get(args.url, "/metrics")
    cancelled0 = metric(m0, "llmkit_cancelled_total") or 0
    tally = Tally()
    samples = []
    t0 = time.monotonic()
    t_end = t0 + args.seconds

    async def run():
        await asyncio.gather(sampler(args.pid, samples, t0, t_end),
                             *(client(i, host, port, args, tally, t_end)
                               for i in range(args.clients)))
    asyncio.run(run())
    ran = time.monotonic() - t0

    checks = []
    alive = os.path.exists(f"/proc/{args.pid}")
    health = None
    drain_s = None
    try:
        t = time.monotonic()
        while True:
            health = json.loads(get(args.url, "/health"))
            if health["slots_busy"] == 0 and health["queue"] == 0:
                drain_s = round(time.monotonic() - t, 1)
                break
            if time.monotonic() - t > args.drain:
                break
            time.sleep(0.5)
    except (OSError, ValueError) as e:
        health = {"error": str(e)}
    checks.append(("server alive and /health answers", alive and "status" in (health or {}),
                   f"pid {args.pid} {'alive' if alive else 'gone'}, /health {health}"))
    idle = bool(health) and health.get("slots_busy") == 0 and health.get("queue") == 0
    checks.append(("slots_busy == 0 and queue == 0 after the drain", idle,
                   f"after {drain_s if drain_s is not None else args.drain} s: {health}"))

    rss = [s for s in samples if s[1] is not None]
    rss_end_now, hwm = read_status(args.pid)
    if rss:
        mid = min(rss, key=lambda s: abs(s[0] - args.seconds / 2))
        last = rss[-1]
        growth = last[1] - mid[1]
        limit = max(mid[1] * args.rss_growth_pct / 100, args.rss_growth_mib)
        checks.append(("RSS growth over the second half", growth <= limit,
                       f"{mid[1]:.1f} MiB at {mid[0]:.0f} s -> {last[1]:.1f} MiB at {last[0]:.0f} s "
                       f"({growth:+.1f} MiB, limit {limit:.1f}); first sample {rss[0][1]:.1f} MiB, "
                       f"max {max(s[1] for s in rss):.1f}, VmHWM {hwm}"))
    else:
        checks.append(("RSS sampled", False, "no /proc samples"))

    m1 = ""
    try:
        m1 = get(args.url, "/metrics")
    except OSError as e:
        checks.append(("/metrics answers", False, str(e)))
    cancelled = (metric(m1, "llmkit_cancelled_total") or 0) - cancelled0
    tol = max(3, 0.1 * tally.dropped)
    checks.append(("llmkit_cancelled_total rise ~ streams dropped", abs(cancelled - tally.dropped) <= tol,
                   f"server {cancelled:.0f}, client dropped {tally.dropped} mid-stream "
                   f"(+{tally.dropped_after_done} that ended before the drop point), tolerance {tol:.0f}"))
    checks.append(("no errors", not tally.errors,
                   f"{len(tally.errors)} errors" + (": " + "; ".join(f"{k}: {w}" for k, w in
                                                                   tally.errors[:8]) if tally.errors else "")))

    requests = sum(sum(v for k, v in d.items()) for d in tally.kinds.values())
    by_status = {}
    for line in m1.splitlines():
        mm = re.match(r'llmkit_requests_total\{endpoint="([^"]+)",status="([^"]+)"\} (\S+)', line)
        if mm:
            by_status[f"{mm.group(1)} {mm.group(2)}"] = int(float(mm.group(3)))
    print(f"soak: {ran:.0f} s, {args.clients} clients, {requests} requests, "
          f"{tally.tokens} completion tokens reported by usage, {tally.refused} refused (429/503)")
    for kind in sorted(tally.kinds):
        print(f"  {kind}: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.kinds[kind].items())))
    print("  server's llmkit_requests_total: " + ", ".join(f"{k}: {v}" for k, v in sorted(by_status.items())))
    print(f"  server's llmkit_generated_tokens_total: {metric(m1, 'llmkit_generated_tokens_total')}")
    print("  RSS samples (s, MiB): " + " ".join(f"{t:.0f}:{r:.1f}" for t, r in rss[:: max(1, len(rss) // 24)]))
    ok = True
    for name, passed, detail in checks:
        ok &= bool(passed)
        print(f"{'PASS' if passed else 'FAIL'}: {name}: {detail}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"seconds": ran, "clients": args.clients, "kinds": tally.kinds,
                       "errors": tally.errors, "dropped": tally.dropped,
                       "dropped_after_done": tally.dropped_after_done, "refused": tally.refused,
                       "tokens": tally.tokens, "cancelled_metric": cancelled, "rss": rss,
                       "hwm_mib": hwm, "requests_total": by_status, "drain_s": drain_s,
                       "checks": [{"name": n, "pass": bool(p), "detail": d} for n, p, d in checks]},
                      f, indent=1)
    print("soak: " + ("PASS" if ok else "FAIL"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
