#!/usr/bin/env python3
"""The studio in a real browser: headless Chromium through WebDriver (Debian's chromium and
chromium-driver, Python's selenium). Run by crates/genlab-cli/tests/browser.rs against a
running `genlab serve`; also makes README's screenshots (bench/studio.sh).

Every view is driven as a person would: a slider moved (the decoded image must change), the
map hovered and clicked, an interpolation and a sample grid drawn, a digit drawn on the canvas
and a file uploaded (their reconstruction must appear), the memorisation check, the training
curves and epoch images, and a photo upscaled. Prints one JSON line of timings: page ready,
and slider-to-image latency (p50, p99) measured in the page from the slider's input event to
the decoded image's load.

usage: studio.py URL --upload PNG --photo PNG [--out DIR] [--moves N] [--invert-run ID]
                [--browser chromium|firefox]
"""
import argparse
import json
import os
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--upload", required=True)
    ap.add_argument("--photo", required=True)
    ap.add_argument("--out", default=None)
    ap.add_argument("--moves", type=int, default=60)
    ap.add_argument("--class-run", type=int, default=None,
                    help="a conditional run: pick another class, the decoded image must change")
    ap.add_argument("--browser", choices=["chromium", "firefox"], default="chromium",
                    help="firefox needs geckodriver on PATH (or GECKODRIVER)")
    ap.add_argument("--run", type=int, default=None, help="run id to explore (default: the first)")
    ap.add_argument("--invert-run", type=int, default=None,
                    help="a GAN run: upload the image to it too (inversion)")
    a = ap.parse_args()

    if a.browser == "firefox":
        fopts = webdriver.FirefoxOptions()
        fopts.add_argument("--headless")
        fopts.add_argument("--width=1400")
        fopts.add_argument("--height=1100")
        driver = webdriver.Firefox(
            service=webdriver.FirefoxService(os.environ.get("GECKODRIVER", "geckodriver")), options=fopts)
    else:
        opts = webdriver.ChromeOptions()
        opts.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
        for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1100", "--no-proxy-server"]:
            opts.add_argument(flag)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")),
                                  options=opts)
    wait = WebDriverWait(driver, 60)
    js = driver.execute_script
    out = {}

    def shot(name):
        if a.out:
            driver.save_screenshot(os.path.join(a.out, name))

    def tab(view):
        driver.find_element(By.CSS_SELECTOR, f'#tabs button[data-view="{view}"]').click()

    def attr(id_, name):
        return js(f"return document.getElementById('{id_}').dataset['{name}'] || ''")

    def check_error():
        err = driver.find_element(By.ID, "error")
        assert not err.is_displayed(), "the page shows an error: " + err.text

    try:
        t0 = time.time()
        driver.get(a.url)
        wait.until(lambda d: js("return document.body.dataset.ready"))
        out["page_ready_ms"] = float(js("return document.body.dataset.ready"))
        out["load_event_ms"] = js("const n = performance.getEntriesByType('navigation')[0];"
                                  "return n.loadEventEnd - n.startTime;")
        out["wall_ready_s"] = round(time.time() - t0, 3)
        rows = driver.find_elements(By.CSS_SELECTOR, "#run-table tbody tr")
        assert rows, "no runs listed"
        if a.run is not None:
            driver.find_element(By.CSS_SELECTOR, f'input[name=run][value="{a.run}"]').click()
        shot("studio-runs.png")

        # Latent explorer: the first decode, then a slider moved.
        tab("explorer")
        wait.until(lambda d: attr("decoded", "hash"))
        check_error()
        sliders = driver.find_elements(By.CSS_SELECTOR, "input.slider")
        assert sliders, "no sliders"
        before = attr("decoded", "hash")
        ActionChains(driver).click_and_hold(sliders[0]).move_by_offset(60, 0).release().perform()
        wait.until(lambda d: attr("decoded", "hash") != before)
        # Latency: many single moves, each waited for, timed by the page.
        js("window.studio.timings = []")
        for i in range(a.moves):
            s = sliders[i % len(sliders)]
            value = -2.5 + 5.0 * ((i * 7) % 11) / 10.0
            js("arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('input'));", s, value)
            wait.until(lambda d: js("return window.studio.timings.length") >= i + 1)
        t = sorted(js("return window.studio.timings"))
        out["slider_p50_ms"] = round(t[len(t) // 2], 2)
        out["slider_p99_ms"] = round(t[min(len(t) - 1, (len(t) * 99) // 100)], 2)
        out["slider_moves"] = len(t)

        # The map: hover decodes the point under the mouse; click sets A, shift-click B.
        cmap = driver.find_element(By.ID, "map")
        before = attr("decoded", "hash")
        ActionChains(driver).move_to_element_with_offset(cmap, -120, -90).move_by_offset(5, 5).perform()
        wait.until(lambda d: attr("decoded", "hash") != before)
        ActionChains(driver).move_to_element_with_offset(cmap, -130, -100).click().perform()
        (ActionChains(driver).move_to_element_with_offset(cmap, 120, 110)
         .key_down(Keys.SHIFT).click().key_up(Keys.SHIFT).perform())
        driver.find_element(By.ID, "interp-mode").send_keys("s")  # spherical
        driver.find_element(By.ID, "interp-go").click()
        wait.until(lambda d: attr("interp", "hash"))
        driver.find_element(By.ID, "sample-go").click()
        wait.until(lambda d: attr("samples", "hash"))
        check_error()
        shot("studio-explorer.png")

        # Your image: a digit drawn on the canvas, then a file.
        tab("yours")
        pad = driver.find_element(By.ID, "draw")
        (ActionChains(driver).move_to_element_with_offset(pad, -60, -80).click_and_hold()
         .move_by_offset(110, 0).move_by_offset(-60, 170).release().perform())
        driver.find_element(By.ID, "draw-use").click()
        wait.until(lambda d: attr("your-output", "done"))
        check_error()
        js("document.getElementById('your-output').dataset.done = ''")
        driver.find_element(By.ID, "upload").send_keys(os.path.abspath(a.upload))
        wait.until(lambda d: attr("your-output", "done"))
        assert js("return document.getElementById('your-output').naturalWidth") > 0
        check_error()
        shot("studio-yours.png")

        # Memorisation check of the explorer's point.
        tab("memo")
        driver.find_element(By.ID, "memo-go").click()
        wait.until(lambda d: attr("memo-pixels", "count"))
        assert len(driver.find_elements(By.CSS_SELECTOR, "#memo-pixels img")) == 8
        check_error()
        shot("studio-memo.png")

        # Training: curves drawn from metrics.jsonl, the epoch's images.
        tab("training")
        wait.until(lambda d: js("return document.getElementById('epoch-samples').naturalWidth") > 0)
        assert driver.find_elements(By.CSS_SELECTOR, "#keys input"), "no curve keys"
        check_error()
        shot("studio-training.png")

        # Super-resolution: a photo upscaled, the before/after split, the download link.
        tab("sr")
        wait.until(lambda d: len(driver.find_elements(By.CSS_SELECTOR, "#sr-model option")) >= 3)
        driver.find_element(By.ID, "sr-upload").send_keys(os.path.abspath(a.photo))
        wait.until(lambda d: driver.find_element(By.ID, "sr-download").is_displayed())
        assert js("return document.getElementById('sr-out').naturalWidth") > 0
        check_error()
        shot("studio-sr.png")

        # A GAN has no encoder: the same upload is inverted (Adam on z).
        if a.invert_run is not None:
            tab("runs")
            driver.find_element(By.CSS_SELECTOR, f'input[name=run][value="{a.invert_run}"]').click()
            tab("yours")
            js("document.getElementById('your-output').dataset.done = ''")
            driver.find_element(By.ID, "upload").clear()
            driver.find_element(By.ID, "upload").send_keys(os.path.abspath(a.upload))
            wait.until(lambda d: attr("your-output", "done"))
            info = driver.find_element(By.ID, "your-info").text
            assert info.startswith("inversion"), info
            out["inversion"] = info
            check_error()
            shot("studio-invert.png")

        # A conditional run: the class picker appears and drives the explorer.
        if a.class_run is not None:
            tab("runs")
            driver.find_element(By.CSS_SELECTOR, f'input[name=run][value="{a.class_run}"]').click()
            tab("explorer")
            wait.until(lambda d: driver.find_element(By.ID, "class-box").is_displayed())
            wait.until(lambda d: attr("decoded", "hash") and "decoded in" in
                       driver.find_element(By.ID, "decoded-info").text)
            before = attr("decoded", "hash")
            driver.find_element(By.ID, "class").send_keys("7")
            wait.until(lambda d: attr("decoded", "hash") != before)
            check_error()
            out["class_picker"] = "ok"
            shot("studio-class.png")

        if a.browser == "chromium":  # geckodriver has no console log to read
            severe = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
            assert not severe, f"console errors: {severe}"
        out["browser"] = driver.capabilities.get("browserName", "") + " " + driver.capabilities.get("browserVersion", "")
    except Exception as e:  # a failure: the page as it was, for the reader of the log
        if a.out:
            driver.save_screenshot(os.path.join(a.out, "studio-failure.png"))
        print("FAILED:", type(e).__name__, e, file=sys.stderr)
        try:
            print("page error:", driver.find_element(By.ID, "error").text, file=sys.stderr)
        except Exception:
            pass
        driver.quit()
        sys.exit(1)
    driver.quit()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
