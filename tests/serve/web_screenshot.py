"""Makes docs/serve-chat.png: the chat page in RAG mode (sources under the answer) after one real
exchange, as a small palette PNG. Not a test; run it by hand when the page changes:

    LLMKIT_BIN=build/llmkit python3 tests/serve/web_screenshot.py [OUT.png] [QUESTION]

Needs what test_web.py needs, plus the debian-docs knowledge base and Pillow (for the quantizing).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serve_util  # noqa: E402
import test_web  # noqa: E402
from PIL import Image  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

KB = os.path.expanduser("~/.cache/llmkit/kb/debian-docs")
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(serve_util.ROOT, "docs", "serve-chat.png")
question = sys.argv[2] if len(sys.argv) > 2 else "How do I install a package on Debian?"
if not os.path.isdir(KB):
    serve_util.skip(f"{KB} is missing")
args = ["--db", KB, "--embed-model", serve_util.need_model(serve_util.EMBED_MODEL)]
if os.environ.get("LLMKIT_WEB_ROOT"):
    args += ["--web-root", os.environ["LLMKIT_WEB_ROOT"]]

with serve_util.Server(*args) as server:
    driver = test_web.start_browser(test_web.find_program("chromium"), test_web.find_program("chromedriver"))
    try:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": 1100, "height": 760, "deviceScaleFactor": 1, "mobile": False})
        driver.get(server.url + "/")
        wait = WebDriverWait(driver, 120)
        wait.until(lambda d: "RAG on" in d.find_element(By.ID, "model-info").text)
        driver.execute_script("""document.getElementById('temperature').value = 0.6;
            document.getElementById('temperature').dispatchEvent(new Event('input'));
            document.getElementById('max-tokens').value = 90;
            const prompt = document.getElementById('prompt');
            prompt.value = arguments[0];
            document.getElementById('composer').requestSubmit();
            prompt.blur();""", question)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".message.assistant[data-state]"))
        driver.save_screenshot(out)
    finally:
        driver.quit()

# 1100x760 in at most 64 colours keeps the PNG small and the text crisp.
Image.open(out).convert("RGB").quantize(64, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)
print(f"{out}: {os.path.getsize(out) // 1024} KiB")
