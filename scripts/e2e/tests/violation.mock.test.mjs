// MOCK ONLY. The correctness panel's violation path: the first violation
// pauses the run and outlines the operations involved. The real simulator
// has no bug for the checkers to find, so this test runs the JavaScript
// stand-in (web/dev/mock-sim.js) with an injected stale-read bug
// (?mock=stale-reads), whatever E2E_MOCK says.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch, openPage, screenshot } from "../browser.mjs";

let env;
before(async () => { env = await launch(); });
after(async () => { await env?.close(); });

test("(mock) a correctness violation pauses the run and outlines the operations", { timeout: 90000 }, async () => {
  const { page, errors } = await openPage(env, { query: "mock=stale-reads" });
  try {
    assert.equal(await page.evaluate(() => window.__distribkv.backend), "mock");
    await page.$eval("#speed", (el) => { el.value = "0.5"; el.dispatchEvent(new Event("input", { bubbles: true })); });
    await page.keyboard.press("w"); // steady workload
    await page.click("#play");
    await page.waitForFunction(() => window.__distribkv.app.checkResult && !window.__distribkv.app.checkResult.ok, null, { timeout: 60000 });
    await page.waitForFunction(() => document.querySelector("#play").getAttribute("aria-label") === "Play", null, { timeout: 2000 });
    assert.match(await page.textContent("#notice"), /Correctness violation/);
    assert.match(await page.textContent("#check-pill"), /VIOLATION/);
    assert.ok(await page.evaluate(() => window.__distribkv.app.highlightOps.size) > 0, "the operations involved are outlined");
    assert.deepEqual(errors, []);
  } catch (err) {
    const file = await screenshot(page, "fail-mock-violation").catch(() => null);
    if (file) err.message += `\n(screenshot: ${file})`;
    throw err;
  } finally {
    await page.close();
  }
});
