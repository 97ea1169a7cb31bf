"""Screenshot of a `nerelproc render` page, as in the README: `python reports/render/screenshot.py PAGE PNG`.

Opens PAGE in Debian's headless chromium (through chromedriver, nothing downloaded),
fails on any console error, and saves the top of the page (1400 px wide) as PNG.
"""

import sys
import tempfile
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
        "--window-size=1400,1000")


def main(page, png):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    with tempfile.TemporaryDirectory() as profile:
        for argument in (*ARGS, f"--user-data-dir={profile}"):
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        try:
            driver.get(Path(page).resolve().as_uri())
            errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
            if errors:
                sys.exit(f"console errors: {errors}")
            driver.save_screenshot(png)
        finally:
            driver.quit()


if __name__ == "__main__":
    main(*sys.argv[1:3])
