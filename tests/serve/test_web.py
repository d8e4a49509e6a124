"""The web chat page of `llmkit serve` (llmkit/serve/web/) in a real headless Chromium, via Selenium.

It loads /, waits for the model info, sends a question with Enter and watches the answer stream in,
stops a long answer with the Stop button (and checks that the server freed the slot), checks that
Enter during an IME composition does not send and that Korean text goes through intact, checks that
the Markdown renderer escapes HTML, and saves a screenshot (serve-chat.png in $LLMKIT_SCREENSHOT_DIR,
default the current directory). A second server with --api-key-file checks the API key field. Any SEVERE browser console message from the page fails the test.

Environment: LLMKIT_BIN, LLMKIT_MODELS (see serve_util.py); LLMKIT_WEB_ROOT=DIR serves the page from
DIR (--web-root) instead of the copy embedded in the binary. Skips (77) without Chromium, chromedriver,
Selenium or the model.
"""
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serve_util  # noqa: E402

try:
    from selenium import webdriver
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError as e:
    serve_util.skip(f"selenium is not installed ({e})")

KOREAN = "안녕하세요! 한국어로 자기소개를 해 주세요."


def find_program(*names):
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None


def check(condition, what):
    if not condition:
        raise AssertionError(what)
    print(f"ok: {what}", flush=True)


def start_browser(chromium, chromedriver):
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1200,900", "--lang=en-US", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    # --window-size counts the (invisible) window frame; make the page itself 1200x900.
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": 1200, "height": 900, "deviceScaleFactor": 1, "mobile": False})
    return driver


def main():
    chromium = find_program("chromium", "chromium-browser", "google-chrome")
    chromedriver = find_program("chromedriver")
    if not chromium or not chromedriver:
        serve_util.skip("chromium or chromedriver is not installed")
    serve_util.llmkit_bin()
    serve_util.need_model(serve_util.CHAT_MODEL)

    web_root = os.environ.get("LLMKIT_WEB_ROOT")
    args = ["--web-root", web_root] if web_root else []
    print(f"page from {'--web-root ' + web_root if web_root else 'the binary (embedded copy)'}", flush=True)

    t0 = time.time()
    with serve_util.Server(*args) as server:
        driver = start_browser(chromium, chromedriver)
        try:
            run(driver, server)
            check_console(driver, server.url)
            run_api_key(driver, args)
        finally:
            driver.quit()
    print(f"PASS in {time.time() - t0:.1f} s", flush=True)


def check_console(driver, url, expected=None):
    """No SEVERE browser console message from the page at url (a JS error, a failed load), but
    those containing `expected`."""
    errors = [e["message"] for e in driver.get_log("browser")
              if e["level"] == "SEVERE" and url in e["message"] and not (expected and expected in e["message"])]
    check(not errors, f"no SEVERE console messages from the page {errors if errors else ''}")


def run(driver, server):
    wait = WebDriverWait(driver, 60, poll_frequency=0.05)
    el = lambda css: driver.find_element(By.CSS_SELECTOR, css)  # noqa: E731
    js = driver.execute_script

    status, _, page = server.request("GET", "/")
    check(status == 200 and b'src="app.js"' in page,
          f"GET / serves the chat page (status {status}; if not, rebuild or set LLMKIT_WEB_ROOT)")
    driver.get(server.url + "/")
    model_id = server.get_json("/health")["model"]
    wait.until(lambda d: model_id in el("#model-info").text)
    check(True, f"model info shows {el('#model-info').text!r}")
    check(driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en", "html lang=en")
    check(el("#conversation").get_attribute("aria-live") == "polite", "the conversation is aria-live=polite")
    for control in driver.find_elements(By.CSS_SELECTOR, "textarea, input"):
        cid = control.get_attribute("id")
        check(driver.find_elements(By.CSS_SELECTOR, f'label[for="{cid}"]'), f"#{cid} has a <label>")

    def set_max_tokens(n):
        box = el("#max-tokens")
        box.clear()
        box.send_keys(str(n))

    def answers():
        return driver.find_elements(By.CSS_SELECTOR, ".message.assistant")

    def wait_answer_state(index, states=("done",)):
        wait.until(lambda d: answers()[index].get_attribute("data-state") in states)
        return answers()[index]

    # 1. A question sent with Enter; a MutationObserver in the page records the answer's length
    #    at every change, so the test sees the streaming however fast or slow the machine is.
    set_max_tokens(64)
    js("""window.lengths = [];
          new MutationObserver(() => {
            const a = [...document.querySelectorAll('.message.assistant')].pop();
            if (a && !a.dataset.state) window.lengths.push(a.querySelector('.body').textContent.length);
          }).observe(document.getElementById('conversation'), {subtree: true, childList: true, characterData: true});""")
    prompt = el("#prompt")
    prompt.send_keys("What are the three primary colors? Explain briefly.", Keys.ENTER)
    wait.until(lambda d: answers())
    check(el("#stop").is_enabled() and not el("#send").is_enabled(), "while streaming Stop is enabled, Send is not")
    first = wait_answer_state(0)
    lengths = [n for n in js("return window.lengths") if n > 0]
    partial = sorted(set(lengths))
    pieces = int(first.get_attribute("data-pieces") or 0)
    text = first.find_element(By.CSS_SELECTOR, ".body").text
    check(len(partial) >= 2 and pieces >= 3,
          f"the answer streamed: {pieces} pieces, {len(partial)} distinct partial lengths {partial[:6]}...")
    check(text.strip() != "", f"answer: {text[:80]!r}...")
    meta = first.find_element(By.CSS_SELECTOR, ".meta").text
    check("completion tokens" in meta and "tokens/s" in meta, f"usage shown: {meta!r}")
    check(el("#send").is_enabled() and not el("#stop").is_enabled(), "after the answer Send is enabled, Stop is not")

    # 2. A long answer, stopped with the keyboard on the Stop button.
    set_max_tokens(1500)
    prompt.send_keys("Write a very long story about a dragon who learns to bake bread.", Keys.ENTER)
    wait.until(lambda d: len(answers()) == 2 and int(answers()[1].get_attribute("data-pieces") or 0) >= 5)
    el("#stop").send_keys(Keys.ENTER)
    story = wait_answer_state(1, ("stopped",))
    check(el("#send").is_enabled() and not el("#stop").is_enabled(), "Stop: Send is enabled again, Stop disabled")
    length = len(story.find_element(By.CSS_SELECTOR, ".body").text)
    check(length > 0, f"the partial answer is kept ({length} characters)")
    deadline = time.time() + 5
    while server.get_json("/health")["slots_busy"] != 0 and time.time() < deadline:
        time.sleep(0.05)
    check(server.get_json("/health")["slots_busy"] == 0, "/health: slots_busy is back to 0")
    time.sleep(0.5)  # give a still-running stream a chance to show itself
    check(len(story.find_element(By.CSS_SELECTOR, ".body").text) == length, "the stopped answer no longer grows")
    check("stopped" in story.find_element(By.CSS_SELECTOR, ".meta").text, "the answer is marked stopped")

    # 3. Korean: Enter during an IME composition must not send; a plain Enter then does.
    set_max_tokens(48)
    users_before = len(driver.find_elements(By.CSS_SELECTOR, ".message.user"))
    prompt.send_keys(KOREAN)
    js("""arguments[0].dispatchEvent(new KeyboardEvent('keydown',
            {key: 'Enter', code: 'Enter', isComposing: true, bubbles: true, cancelable: true}));""", prompt)
    time.sleep(0.3)  # nothing should happen; give a wrong send the time to show
    check(len(driver.find_elements(By.CSS_SELECTOR, ".message.user")) == users_before
          and prompt.get_attribute("value") == KOREAN, "Enter with isComposing=true does not send")
    prompt.send_keys(Keys.ENTER)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".message.user")) == users_before + 1)
    user_text = driver.find_elements(By.CSS_SELECTOR, ".message.user .body")[-1].text
    check(user_text == KOREAN, f"the user bubble shows the Korean text exactly: {user_text!r}")
    answer = wait_answer_state(2)
    check(answer.find_element(By.CSS_SELECTOR, ".body").text.strip() != "",
          f"an answer arrived: {answer.find_element(By.CSS_SELECTOR, '.body').text[:60]!r}...")

    # 4. The Markdown renderer escapes HTML and only links http(s) URLs and known citations.
    result = js("""const box = document.createElement('div');
        box.innerHTML = llmkit.renderMarkdown(arguments[0]);
        const cite = document.createElement('div');
        cite.innerHTML = llmkit.renderMarkdown('see [1] and [2]', new Map([[1, '/chunks/7']]));
        return {img: box.querySelectorAll('img').length, script: box.querySelectorAll('script').length,
                strong: box.querySelectorAll('strong').length, em: box.querySelectorAll('em').length,
                code: box.querySelectorAll('pre code, code').length,
                links: [...box.querySelectorAll('a')].map(a => a.getAttribute('href')),
                text: box.textContent,
                cites: [...cite.querySelectorAll('a.cite')].map(a => a.getAttribute('href'))};""",
                "<img src=x onerror=alert(1)> **b** *i* `x<y`\n\n```\n<script>alert(2)</script>\n```\n\n"
                "[bad](javascript:alert(3)) [good](https://example.org/?a=1&b=2)")
    check(result["img"] == 0 and result["script"] == 0, "no <img> or <script> from model text")
    check("<img src=x onerror=alert(1)>" in result["text"], "the HTML shows as text")
    check(result["strong"] == 1 and result["em"] == 1 and result["code"] >= 2, "**bold**, *italic*, code rendered")
    check(result["links"] == ["https://example.org/?a=1&b=2"], f"only the https link is a link: {result['links']}")
    check(result["cites"] == ["/chunks/7"], "[1] links to source 1, [2] (no such source) stays text")
    try:
        driver.switch_to.alert
        raise AssertionError("an alert() ran")
    except NoAlertPresentException:
        check(True, "no alert() ran")

    # 5. A screenshot of the conversation.
    out = os.environ.get("LLMKIT_SCREENSHOT_DIR", ".")
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "serve-chat.png")
    driver.save_screenshot(path)
    check(os.path.getsize(path) > 0, f"screenshot saved to {path}")


def run_api_key(driver, args):
    """6. A server with --api-key-file: the JSON error shows in the page until the key is typed in;
    the key is then sent as a Bearer token and remembered in localStorage."""
    wait = WebDriverWait(driver, 60, poll_frequency=0.05)
    el = lambda css: driver.find_element(By.CSS_SELECTOR, css)  # noqa: E731
    with tempfile.NamedTemporaryFile("w", suffix=".key") as key_file:
        key_file.write("sesame-123\n")
        key_file.flush()
        with serve_util.Server(*args, "--api-key-file", key_file.name) as server:
            driver.get(server.url + "/")
            driver.execute_script("localStorage.clear()")
            driver.refresh()
            wait.until(lambda d: el("#error").is_displayed())
            check("401" in el("#error").text, f"without the key the error shows: {el('#error').text!r}")
            el("#api-key").send_keys("sesame-123", Keys.TAB)   # change event: reload the model info
            wait.until(lambda d: "RAG" in el("#model-info").text and not el("#error").is_displayed())
            check(driver.execute_script("return localStorage.getItem('llmkit.apiKey')") == "sesame-123",
                  "with the key the model info loads; the key is in localStorage")
            driver.refresh()
            check(el("#api-key").get_attribute("value") == "sesame-123", "the key is filled in after a reload")
            el("#max-tokens").clear()
            el("#max-tokens").send_keys("8")
            el("#prompt").send_keys("Hi!", Keys.ENTER)
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".message.assistant[data-state]"))
            check(el(".message.assistant").get_attribute("data-state") == "done", "a chat request with the key works")
            driver.execute_script("localStorage.clear()")
            check_console(driver, server.url, expected="401 (Unauthorized)")


if __name__ == "__main__":
    main()
