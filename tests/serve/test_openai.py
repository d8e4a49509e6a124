"""`llmkit serve` driven by the official openai Python client (docs/serve contract): models,
chat and legacy completions (streamed and not), sampling controls, logprobs, embeddings, the
error classes the client raises, API keys, UTF-8, and with the debian-docs index the RAG sources.

Run: LLMKIT_BIN=build/llmkit python tests/serve/test_openai.py   (exit 0 pass, 77 skip, 1 fail)
"""
import math
import os
import sys
import tempfile
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ for serve_util in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_util import CHAT_MODEL, EMBED_MODEL, Checks, Server, need_model, skip  # noqa: E402

try:
    import openai
except ImportError:
    skip("the openai package is not installed (pip install -r scripts/requirements-serve.txt)")

MODEL_ID = "SmolLM2-135M-Instruct.Q4_1"
EMBED_ID = "all-minilm-l6-v2"
KB = os.environ.get("LLMKIT_KB", os.path.expanduser("~/.cache/llmkit/kb/debian-docs"))
HAVE_EMBED = os.path.isdir(EMBED_MODEL)
STORY = [{"role": "user", "content": "Write a story about a cat."}]
# Generous for a 2-core machine that other tests share; no retries, so an error shows at once.
TIMEOUT = 120

t = Checks()


def client(server, key="unused"):
    return openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0, timeout=TIMEOUT)


def chat(c, **kw):
    kw.setdefault("model", MODEL_ID)
    kw.setdefault("messages", STORY)
    kw.setdefault("max_tokens", 8)
    return c.chat.completions.create(**kw)


def raises(name, exc_class, fn):
    """The exception fn raises, checked to be exc_class (None when it raised none)."""
    try:
        fn()
    except openai.APIError as e:
        t.check(name, isinstance(e, exc_class),
                f"raised {type(e).__name__} (status {getattr(e, 'status_code', '?')}), "
                f"want {exc_class.__name__}: {e}")
        return e
    t.check(name, False, f"no exception, want {exc_class.__name__}")
    return None


def test_models(c):
    ids = [m.id for m in c.models.list().data]
    t.check("models.list names the chat model", MODEL_ID in ids, f"ids {ids}")
    if HAVE_EMBED:
        t.check("models.list names the embedder", EMBED_ID in ids, f"ids {ids}")


def test_chat(c):
    r = chat(c, temperature=0)
    ch = r.choices[0]
    t.check("chat: object chat.completion", r.object == "chat.completion", r.object)
    t.check("chat: model is the served id", r.model == MODEL_ID, r.model)
    t.check("chat: id starts chatcmpl-", r.id.startswith("chatcmpl-"), r.id)
    t.check("chat: role assistant", ch.message.role == "assistant", ch.message.role)
    t.check("chat: content not empty", bool(ch.message.content and ch.message.content.strip()),
            repr(ch.message.content))
    t.check("chat: finish_reason stop or length", ch.finish_reason in ("stop", "length"),
            ch.finish_reason)
    u = r.usage
    t.check("chat: usage total = prompt + completion",
            u.total_tokens == u.prompt_tokens + u.completion_tokens and u.prompt_tokens > 0
            and u.completion_tokens > 0, str(u))
    t.check("chat: completion_tokens <= max_tokens", u.completion_tokens <= 8, str(u))
    t.check("chat: finish length exactly when max_tokens is reached",
            (ch.finish_reason == "length") == (u.completion_tokens == 8),
            f"finish {ch.finish_reason}, {u.completion_tokens} tokens")

    r3 = chat(c, temperature=0, max_tokens=3)
    t.check("max_tokens=3: finish length with 3 tokens",
            r3.choices[0].finish_reason == "length" and r3.usage.completion_tokens == 3,
            f"finish {r3.choices[0].finish_reason}, usage {r3.usage}")
    t.check("max_tokens=3: a prefix of the 8-token reply",
            ch.message.content.startswith(r3.choices[0].message.content),
            f"{r3.choices[0].message.content!r} vs {ch.message.content!r}")
    r3b = chat(c, temperature=0, max_completion_tokens=3)
    t.check("max_completion_tokens=3 is max_tokens's alias",
            r3b.usage.completion_tokens == 3
            and r3b.choices[0].message.content == r3.choices[0].message.content,
            f"usage {r3b.usage}, {r3b.choices[0].message.content!r}")
    return ch.message.content, u


def test_determinism(c, greedy_text):
    again = chat(c, temperature=0).choices[0].message.content
    t.check("temperature 0: the same text twice", again == greedy_text,
            f"{again!r} vs {greedy_text!r}")
    a = chat(c, temperature=0.9, seed=1234).choices[0].message.content
    b = chat(c, temperature=0.9, seed=1234).choices[0].message.content
    t.check("seed 1234, temperature 0.9: the same text twice", a == b, f"{a!r} vs {b!r}")


def test_n(c, greedy_text, greedy_usage):
    r = chat(c, temperature=0.8, seed=7, n=2)
    idx = sorted(ch.index for ch in r.choices)
    t.check("n=2: two choices with index 0 and 1", idx == [0, 1], f"indices {idx}")
    t.check("n=2: both choices have text",
            all(ch.message.content for ch in r.choices), str([ch.message.content for ch in r.choices]))
    g = chat(c, temperature=0, n=2)
    texts = [ch.message.content for ch in sorted(g.choices, key=lambda ch: ch.index)]
    t.check("n=2, temperature 0: both choices are the greedy text",
            texts == [greedy_text, greedy_text], f"{texts} vs {greedy_text!r}")
    t.check("n=2, temperature 0: usage counts both choices' tokens",
            g.usage.completion_tokens == 2 * greedy_usage.completion_tokens
            and g.usage.prompt_tokens == greedy_usage.prompt_tokens,
            f"usage {g.usage}, one choice {greedy_usage}")


def test_stop(c, greedy_text):
    words = greedy_text.split(" ")
    if not t.check("stop: the greedy reply has words to stop at", len(words) >= 4, repr(greedy_text)):
        return
    stop = " " + words[2]
    cut = greedy_text[:greedy_text.index(stop)]
    r = chat(c, temperature=0, stop=[stop, "\n\n\n"])
    ch = r.choices[0]
    t.check(f"stop {stop!r}: not in the text", stop not in ch.message.content,
            repr(ch.message.content))
    t.check(f"stop {stop!r}: the text before it", ch.message.content == cut,
            f"{ch.message.content!r}, want {cut!r} (without stop {greedy_text!r})")
    t.check(f"stop {stop!r}: finish_reason stop", ch.finish_reason == "stop", ch.finish_reason)
    t.check(f"stop {stop!r}: fewer tokens than without it",
            r.usage.completion_tokens < 8, str(r.usage))
    r2 = chat(c, temperature=0, stop=stop)
    t.check("stop as a plain string", r2.choices[0].message.content == cut,
            repr(r2.choices[0].message.content))


def test_logprobs(c, greedy_text):
    r = chat(c, temperature=0, logprobs=True, top_logprobs=3)
    ch = r.choices[0]
    content = ch.logprobs.content if ch.logprobs else None
    if not t.check("logprobs: content present", bool(content), str(ch.logprobs)):
        return
    t.check("logprobs: one entry per completion token", len(content) == r.usage.completion_tokens,
            f"{len(content)} entries, usage {r.usage}")
    bad = []
    for i, tok in enumerate(content):
        tops = tok.top_logprobs
        lps = [x.logprob for x in tops]
        if not tok.logprob <= 0:
            bad.append(f"#{i} {tok.token!r}: logprob {tok.logprob} > 0")
        if len(tops) != 3:
            bad.append(f"#{i}: {len(tops)} top_logprobs")
        if lps != sorted(lps, reverse=True):
            bad.append(f"#{i}: top_logprobs not descending {lps}")
        if not any(x.token == tok.token and math.isclose(x.logprob, tok.logprob, abs_tol=1e-5)
                   for x in tops):
            bad.append(f"#{i}: sampled {tok.token!r} {tok.logprob} not among {[(x.token, x.logprob) for x in tops]}")
        elif tops[0].token != tok.token:
            bad.append(f"#{i}: temperature 0 sampled {tok.token!r}, not the most likely {tops[0].token!r}")
        if bytes(tok.bytes or []) != tok.token.encode():
            bad.append(f"#{i}: bytes {tok.bytes} are not {tok.token!r}")
    t.check("logprobs: each token <= 0, 3 descending alternatives holding the sampled one",
            not bad, "; ".join(bad[:5]))
    joined = b"".join(bytes(x.bytes) for x in content).decode("utf-8", "replace")
    t.check("logprobs: the tokens spell the text", joined == ch.message.content,
            f"{joined!r} vs {ch.message.content!r}")
    t.check("logprobs: the text is the greedy text", ch.message.content == greedy_text,
            f"{ch.message.content!r} vs {greedy_text!r}")
    r0 = chat(c, temperature=0, max_tokens=2)
    t.check("no logprobs asked: logprobs null", r0.choices[0].logprobs is None,
            str(r0.choices[0].logprobs))


def test_stream(c, greedy_text, greedy_usage):
    chunks = list(chat(c, temperature=0, stream=True, stream_options={"include_usage": True}))
    t.check("stream: chunks arrive", len(chunks) >= 3, f"{len(chunks)} chunks")
    if not chunks:
        return
    t.check("stream: object chat.completion.chunk",
            all(k.object == "chat.completion.chunk" for k in chunks),
            str({k.object for k in chunks}))
    t.check("stream: one id throughout", len({k.id for k in chunks}) == 1, str({k.id for k in chunks}))
    first = chunks[0]
    t.check("stream: first delta has role assistant",
            bool(first.choices) and first.choices[0].delta.role == "assistant", str(first))
    text = "".join(ch.delta.content or "" for k in chunks for ch in k.choices)
    t.check("stream: the deltas spell the non-streamed text", text == greedy_text,
            f"{text!r} vs {greedy_text!r}")
    finishes = [ch.finish_reason for k in chunks for ch in k.choices if ch.finish_reason]
    t.check("stream: one finish_reason", finishes in (["stop"], ["length"]), str(finishes))
    last = chunks[-1]
    t.check("stream: the last chunk has usage and no choices",
            last.usage is not None and last.choices == [], str(last))
    if last.usage is not None:
        t.check("stream: usage equals the non-streamed usage",
                (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens)
                == (greedy_usage.prompt_tokens, greedy_usage.completion_tokens,
                    greedy_usage.total_tokens), f"{last.usage} vs {greedy_usage}")
    both = list(chat(c, temperature=0, n=2, stream=True))
    texts, roles = {}, {}
    for k in both:
        for ch in k.choices:
            texts[ch.index] = texts.get(ch.index, "") + (ch.delta.content or "")
            roles.setdefault(ch.index, ch.delta.role)
    t.check("stream n=2: each choice's deltas spell the greedy text",
            texts == {0: greedy_text, 1: greedy_text}, f"{texts} vs {greedy_text!r}")
    t.check("stream n=2: each choice starts with role assistant",
            roles == {0: "assistant", 1: "assistant"}, str(roles))
    plain = list(chat(c, temperature=0, max_tokens=2, stream=True))
    t.check("stream without include_usage: no usage chunk",
            all(k.usage is None for k in plain) and all(k.choices for k in plain),
            str(plain[-1]) if plain else "no chunks")


def test_completions(c):
    kw = dict(model=MODEL_ID, prompt="The capital of France is", max_tokens=8, temperature=0)
    r = c.completions.create(**kw)
    ch = r.choices[0]
    t.check("completions: object text_completion", r.object == "text_completion", r.object)
    t.check("completions: text not empty", bool(ch.text.strip()), repr(ch.text))
    t.check("completions: finish_reason stop or length", ch.finish_reason in ("stop", "length"),
            ch.finish_reason)
    t.check("completions: usage consistent",
            r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
            and 0 < r.usage.completion_tokens <= 8, str(r.usage))
    chunks = list(c.completions.create(**kw, stream=True, stream_options={"include_usage": True}))
    text = "".join(ch.text for k in chunks for ch in k.choices)
    t.check("completions stream: the pieces spell the non-streamed text", text == ch.text,
            f"{text!r} vs {ch.text!r}")
    t.check("completions stream: last chunk has usage",
            bool(chunks) and chunks[-1].usage is not None
            and chunks[-1].usage.completion_tokens == r.usage.completion_tokens,
            str(chunks[-1]) if chunks else "no chunks")
    lp = c.completions.create(**kw, logprobs=2).choices[0]
    ok = (lp.logprobs is not None and "".join(lp.logprobs.tokens) == ch.text
          and len(lp.logprobs.token_logprobs) == len(lp.logprobs.tokens)
          and all(v <= 0 for v in lp.logprobs.token_logprobs)
          and all(1 <= len(d) <= 2 for d in lp.logprobs.top_logprobs))
    t.check("completions logprobs=2: tokens spell the text, 2 alternatives each", ok,
            str(lp.logprobs))


def cosine(a, b):
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def test_embeddings(c):
    if not HAVE_EMBED:
        print(f"SKIP embedding checks: no embedder at {EMBED_MODEL} (scripts/get-models.sh)")
        return
    r = c.embeddings.create(model=EMBED_ID, input="The cat sits on the mat.",
                            encoding_format="float")
    v = r.data[0].embedding
    t.check("embeddings(string): one vector of 384", len(r.data) == 1 and len(v) == 384,
            f"{len(r.data)} vectors of {len(v)}")
    norm = math.sqrt(sum(x * x for x in v))
    t.check("embeddings: unit norm", abs(norm - 1) < 1e-3, f"norm {norm}")
    t.check("embeddings: model id", r.model == EMBED_ID, r.model)
    t.check("embeddings: usage tokens", r.usage.prompt_tokens > 0
            and r.usage.total_tokens == r.usage.prompt_tokens, str(r.usage))
    sents = ["A cat is sleeping on the sofa.", "A kitten naps on the couch.",
             "The stock market fell sharply today."]
    r = c.embeddings.create(model=EMBED_ID, input=sents, encoding_format="float")
    t.check("embeddings(list): three vectors in order",
            [d.index for d in r.data] == [0, 1, 2] and all(len(d.embedding) == 384 for d in r.data),
            str([(d.index, len(d.embedding)) for d in r.data]))
    e = [d.embedding for d in r.data]
    near, far = cosine(e[0], e[1]), cosine(e[0], e[2])
    t.check("embeddings: similar sentences closer than unrelated", near > far + 0.2,
            f"cos(cat, kitten) {near:.3f}, cos(cat, stocks) {far:.3f}")
    # The client's default (no encoding_format) asks for base64 and decodes either answer.
    try:
        d = c.embeddings.create(model=EMBED_ID, input="The cat sits on the mat.").data[0].embedding
        t.check("embeddings with the client's default encoding (base64)",
                len(d) == 384 and cosine(d, v) > 0.9999, f"{len(d)} values")
    except openai.APIError as ex:
        t.check("embeddings with the client's default encoding (base64)", False,
                f"{type(ex).__name__}: {ex}")


def test_errors(c):
    e = raises("unknown model: NotFoundError", openai.NotFoundError,
               lambda: chat(c, model="no-such-model"))
    if e is not None:
        t.check("unknown model: code model_not_found", e.code == "model_not_found", str(e.body))
    e = raises("temperature 'hot': BadRequestError", openai.BadRequestError,
               lambda: chat(c, temperature="hot"))
    if e is not None:
        body = e.body if isinstance(e.body, dict) else {}
        t.check("temperature 'hot': param temperature",
                body.get("param") == "temperature" and e.param == "temperature", str(e.body))
        t.check("temperature 'hot': type invalid_request_error",
                body.get("type") == "invalid_request_error", str(e.body))
    e = raises("temperature 5: BadRequestError", openai.BadRequestError,
               lambda: chat(c, temperature=5))
    if e is not None:
        t.check("temperature 5: param temperature", e.param == "temperature", str(e.body))
    huge = [{"role": "user", "content": "hello there " * 3000}]
    e = raises("prompt over the context: BadRequestError", openai.BadRequestError,
               lambda: chat(c, messages=huge))
    if e is not None:
        t.check("prompt over the context: code context_length_exceeded",
                e.code == "context_length_exceeded", str(e.body))
    raises("empty messages: BadRequestError", openai.BadRequestError,
           lambda: chat(c, messages=[]))
    if HAVE_EMBED:
        raises("embeddings with the chat model's id: NotFoundError", openai.NotFoundError,
               lambda: c.embeddings.create(model=MODEL_ID, input="x", encoding_format="float"))
    # The server still answers after the errors.
    r = chat(c, temperature=0, max_tokens=2)
    t.check("after the errors: a request succeeds", r.usage.completion_tokens >= 1, str(r.usage))


def test_korean(c):
    msgs = [{"role": "system", "content": "한국어로 대답하세요."},
            {"role": "user", "content": "안녕하세요! 오늘 날씨는 어때요?"}]
    raw = c.chat.completions.with_raw_response.create(model=MODEL_ID, messages=msgs,
                                                      max_tokens=8, temperature=0)
    body = raw.http_response.content
    try:
        body.decode("utf-8")
        valid = True
    except UnicodeDecodeError as ex:
        valid = str(ex)
    t.check("Korean prompt: the response body is valid UTF-8", valid is True, str(valid))
    r = raw.parse()
    text = r.choices[0].message.content
    t.check("Korean prompt: an answer without replacement characters",
            bool(text) and "\ufffd" not in text, repr(text))
    t.check("Korean prompt: prompt tokens counted", r.usage.prompt_tokens > 10, str(r.usage))
    pieces = [ch.delta.content or "" for k in c.chat.completions.create(
        model=MODEL_ID, messages=msgs, max_tokens=8, temperature=0, stream=True)
        for ch in k.choices]
    t.check("Korean prompt streamed: no piece splits a character",
            all("\ufffd" not in p for p in pieces), repr(pieces))
    t.check("Korean prompt streamed: the same text", "".join(pieces) == text,
            f"{''.join(pieces)!r} vs {text!r}")


def test_api_key():
    with tempfile.NamedTemporaryFile("w", suffix=".keys") as f:
        f.write("# test keys\n\nsk-llmkit-test-1\n")
        f.flush()
        with Server("--api-key-file", f.name, "--slots", "1", "--context", "256") as s, \
                client(s, "sk-llmkit-test-1") as good, client(s, "sk-wrong") as bad:
            ids = [m.id for m in good.models.list().data]
            t.check("API key: the right key lists the models", MODEL_ID in ids, str(ids))
            r = chat(good, temperature=0, max_tokens=2)
            t.check("API key: the right key chats", r.usage.completion_tokens >= 1, str(r.usage))
            e = raises("API key: a wrong key raises AuthenticationError", openai.AuthenticationError,
                       lambda: bad.models.list())
            if e is not None:
                t.check("API key: code invalid_api_key", e.code == "invalid_api_key", str(e.body))
            raises("API key: a wrong key on chat raises AuthenticationError",
                   openai.AuthenticationError, lambda: chat(bad, max_tokens=2))
            # The server answers the right key after refusing a wrong one on the same connection.
            r = chat(good, temperature=0, max_tokens=2)
            t.check("API key: the right key chats after a refusal", r.usage.completion_tokens >= 1,
                    str(r.usage))


def test_rag():
    if not os.path.isdir(KB):
        print(f"SKIP RAG checks: no knowledge base at {KB} (llmkit index create makes one)")
        return
    # Two sources keep the prompt short (a 2-core machine reads ~1000 tokens in seconds).
    with Server("--db", KB, "--slots", "1", "--rag-k", "2") as s, client(s) as c:
        q = [{"role": "user", "content": "How do I install a package with apt on Debian?"}]
        raw = c.chat.completions.with_raw_response.create(model=MODEL_ID, messages=q, max_tokens=4,
                                                          temperature=0)
        r = raw.parse()
        sources = (r.model_extra or {}).get("sources")
        if sources is None:
            sources = raw.http_response.json().get("sources")
        if not t.check("RAG: the reply has sources", isinstance(sources, list) and sources,
                       str(sources)[:300]):
            return
        t.check("RAG: each source has number, label and url",
                all(isinstance(x.get("number"), int) and x.get("label") and
                    str(x.get("url", "")).startswith("/") for x in sources),
                str([{k: x.get(k) for k in ("number", "label", "url")} for x in sources]))
        t.check("RAG: sources numbered 1..k", [x["number"] for x in sources] ==
                list(range(1, len(sources) + 1)), str([x.get("number") for x in sources]))
        for x in sources[:2]:
            with urllib.request.urlopen(s.url + x["url"], timeout=60) as page:
                html = page.read().decode("utf-8")
                ctype = page.headers.get("Content-Type", "")
            t.check(f"RAG: GET {x['url']} is an HTML page", page.status == 200
                    and ctype.startswith("text/html") and "<html" in html.lower(),
                    f"{page.status} {ctype} {html[:100]!r}")
        chunks = list(c.chat.completions.create(model=MODEL_ID, messages=q, max_tokens=4,
                                                temperature=0, stream=True))
        first = (chunks[0].model_extra or {}).get("sources") if chunks else None
        t.check("RAG stream: the first chunk carries the same sources",
                isinstance(first, list) and [x.get("url") for x in first] ==
                [x["url"] for x in sources], str(first)[:300])
        text = "".join(ch.delta.content or "" for k in chunks for ch in k.choices)
        t.check("RAG stream: the same text as not streamed", text == r.choices[0].message.content,
                f"{text!r} vs {r.choices[0].message.content!r}")
        off = chat(c, messages=q, max_tokens=2, temperature=0, extra_body={"rag": False})
        t.check("RAG off (rag: false): no sources", not (off.model_extra or {}).get("sources"),
                str(off.model_extra))


def main():
    need_model(CHAT_MODEL)
    embed_args = ["--embed-model", EMBED_MODEL] if HAVE_EMBED else []
    with Server(*embed_args, "--slots", "2") as s, client(s) as c:
        t.section("models", test_models, c)
        greedy = [None, None]

        def run_chat():
            greedy[:] = test_chat(c)

        t.section("chat", run_chat)
        if greedy[0] is not None:
            t.section("determinism", test_determinism, c, greedy[0])
            t.section("n", test_n, c, greedy[0], greedy[1])
            t.section("logprobs", test_logprobs, c, greedy[0])
            t.section("stream", test_stream, c, greedy[0], greedy[1])
            t.section("stop", test_stop, c, greedy[0])
        t.section("completions", test_completions, c)
        t.section("embeddings", test_embeddings, c)
        t.section("errors", test_errors, c)
        t.section("korean", test_korean, c)
        t.check("server still running", s.proc.poll() is None, s.stderr()[-2000:])
    t.section("api key", test_api_key)
    t.section("rag", test_rag)
    t.done()


if __name__ == "__main__":
    main()
