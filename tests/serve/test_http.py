"""`llmkit serve` over raw HTTP (http.client and sockets): the error shape and statuses, body and
token limits, API keys, path traversal on the static files, overload, clients that go away
mid-stream or while queued, /metrics, the SSE framing, and concurrent requests that must get
the answers they get alone.

Run: LLMKIT_BIN=build/llmkit python tests/serve/test_http.py   (exit 0 pass, 77 skip, 1 fail)
"""
import http.client
import json
import os
import re
import socket
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ for serve_util in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_util import CHAT_MODEL, Checks, Server, need_model  # noqa: E402

t = Checks()
KEY = "sk-llmkit-http-test"
STORY = [{"role": "user", "content": "Write a long story about a cat who travels the world."}]


# ---- HTTP helpers ----

def call(server, method, path, body=None, headers=None, timeout=60):
    """(status, {lower-case header: value}, body bytes) on a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        h = {"Content-Type": "application/json"} if data is not None else {}
        h.update(headers or {})
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def error_of(body):
    """The "error" object when `body` has OpenAI's error shape exactly, else None."""
    try:
        e = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(e, dict) or set(e) != {"message", "type", "param", "code"}:
        return None
    if not isinstance(e["message"], str) or not e["message"] or not isinstance(e["type"], str):
        return None
    return e


def check_error(name, got, status, param=None, code=None, type_=None):
    """`got` = (status, headers, body): the status and the error shape (and param/code/type)."""
    st, h, body = got
    e = error_of(body)
    ok = st == status and e is not None
    if ok and param is not None:
        ok = e["param"] == param
    if ok and code is not None:
        ok = e["code"] == code
    if ok and type_ is not None:
        ok = e["type"] == type_
    t.check(name, ok, f"status {st}, body {body[:300]!r}")
    return e


def health(server):
    return json.loads(call(server, "GET", "/health")[2])


def wait_idle(server, secs=2.0):
    """/health once no slot is busy and nothing is queued, or the last one after `secs`."""
    deadline = time.time() + secs
    while True:
        h = health(server)
        if (h["slots_busy"] == 0 and h["queue"] == 0) or time.time() > deadline:
            return h
        time.sleep(0.05)


def metrics_text(server, headers=None):
    st, h, body = call(server, "GET", "/metrics", headers=headers)
    return st, h, body.decode("utf-8", "replace")


def metric(text, name, labels=""):
    m = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def chat_body(max_tokens=8, stream=False, messages=STORY, **kw):
    return {"messages": messages, "max_tokens": max_tokens, "temperature": 0, "stream": stream, **kw}


def sse_events(raw):
    """The data payloads of an SSE body, and the lines that are neither data nor comments."""
    datas, bad = [], []
    for line in raw.decode("utf-8").split("\n"):
        if not line or line.startswith(":"):
            continue
        if line.startswith("data: "):
            datas.append(line[6:])
        else:
            bad.append(line)
    return datas, bad


def stream_text(datas):
    text = ""
    for d in datas:
        if d == "[DONE]":
            continue
        for ch in json.loads(d).get("choices", []):
            text += (ch.get("delta") or {}).get("content") or ch.get("text") or ""
    return text


class RawStream:
    """A streaming request on a raw socket, read event by event, closed whenever the test wants
    (a client that goes away)."""

    def __init__(self, server, body, path="/v1/chat/completions", headers=""):
        data = json.dumps(body).encode()
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        self.sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n{headers}\r\n".encode() + data)
        self.buf = b""
        self.status = None

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("the server closed the connection")
        self.buf += chunk

    def read_status(self):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        self.status = int(head.split(b" ", 2)[1])
        self.head = head.decode("latin-1")
        return self.status

    def read_events(self, n):
        """Reads until `n` "data:" lines have arrived (chunk framing left in; only counted)."""
        while self.buf.count(b"data: ") < n:
            self._fill()

    def close(self):
        self.sock.close()


# ---- Checks on the main server ----

def test_errors(s):
    check_error("malformed JSON: 400 with the error shape",
                call(s, "POST", "/v1/chat/completions", b'{"messages": [{"role": "user",'), 400)
    st, h, body = call(s, "POST", "/v1/chat/completions", b'{"messages": [}')
    e = error_of(body)
    t.check("malformed JSON: message starts 'malformed JSON', code and param null",
            e is not None and e["message"].startswith("malformed JSON") and e["code"] is None
            and e["param"] is None and e["type"] == "invalid_request_error", repr(body[:300]))
    t.check("malformed JSON: Content-Type application/json",
            h.get("content-type", "").startswith("application/json"), str(h))
    check_error("body not an object: 400", call(s, "POST", "/v1/chat/completions", b"[1, 2]"), 400)
    check_error("empty body: 400", call(s, "POST", "/v1/chat/completions", b""), 400)
    check_error("messages missing: 400 naming messages",
                call(s, "POST", "/v1/chat/completions", {"max_tokens": 2}), 400, param="messages")
    check_error("unknown route GET /v1/nothing: 404", call(s, "GET", "/v1/nothing"), 404,
                type_="invalid_request_error")
    check_error("unknown route POST /v1/nothing: 404", call(s, "POST", "/v1/nothing", {}), 404)
    check_error("GET /v1/chat/completions: 405", call(s, "GET", "/v1/chat/completions"), 405)
    check_error("GET /v1/completions: 405", call(s, "GET", "/v1/completions"), 405)
    check_error("POST /health: 405", call(s, "POST", "/health", {}), 405)
    check_error("unknown model: 404 model_not_found",
                call(s, "POST", "/v1/chat/completions", chat_body(model="gpt-4")), 404,
                param="model", code="model_not_found")
    check_error("temperature 'hot': 400 naming temperature",
                call(s, "POST", "/v1/chat/completions", chat_body(temperature="hot")), 400,
                param="temperature", type_="invalid_request_error")
    check_error("/v1/embeddings without --embed-model: 400",
                call(s, "POST", "/v1/embeddings", {"input": "hello"}), 400)


def test_limits(s):
    big = chat_body(max_tokens=2, messages=[{"role": "user", "content": "x" * 5000}])
    check_error("body over --max-body 4096: 413", call(s, "POST", "/v1/chat/completions", big), 413)
    # A body declared small but sent chunked and large must be refused too.
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=30)
    try:
        payload = json.dumps(big).encode()
        chunked = b"".join(b"%x\r\n%s\r\n" % (len(payload[i:i + 1000]), payload[i:i + 1000])
                           for i in range(0, len(payload), 1000)) + b"0\r\n\r\n"
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     b"application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked)
        reply = b""
        try:
            while b"\r\n\r\n" not in reply:
                part = sock.recv(4096)
                if not part:
                    break
                reply += part
        except (socket.timeout, ConnectionResetError):
            pass
        first = reply.split(b"\r\n", 1)[0]
        t.check("chunked body over --max-body: 413 (or 400)",
                first.startswith(b"HTTP/1.1 413") or first.startswith(b"HTTP/1.1 400"), repr(first))
    finally:
        sock.close()
    st, _, body = call(s, "GET", "/health")
    t.check("after 413: /health answers", st == 200, f"{st} {body[:200]!r}")
    st, _, body = call(s, "POST", "/v1/chat/completions", chat_body(max_tokens=2))
    t.check("after 413: a chat request succeeds", st == 200, f"{st} {body[:200]!r}")

    check_error("max_tokens 257 over --max-tokens 256: 400 naming max_tokens",
                call(s, "POST", "/v1/chat/completions", chat_body(max_tokens=257)), 400,
                param="max_tokens")
    for n in (0, 5, 1000, -1):
        check_error(f"n={n} (4 slots): 400 naming n",
                    call(s, "POST", "/v1/chat/completions", chat_body(n=n)), 400, param="n")
    check_error("top_logprobs 21: 400",
                call(s, "POST", "/v1/chat/completions",
                     chat_body(logprobs=True, top_logprobs=21)), 400, param="top_logprobs")
    huge = [{"role": "user", "content": "hello " * 600}]  # over --context 512, under 4096 bytes
    check_error("prompt over --context: 400 context_length_exceeded",
                call(s, "POST", "/v1/chat/completions", chat_body(messages=huge)), 400,
                code="context_length_exceeded")

    for name, raw in (("raw byte 0xff", b"\xff\xfe"), ("overlong 0xc0 0xaf", b"\xc0\xaf"),
                      ("truncated 3-byte sequence", b"\xe2\x82"),
                      ("lone surrogate escape", b"\\ud800")):
        body = b'{"max_tokens": 2, "messages": [{"role": "user", "content": "hi ' + raw + b'"}]}'
        check_error(f"invalid UTF-8 in a JSON string ({name}): 400",
                    call(s, "POST", "/v1/chat/completions", body), 400)
        body = b'{"max_tokens": 2, "prompt": "hi ' + raw + b'"}'
        check_error(f"invalid UTF-8 in a completions prompt ({name}): 400",
                    call(s, "POST", "/v1/completions", body), 400)
    st, _, body = call(s, "POST", "/v1/chat/completions", chat_body(max_tokens=2))
    t.check("after the bad requests: a chat request succeeds", st == 200, f"{st} {body[:200]!r}")


def traversal_paths():
    return ["/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/..%2fetc/passwd",
            "/..%2f..%2f..%2f..%2fetc%2fpasswd", "/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
            "/static/../../../../etc/passwd", "/./../etc/passwd", "/..\\..\\etc\\passwd",
            "/%5c..%5c..%5cetc%5cpasswd", "//etc/passwd", "/etc/passwd", "/%00index.html",
            "/index.html%00.js"]


def read_response(sock):
    """(status, body) of one Content-Length response read from `sock` (keep-alive)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        part = sock.recv(65536)
        if not part:
            raise EOFError(f"connection closed after {buf!r}")
        buf += part
    head, body = buf.split(b"\r\n\r\n", 1)
    m = re.search(rb"(?im)^content-length: *(\d+)", head)
    while m and len(body) < int(m.group(1)):
        part = sock.recv(65536)
        if not part:
            break
        body += part
    return int(head.split(b" ", 2)[1]), body


def raw_get(port, path):
    """GET with the path sent byte for byte (no client normalisation)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        out = b""
        while True:
            part = sock.recv(65536)
            if not part:
                break
            out += part
        head, _, body = out.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1]) if head else 0
        return status, head.decode("latin-1"), body
    finally:
        sock.close()


def check_traversal(s, label, secrets):
    for path in traversal_paths():
        st, head, body = raw_get(s.port, path)
        leaked = [x for x in secrets if x in body]
        t.check(f"{label}: GET {path} is 404/400 without the file",
                st in (400, 404) and not leaked, f"status {st}, leaked {leaked}, body {body[:120]!r}")


def test_static_builtin(s):
    st, h, body = call(s, "GET", "/")
    t.check("built-in page: GET / is 200 text/html",
            st == 200 and h.get("content-type", "").startswith("text/html") and b"<" in body,
            f"{st} {h.get('content-type')} {body[:100]!r}")
    check_traversal(s, "built-in page", [b"root:x:0:0", b"root:"])


def test_metrics(s):
    st, h, text = metrics_text(s)
    t.check("/metrics: 200 Prometheus text 0.0.4",
            st == 200 and h.get("content-type", "").startswith("text/plain")
            and "version=0.0.4" in h.get("content-type", ""), f"{st} {h.get('content-type')}")
    sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"]*",?)*\})? '
                        r'[-+]?([0-9.eE+-]+|Inf|NaN)$')
    bad = [ln for ln in text.splitlines()
           if ln and not ln.startswith("# HELP ") and not ln.startswith("# TYPE ")
           and not sample.match(ln)]
    t.check("/metrics: every line a sample, # HELP or # TYPE", not bad, str(bad[:5]))
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    want = {"llmkit_requests_total": "counter", "llmkit_prompt_tokens_total": "counter",
            "llmkit_generated_tokens_total": "counter", "llmkit_request_seconds": "histogram",
            "llmkit_time_to_first_token_seconds": "histogram", "llmkit_queue_depth": "gauge",
            "llmkit_slots_busy": "gauge", "llmkit_slots": "gauge",
            "llmkit_cancelled_total": "counter"}
    wrong = {k: types.get(k) for k, v in want.items() if types.get(k) != v}
    t.check("/metrics: the contract's metrics with their types", not wrong, f"wrong or missing {wrong}")
    t.check("/metrics: llmkit_slots is 4", metric(text, "llmkit_slots") == 4, str(metric(text, "llmkit_slots")))
    for h_ in ("llmkit_request_seconds", "llmkit_time_to_first_token_seconds"):
        buckets = [float(v) for v in re.findall(rf'^{h_}_bucket\{{le="[^"]+"\}} (\S+)$', text, re.M)]
        inf = metric(text, h_ + "_bucket", '{le="+Inf"}')
        t.check(f"/metrics: {h_} buckets cumulative, +Inf = _count",
                buckets and buckets == sorted(buckets) and inf == metric(text, h_ + "_count"),
                f"buckets {buckets}, +Inf {inf}, count {metric(text, h_ + '_count')}")

    statuses = re.findall(r'^llmkit_requests_total\{[^}]*status="([^"]*)"\}', text, re.M)
    t.check("/metrics: requests_total's status labels are HTTP statuses",
            statuses and all(x.isdigit() and 100 <= int(x) <= 599 for x in statuses),
            str(re.findall(r"^llmkit_requests_total.*$", text, re.M)))
    chat_ok = '{endpoint="chat",status="200"}'
    before = text
    st, _, body = call(s, "POST", "/v1/chat/completions", chat_body(max_tokens=4))
    usage = json.loads(body)["usage"] if st == 200 else {}
    st2, _, body2 = call(s, "POST", "/v1/chat/completions", chat_body(temperature="hot"))
    # Refused before any handler runs (the body is over --max-body 4096).
    call(s, "POST", "/v1/chat/completions",
         {"messages": [{"role": "user", "content": "x" * 5000}]})
    call(s, "GET", "/v1/chat/completions")  # the wrong method: 405
    _, _, after = metrics_text(s)

    def delta(name, labels=""):
        return (metric(after, name, labels) or 0) - (metric(before, name, labels) or 0)

    t.check("/metrics: requests_total{chat,200} +1 after a chat", delta("llmkit_requests_total",
            chat_ok) == 1, f"{delta('llmkit_requests_total', chat_ok)}")
    t.check("/metrics: requests_total{chat,400} +1 after a bad request",
            delta("llmkit_requests_total", '{endpoint="chat",status="400"}') == 1,
            str(re.findall(r"^llmkit_requests_total.*$", after, re.M)))
    t.check("/metrics: requests_total{chat,413} +1 after a body over --max-body",
            delta("llmkit_requests_total", '{endpoint="chat",status="413"}') == 1,
            str(re.findall(r"^llmkit_requests_total.*$", after, re.M)))
    t.check("/metrics: requests_total{chat,405} +1 after a GET",
            delta("llmkit_requests_total", '{endpoint="chat",status="405"}') == 1,
            str(re.findall(r"^llmkit_requests_total.*$", after, re.M)))
    t.check("/metrics: generated_tokens_total grows by the completion tokens",
            delta("llmkit_generated_tokens_total") == usage.get("completion_tokens", -1),
            f"delta {delta('llmkit_generated_tokens_total')}, usage {usage}")
    t.check("/metrics: prompt_tokens_total grows by the prompt tokens",
            delta("llmkit_prompt_tokens_total") == usage.get("prompt_tokens", -1),
            f"delta {delta('llmkit_prompt_tokens_total')}, usage {usage}")
    t.check("/metrics: request_seconds_count grows", delta("llmkit_request_seconds_count") >= 2,
            str(delta("llmkit_request_seconds_count")))
    t.check("/metrics: time_to_first_token_seconds_count +1",
            delta("llmkit_time_to_first_token_seconds_count") == 1,
            str(delta("llmkit_time_to_first_token_seconds_count")))


def test_sse(s):
    for path, body in (("/v1/chat/completions", chat_body(max_tokens=6, stream=True,
                                                          stream_options={"include_usage": True})),
                       ("/v1/completions", {"prompt": "Once upon a time", "max_tokens": 6,
                                            "temperature": 0, "stream": True})):
        st, h, raw = call(s, "POST", path, body)
        name = "SSE " + path
        t.check(f"{name}: 200 text/event-stream",
                st == 200 and h.get("content-type", "").startswith("text/event-stream"),
                f"{st} {h.get('content-type')} {raw[:200]!r}")
        datas, bad = sse_events(raw)
        t.check(f"{name}: every line is data:, a comment or blank", not bad, str(bad[:3]))
        t.check(f"{name}: events end with a blank line", raw.endswith(b"\n\n"), repr(raw[-40:]))
        t.check(f"{name}: ends with [DONE], once", datas[-1:] == ["[DONE]"]
                and datas.count("[DONE]") == 1, str(datas[-2:]))
        bad_json = []
        for d in datas[:-1]:
            try:
                json.loads(d)
            except ValueError:
                bad_json.append(d)
        t.check(f"{name}: every other data line is JSON", not bad_json, str(bad_json[:3]))
        want = "chat.completion.chunk" if "chat" in path else "text_completion"
        objs = {json.loads(d).get("object") for d in datas[:-1] if not bad_json}
        t.check(f"{name}: chunks are {want}", objs == {want}, str(objs))
        plain = dict(body, stream=False)
        plain.pop("stream_options", None)
        st2, _, b2 = call(s, "POST", path, plain)
        c = json.loads(b2)["choices"][0]
        text = c["message"]["content"] if "message" in c else c["text"]
        t.check(f"{name}: the pieces spell the non-streamed text", stream_text(datas) == text,
                f"{stream_text(datas)!r} vs {text!r}")


def test_concurrent(s):
    prompts = ["Write a long story about a cat who travels the world.",
               "List three colours.",
               "Explain in detail how a bicycle works, step by step, for a child who has never seen one.",
               "안녕하세요! 자기소개를 해 주세요."]
    results, errors = [None] * 4, []

    def run(i):
        try:
            st, h, raw = call(s, "POST", "/v1/chat/completions",
                              chat_body(max_tokens=8, stream=True,
                                        messages=[{"role": "user", "content": prompts[i]}]))
            results[i] = (st, stream_text(sse_events(raw)[0]) if st == 200 else raw[:200])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"#{i}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    t0 = time.time()
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    t.check("4 concurrent streams: all finish", not any(th.is_alive() for th in threads) and not errors,
            f"errors {errors}")
    t.check("4 concurrent streams: all 200", all(r and r[0] == 200 for r in results), str(results))
    print(f"   (4 concurrent streams in {time.time() - t0:.1f} s)")
    for i, p in enumerate(prompts):
        st, _, body = call(s, "POST", "/v1/chat/completions",
                           chat_body(max_tokens=8, messages=[{"role": "user", "content": p}]))
        alone = json.loads(body)["choices"][0]["message"]["content"] if st == 200 else None
        t.check(f"concurrent #{i}: the same text as alone", results[i] and results[i][1] == alone,
                f"together {results[i] and results[i][1]!r}, alone {alone!r}")


def test_disconnect(s):
    _, _, m0 = metrics_text(s)
    c0 = metric(m0, "llmkit_cancelled_total")
    rs = RawStream(s, chat_body(max_tokens=256, stream=True))
    st = rs.read_status()
    rs.read_events(4)  # the role chunk and three pieces
    busy = health(s)["slots_busy"]
    rs.close()
    t0 = time.time()
    h = wait_idle(s, 2.0)
    took = time.time() - t0
    t.check("disconnect mid-stream: the stream had started", st == 200 and busy == 1,
            f"status {st}, slots_busy {busy}")
    t.check("disconnect mid-stream: slots_busy 0 within 2 s", h["slots_busy"] == 0,
            f"/health {h} after {took:.1f} s")
    _, _, m1 = metrics_text(s)
    c1 = metric(m1, "llmkit_cancelled_total")
    t.check("disconnect mid-stream: llmkit_cancelled_total +1", c1 == (c0 or 0) + 1,
            f"{c0} -> {c1}")
    # A client that closes as soon as [DONE] is in has its whole answer: 200, not 499, and
    # nothing cancelled.
    ok, gone = '{endpoint="chat",status="200"}', '{endpoint="chat",status="499"}'
    rs = RawStream(s, chat_body(max_tokens=4, stream=True))
    rs.read_status()
    while b"data: [DONE]" not in rs.buf:
        rs._fill()
    rs.close()
    deadline = time.time() + 2.0
    while True:
        _, _, m2 = metrics_text(s)
        if (metric(m2, "llmkit_requests_total", ok) or 0) > (metric(m1, "llmkit_requests_total", ok) or 0) \
                or time.time() > deadline:
            break
        time.sleep(0.05)
    t.check("close right after [DONE]: counted 200, not 499, not cancelled",
            (metric(m2, "llmkit_requests_total", ok) or 0) == (metric(m1, "llmkit_requests_total", ok) or 0) + 1
            and metric(m2, "llmkit_requests_total", gone) == metric(m1, "llmkit_requests_total", gone)
            and metric(m2, "llmkit_cancelled_total") == c1,
            str(re.findall(r'^llmkit_(?:requests_total\{endpoint="chat".*|cancelled_total.*)$', m2, re.M)))


# ---- Other servers ----

def test_auth_and_web_root():
    with tempfile.TemporaryDirectory() as tmp:
        keys = os.path.join(tmp, "keys")
        with open(keys, "w") as f:
            f.write(f"# keys\n{KEY}\n")
        root = os.path.join(tmp, "web")
        os.mkdir(root)
        with open(os.path.join(root, "index.html"), "w") as f:
            f.write("<!doctype html><title>test page</title><p>llmkit web root test</p>\n")
        with open(os.path.join(root, "app.js"), "w") as f:
            f.write("console.log('llmkit');\n")
        with open(os.path.join(tmp, "secret.txt"), "w") as f:
            f.write("TOP-SECRET-OUTSIDE-ROOT\n")
        os.symlink(os.path.join(tmp, "secret.txt"), os.path.join(root, "link.txt"))
        os.symlink(tmp, os.path.join(root, "up"))
        with Server("--api-key-file", keys, "--web-root", root, "--slots", "1",
                    "--context", "256") as s:
            good = {"Authorization": f"Bearer {KEY}"}
            body = chat_body(max_tokens=2)
            missing = call(s, "POST", "/v1/chat/completions", body)
            wrong = call(s, "POST", "/v1/chat/completions", body,
                         {"Authorization": "Bearer sk-wrong"})
            e = check_error("API key missing: 401 invalid_api_key", missing, 401,
                            code="invalid_api_key", type_="authentication_error")
            check_error("API key wrong: 401 invalid_api_key", wrong, 401, code="invalid_api_key")
            t.check("API key missing and wrong: the same body", missing[2] == wrong[2],
                    f"{missing[2]!r} vs {wrong[2]!r}")
            for name, h in (("Basic scheme", {"Authorization": f"Basic {KEY}"}),
                            ("key prefix", {"Authorization": f"Bearer {KEY[:-1]}"}),
                            ("key plus a byte", {"Authorization": f"Bearer {KEY}x"}),
                            ("no Bearer", {"Authorization": KEY})):
                got = call(s, "GET", "/v1/models", headers=h)
                t.check(f"API key {name}: 401 with the same body",
                        got[0] == 401 and got[2] == missing[2], f"{got[0]} {got[2][:200]!r}")
            st, _, b = call(s, "POST", "/v1/chat/completions", body, good)
            t.check("API key right: chat 200", st == 200, f"{st} {b[:200]!r}")
            st, _, b = call(s, "GET", "/health")
            t.check("API key: /health needs none", st == 200, f"{st} {b[:200]!r}")
            st, _, b = call(s, "GET", "/metrics")
            t.check("API key: /metrics without the key is 401", st == 401 and e is not None
                    and b == missing[2], f"{st} {b[:200]!r}")
            st, _, b = call(s, "GET", "/metrics", headers=good)
            t.check("API key: /metrics with the key is 200", st == 200 and b"llmkit_" in b, f"{st}")
            st, _, b = call(s, "GET", "/v1/models")
            t.check("API key: /v1/models without the key is 401", st == 401, f"{st}")
            # A refused POST must not leave its body to be read as the next request. The body
            # goes in a second segment, as http.client and httpx send it.
            sock = socket.create_connection(("127.0.0.1", s.port), timeout=30)
            try:
                data = json.dumps(body).encode()
                sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
                             b"application/json\r\nContent-Length: %d\r\n\r\n" % len(data))
                time.sleep(0.05)
                sock.sendall(data)
                r1 = read_response(sock)
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                r2 = read_response(sock)
                t.check("API key: a refused POST, then /health on the same connection",
                        r1[0] == 401 and r2[0] == 200 and b'"status"' in r2[1],
                        f"{r1[0]}, then {r2[0]} {r2[1][:200]!r}")
            except OSError as ex:
                t.check("API key: a refused POST, then /health on the same connection", False,
                        f"{type(ex).__name__}: {ex}")
            finally:
                sock.close()

            st, h, b = call(s, "GET", "/")
            t.check("--web-root: GET / is its index.html, text/html, without a key",
                    st == 200 and h.get("content-type", "").startswith("text/html")
                    and b"llmkit web root test" in b, f"{st} {h.get('content-type')} {b[:100]!r}")
            st, h, b = call(s, "GET", "/app.js")
            t.check("--web-root: /app.js as JavaScript", st == 200 and b"console.log" in b
                    and "javascript" in h.get("content-type", ""), f"{st} {h.get('content-type')}")
            st, _, b = call(s, "GET", "/missing.html")
            t.check("--web-root: a missing file is 404", st == 404, f"{st}")
            secrets = [b"root:x:0:0", b"TOP-SECRET-OUTSIDE-ROOT"]
            check_traversal(s, "--web-root", secrets)
            for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt",
                         "/link.txt", "/up/secret.txt"):
                st, _, b = raw_get(s.port, path)
                t.check(f"--web-root: GET {path} (outside the root) is 404/400",
                        st in (400, 404) and b"TOP-SECRET" not in b, f"{st} {b[:120]!r}")


def test_overload_and_queue():
    with Server("--slots", "1", "--max-queue", "1", "--context", "256") as s:
        n = 5
        results = [None] * n

        def run(i):
            try:
                st, h, raw = call(s, "POST", "/v1/chat/completions",
                                  chat_body(max_tokens=24, stream=True), timeout=60)
                results[i] = (st, raw)
            except Exception as e:  # noqa: BLE001 - reported below
                results[i] = (0, f"{type(e).__name__}: {e}".encode())

        threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(90)
        t.check("overload: no request hangs", not any(th.is_alive() for th in threads),
                f"{sum(th.is_alive() for th in threads)} still running")
        statuses = sorted(r[0] for r in results if r)
        ok = [r for r in results if r and r[0] == 200]
        refused = [r for r in results if r and r[0] in (429, 503)]
        t.check("overload: 1 slot + 1 queued: 1-2 served, the rest 503/429",
                1 <= len(ok) <= 2 and len(ok) + len(refused) == n, f"statuses {statuses}")
        shapes = [error_of(r[1]) for r in refused]
        t.check("overload: refusals have the error shape, code overloaded or rate_limit_exceeded",
                all(e is not None and e["code"] in ("overloaded", "rate_limit_exceeded")
                    for e in shapes), str([r[1][:200] for r in refused]))
        t.check("overload: the served streams end with [DONE]",
                all(sse_events(r[1])[0][-1:] == ["[DONE]"] for r in ok),
                str([r[1][-100:] for r in ok]))
        h = wait_idle(s, 2.0)
        t.check("overload: /health idle afterwards", h["slots_busy"] == 0 and h["queue"] == 0, str(h))

        # A client that leaves while queued: its request leaves the queue and counts as cancelled.
        c0 = s.metric("llmkit_cancelled_total") or 0
        first = RawStream(s, chat_body(max_tokens=200, stream=True))
        first.read_status()
        first.read_events(3)
        queued = RawStream(s, chat_body(max_tokens=200, stream=True))
        st = queued.read_status()
        deadline = time.time() + 5
        while health(s)["queue"] != 1 and time.time() < deadline:
            time.sleep(0.05)
        h1 = health(s)
        t.check("queued: one running, one waiting", st == 200 and h1["slots_busy"] == 1
                and h1["queue"] == 1, f"status {st}, /health {h1}")
        queued.close()
        deadline = time.time() + 2
        while health(s)["queue"] != 0 and time.time() < deadline:
            time.sleep(0.05)
        h2 = health(s)
        t.check("queued client gone: the queue empties within 2 s", h2["queue"] == 0, str(h2))
        t.check("queued client gone: llmkit_cancelled_total +1",
                s.metric("llmkit_cancelled_total") == c0 + 1,
                f"{c0} -> {s.metric('llmkit_cancelled_total')}")
        t.check("queued client gone: the running stream goes on", h2["slots_busy"] == 1, str(h2))
        first.close()
        h3 = wait_idle(s, 2.0)
        t.check("running client gone too: idle within 2 s, cancelled +2",
                h3["slots_busy"] == 0 and h3["queue"] == 0
                and s.metric("llmkit_cancelled_total") == c0 + 2,
                f"{h3}, cancelled {s.metric('llmkit_cancelled_total')}")
        t.check("overload server still running", s.proc.poll() is None, s.stderr()[-1000:])


def main():
    need_model(CHAT_MODEL)
    # --batch-invariant: "concurrent" compares a request run together with others against the same
    # request alone afterwards, when a slot holds its prompt; by default the 73-token Korean
    # prompt is then prefilled in f32 BLAS once and in 8-bit activations the other time.
    with Server("--slots", "4", "--context", "512", "--max-body", "4096",
                "--max-tokens", "256", "--batch-invariant") as s:
        t.section("errors", test_errors, s)
        t.section("limits", test_limits, s)
        t.section("static (built-in)", test_static_builtin, s)
        t.section("metrics", test_metrics, s)
        t.section("sse", test_sse, s)
        t.section("concurrent", test_concurrent, s)
        t.section("disconnect", test_disconnect, s)
        t.check("main server still running", s.proc.poll() is None, s.stderr()[-2000:])
    t.section("api key and web root", test_auth_and_web_root)
    t.section("overload and queue", test_overload_and_queue)
    t.done()


if __name__ == "__main__":
    main()
