"""Starting `llmkit serve` for the tests of tests/serve (and bench/serve): a server on a free
loopback port, its stderr kept for the failure message, stopped with SIGTERM at the end.

Environment: LLMKIT_BIN (the llmkit binary; default build/llmkit), LLMKIT_MODELS (default
~/.cache/llmkit/models). A script whose prerequisites are missing exits with SKIP (77), which
ctest reports as skipped, after printing why.
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

SKIP = 77
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = os.environ.get("LLMKIT_MODELS", os.path.expanduser("~/.cache/llmkit/models"))
CHAT_MODEL = os.path.join(MODELS, "smollm2-135m-instruct", "SmolLM2-135M-Instruct.Q4_1.gguf")
EMBED_MODEL = os.path.join(MODELS, "all-minilm-l6-v2")


def skip(reason):
    print(f"SKIP: {reason}", flush=True)
    sys.exit(SKIP)


def llmkit_bin():
    path = os.environ.get("LLMKIT_BIN", os.path.join(ROOT, "build", "llmkit"))
    if not os.access(path, os.X_OK):
        skip(f"no llmkit binary at {path} (set LLMKIT_BIN)")
    return path


def need_model(path):
    if not os.path.exists(path):
        skip(f"{path} is missing (scripts/get-models.sh fetches it)")
    return path


class Server:
    """`llmkit serve` with the given extra arguments, on a free port of 127.0.0.1."""

    def __init__(self, *args, model=None, env=None, timeout=120):
        self.log = tempfile.NamedTemporaryFile("w+", prefix="llmkit-serve-", suffix=".log")
        cmd = [llmkit_bin(), "serve", "--model", model or need_model(CHAT_MODEL),
               "--host", "127.0.0.1", "--port", "0", *args]
        e = dict(os.environ)
        e.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        e.update(env or {})
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.log, env=e)
        self.port = None
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llmkit serve exited with {self.proc.returncode}:\n{self.stderr()}")
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", self.stderr())
            if m:
                self.port = int(m.group(1))
                break
            time.sleep(0.05)
        if self.port is None:
            self.stop()
            raise RuntimeError(f"llmkit serve did not start in {timeout} s:\n{self.stderr()}")
        self.url = f"http://127.0.0.1:{self.port}"

    def stderr(self):
        self.log.flush()
        with open(self.log.name, encoding="utf-8", errors="replace") as f:
            return f.read()

    def get_json(self, path, headers=None):
        req = urllib.request.Request(self.url + path, headers=headers or {})
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.load(r)

    def request(self, method, path, body=None, headers=None):
        """(status, headers, body bytes), errors included."""
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        h = {"Content-Type": "application/json"} if data is not None else {}
        h.update(headers or {})
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def metric(self, name, headers=None):
        """The value of one unlabelled sample of /metrics (None when absent)."""
        req = urllib.request.Request(self.url + "/metrics", headers=headers or {})
        with urllib.request.urlopen(req, timeout=60) as r:
            text = r.read().decode()
        m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
        return float(m.group(1)) if m else None

    def stop(self):
        if self.proc.poll() is None:
            t0 = time.time()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            if time.time() - t0 > 1:
                print(f"(llmkit serve took {time.time() - t0:.1f} s to stop)", flush=True)
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class Checks:
    """Named checks that go on after a failure, so one run reports every broken case: check()
    prints "ok NAME" or "FAIL NAME: DETAIL"; section() runs a block and records an exception as a
    failure of that block; done() exits 0 when all passed, 1 otherwise."""

    def __init__(self):
        self.passed = 0
        self.failed = []
        self.t0 = time.time()

    def check(self, name, cond, detail=""):
        if cond:
            self.passed += 1
            print(f"ok   {name}", flush=True)
        else:
            self.failed.append(name)
            print(f"FAIL {name}: {detail}", flush=True)
        return bool(cond)

    def section(self, name, fn, *args):
        print(f"-- {name}", flush=True)
        t0 = time.time()
        try:
            fn(*args)
            print(f"   ({name}: {time.time() - t0:.1f} s)", flush=True)
        except Exception as e:  # a failed request or a malformed reply fails this block only
            import traceback
            traceback.print_exc()
            self.check(f"{name}: ran to the end", False, f"{type(e).__name__}: {e}")

    def done(self):
        secs = time.time() - self.t0
        print(f"{self.passed} passed, {len(self.failed)} failed in {secs:.1f} s", flush=True)
        for name in self.failed:
            print(f"  failed: {name}", flush=True)
        sys.exit(1 if self.failed else 0)
