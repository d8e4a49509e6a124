"""Load generator for OpenAI-compatible chat servers (llmkit serve, llama_cpp.server).

For each concurrency C, C clients loop for --seconds, each sending streaming chat requests
(a fixed set of varied prompts, temperature 0, a fixed seed, --max-tokens) over raw asyncio
sockets (HTTP/1.1, one connection per request, chunked SSE parsed by hand: no client library,
so the client's own cost stays small on a machine it shares with the server). Measured per C:
- tok/s: content chunks received inside the window, per second (a chunk is one token on both
  servers; with stream_options.include_usage, the usage of completed requests is summed too,
  to check that), over the whole window and over its second half (all C clients start at
  once, so the first half holds a burst of C prefills);
- time to first token (request sent -> first content chunk) p50/p99, over requests whose first
  token came inside the window;
- per-token latency: the gaps between successive content chunks of a request, p50/p99;
- requests completed, errors by HTTP status (anything but 200) and by exception, and the
  requests still open when the window closed (their sockets are closed: a cancellation);
- the server's VmRSS (sampled every 0.5 s: the peak while C ran, and at the end) and VmHWM,
  from /proc/PID/status.
Between points it waits until the server is idle (llmkit: /health slots_busy == 0 and
queue == 0; others: one max_tokens=1 request, which queues behind anything left).
Writes a JSON file (--json) and prints a markdown table.

Usage: load.py --url http://127.0.0.1:PORT --pid PID --label NAME [--conc 1,4,16,64]
               [--seconds 20] [--max-tokens 64] [--json out.json] [--usage]
"""
import argparse
import asyncio
import json
import statistics
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

PROMPTS = [
    "Write a short poem about the sea.",
    "Explain how a CPU cache works, in simple terms.",
    "What are three tips for staying productive when working from home?",
    "Translate 'good morning, how are you?' into French and Spanish.",
    "Give me a recipe for a quick vegetarian pasta.",
    "Summarise the plot of Romeo and Juliet in a few sentences.",
    "Why is the sky blue?",
    "List five prime numbers and explain what makes a number prime.",
    "Write a Python function that reverses a string, and explain it.",
    "What is the difference between a virus and a bacterium?",
    "Describe a sunset over the mountains to someone who has never seen one.",
    "How do I make a good cup of tea?",
    "Tell me a short story about a robot who learns to paint.",
    "What causes the seasons on Earth?",
    "Give me some advice for a job interview tomorrow.",
    "Explain what a hash table is and when to use one.",
]


def pct(xs, p):
    """The p-th percentile (nearest rank) of xs, or None when empty."""
    if not xs:
        return None
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, int(round(p / 100 * len(xs) + 0.5)) - 1))
    return xs[k]


def read_status(pid):
    """VmRSS and VmHWM of pid in MiB, or (None, None)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            d = dict(line.split(":", 1) for line in f if ":" in line)
        return int(d["VmRSS"].split()[0]) / 1024, int(d["VmHWM"].split()[0]) / 1024
    except (OSError, KeyError, ValueError):
        return None, None


class Stats:
    def __init__(self):
        self.tokens_in_window = 0
        self.tokens_2nd_half = 0   # of those, in the window's second half (past a burst's prefill)
        self.usage_tokens = 0      # usage.completion_tokens of completed requests (if sent)
        self.chunk_tokens = 0      # content chunks of those same requests
        self.ttft = []
        self.gaps = []
        self.ok = 0
        self.errors = {}
        self.cancelled = 0
        self.no_first_token = 0    # of those open at the end: still waiting for a first token


async def read_http_head(reader):
    line = await reader.readline()
    if not line:
        raise ConnectionError("connection closed before the status line")
    status = int(line.split()[1])
    headers = {}
    while True:
        h = await reader.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        k, _, v = h.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers


async def body_chunks(reader, headers):
    """Yields the response body's pieces as they arrive (chunked or Content-Length or EOF)."""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                await reader.readline()
                return
            data = await reader.readexactly(size)
            await reader.readexactly(2)
            yield data
    elif "content-length" in headers:
        yield await reader.readexactly(int(headers["content-length"]))
    else:
        while True:
            data = await reader.read(65536)
            if not data:
                return
            yield data


async def one_request(host, port, path, body, stats, t_start, t_end, state):
    """One streaming chat request; returns when it completes or the window closes."""
    payload = json.dumps(body).encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Accept: text/event-stream\r\nContent-Length: {len(payload)}\r\nConnection: close\r\n\r\n")
    reader, writer = await asyncio.open_connection(host, port)
    try:
        t0 = time.perf_counter()
        writer.write(head.encode() + payload)
        await writer.drain()
        status, headers = await read_http_head(reader)
        if status != 200:
            async for _ in body_chunks(reader, headers):
                pass
            if t0 < t_end:
                stats.errors[str(status)] = stats.errors.get(str(status), 0) + 1
            return
        buf = b""
        last = None
        nchunks = 0
        usage = None
        done = False
        async for data in body_chunks(reader, headers):
            now = time.perf_counter()
            buf += data
            while b"\n\n" in buf:
                event, buf = buf.split(b"\n\n", 1)
                for line in event.split(b"\n"):
                    if not line.startswith(b"data:"):
                        continue
                    d = line[5:].strip()
                    if d == b"[DONE]":
                        done = True
                        continue
                    obj = json.loads(d)
                    if obj.get("usage"):
                        usage = obj["usage"]
                    for ch in obj.get("choices", []):
                        piece = ch.get("delta", {}).get("content")
                        if not piece:
                            continue
                        nchunks += 1
                        in_window = t_start <= now < t_end
                        if in_window:
                            stats.tokens_in_window += 1
                            if now >= (t_start + t_end) / 2:
                                stats.tokens_2nd_half += 1
                        if last is None:
                            state["first"] = True
                            if in_window:
                                stats.ttft.append(now - t0)
                        elif in_window:
                            stats.gaps.append(now - last)
                        last = now
        if done:
            stats.ok += 1
            stats.chunk_tokens += nchunks
            if usage:
                stats.usage_tokens += usage.get("completion_tokens", 0)
        else:
            stats.errors["incomplete"] = stats.errors.get("incomplete", 0) + 1
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass


async def client(i, host, port, path, args, stats, t_start, t_end):
    n = i
    while time.perf_counter() < t_end:
        body = {"messages": [{"role": "user", "content": PROMPTS[n % len(PROMPTS)]}],
                "max_tokens": args.max_tokens, "temperature": 0, "seed": 1234, "stream": True}
        if args.usage:
            body["stream_options"] = {"include_usage": True}
        if args.model:
            body["model"] = args.model
        n += 1
        state = {"first": False}
        task = asyncio.ensure_future(one_request(host, port, path, body, stats, t_start, t_end,
                                                 state))
        left = t_end - time.perf_counter()
        done, _ = await asyncio.wait({task}, timeout=max(left, 0))
        if not done:
            task.cancel()   # the window closed: drop the connection (the server sees a disconnect)
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
            stats.cancelled += 1
            stats.no_first_token += not state["first"]
            return
        exc = task.exception()
        if exc is not None:
            k = type(exc).__name__
            stats.errors[k] = stats.errors.get(k, 0) + 1
            await asyncio.sleep(0.05)


async def sample_rss(pid, peak, stop):
    while not stop.is_set():
        rss, _ = read_status(pid)
        if rss is not None:
            peak[0] = max(peak[0], rss)
        try:
            await asyncio.wait_for(stop.wait(), 0.5)
        except asyncio.TimeoutError:
            pass


def wait_idle(url, model, timeout=300):
    """Waits until the server has nothing running or queued."""
    deadline = time.time() + timeout
    try:
        with urllib.request.urlopen(url + "/health", timeout=5) as r:
            h = json.load(r)
        if "slots_busy" in h:
            while time.time() < deadline:
                with urllib.request.urlopen(url + "/health", timeout=5) as r:
                    h = json.load(r)
                if h["slots_busy"] == 0 and h["queue"] == 0:
                    return h
                time.sleep(0.2)
            raise RuntimeError(f"server not idle after {timeout} s: {h}")
    except urllib.error.HTTPError:
        pass
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1, "temperature": 0}
    if model:
        body["model"] = model
    req = urllib.request.Request(url + "/v1/chat/completions", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        r.read()
    return None


async def run_point(host, port, path, args, c):
    stats = Stats()
    t_start = time.perf_counter()
    t_end = t_start + args.seconds
    peak = [0.0]
    stop = asyncio.Event()
    sampler = asyncio.ensure_future(sample_rss(args.pid, peak, stop))
    await asyncio.gather(*(client(i, host, port, path, args, stats, t_start, t_end)
                           for i in range(c)))
    stop.set()
    await sampler
    elapsed = args.seconds
    rss, hwm = read_status(args.pid)
    ms = lambda x: None if x is None else round(x * 1000, 1)
    return {
        "concurrency": c, "seconds": elapsed,
        "tok_s": round(stats.tokens_in_window / elapsed, 1),
        "tokens_in_window": stats.tokens_in_window,
        "tok_s_2nd_half": round(stats.tokens_2nd_half / (elapsed / 2), 1),
        "ttft_p50_ms": ms(pct(stats.ttft, 50)), "ttft_p99_ms": ms(pct(stats.ttft, 99)),
        "tpot_p50_ms": ms(pct(stats.gaps, 50)), "tpot_p99_ms": ms(pct(stats.gaps, 99)),
        "tpot_mean_ms": ms(statistics.fmean(stats.gaps)) if stats.gaps else None,
        "requests_ok": stats.ok, "errors": stats.errors, "open_at_end": stats.cancelled,
        "open_without_first_token": stats.no_first_token,
        "completed_chunk_tokens": stats.chunk_tokens, "completed_usage_tokens": stats.usage_tokens,
        "rss_peak_mib": round(peak[0], 1), "rss_end_mib": rss and round(rss, 1),
        "hwm_mib": hwm and round(hwm, 1),
    }


def table(label, points):
    out = [f"| server | C | tok/s | tok/s 2nd half | TTFT p50 ms | TTFT p99 ms | per-token p50 ms | per-token p99 ms "
           f"| requests ok | errors | open at end (no token yet) | RSS peak MiB | VmHWM MiB |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"]
    for p in points:
        errs = ", ".join(f"{k}: {v}" for k, v in sorted(p["errors"].items())) or "0"
        out.append(f"| {label} | {p['concurrency']} | {p['tok_s']:.1f} | {p['tok_s_2nd_half']:.1f} | {p['ttft_p50_ms']} | "
                   f"{p['ttft_p99_ms']} | {p['tpot_p50_ms']} | {p['tpot_p99_ms']} | "
                   f"{p['requests_ok']} | {errs} | {p['open_at_end']} ({p['open_without_first_token']}) | {p['rss_peak_mib']:.0f} | "
                   f"{p['hwm_mib']:.0f} |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--pid", type=int, required=True, help="the server's process id (for RSS)")
    ap.add_argument("--label", default="server")
    ap.add_argument("--conc", default="1,4,16,64")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--model", default=None, help="model name to send (default: none)")
    ap.add_argument("--usage", action="store_true", help="ask for stream_options.include_usage")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    u = urllib.parse.urlparse(args.url)
    host, port = u.hostname, u.port
    points = []
    wait_idle(args.url, args.model)
    rss0, _ = read_status(args.pid)
    for c in (int(x) for x in args.conc.split(",")):
        p = asyncio.run(run_point(host, port, "/v1/chat/completions", args, c))
        wait_idle(args.url, args.model)
        print(f"{args.label} C={c}: {json.dumps(p)}", file=sys.stderr, flush=True)
        points.append(p)
    res = {"label": args.label, "url": args.url, "max_tokens": args.max_tokens,
           "seconds_per_point": args.seconds, "rss_start_mib": rss0, "points": points}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    print(table(args.label, points))


if __name__ == "__main__":
    main()
