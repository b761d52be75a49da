// Drives the page in headless Chromium: node drive.mjs CHROMIUM PAGE_URL SCREENSHOT
// Prints one line per check the page ran, saves a screenshot, and exits non-zero if a check
// failed, the page broke, or it did not finish within a minute.
import puppeteer from "puppeteer-core";

const [chromium, url, screenshot] = process.argv.slice(2);
const browser = await puppeteer.launch({
  executablePath: chromium,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu"],
});
let failed = true;
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1100, height: 620 });
  const problems = [];
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console: ${message.text()}`);
  });
  await page.goto(url, { waitUntil: "load" });
  await page.waitForFunction(() => Array.isArray(window.__results), { timeout: 60_000 });
  const results = await page.evaluate(() => window.__results);
  await page.screenshot({ path: screenshot, fullPage: true });
  for (const { name, ok, detail } of results) {
    console.log(`${name.padEnd(48)} ${ok ? "pass" : "FAIL"}  ${detail}`);
  }
  for (const problem of problems) console.log(problem);
  failed = results.length === 0 || results.some((r) => !r.ok);
  console.log(`browser: ${results.filter((r) => r.ok).length} passed, ${results.filter((r) => !r.ok).length} failed`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
