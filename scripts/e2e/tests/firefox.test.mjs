// The page in Firefox: Debian's firefox-esr driven over WebDriver BiDi by
// puppeteer-core (playwright-core drives only its own patched Firefox).
// A smoke test of what differs between engines: the wasm build loads, the
// canvas animates, keyboard actions reach the simulation, the forms work,
// and nothing is logged as an error. The full suite runs in Chromium
// (page.test.mjs and sharded.test.mjs).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import puppeteer from "puppeteer-core";
import { serve } from "../serve.mjs";
import { ARTIFACTS } from "../browser.mjs";

const FIREFOX = process.env.FIREFOX ?? "/usr/bin/firefox-esr";
let browser, server, profile;

before(async () => {
  profile = await fs.mkdtemp(path.join(os.tmpdir(), "distribkv-ff-"));
  browser = await puppeteer.launch({
    browser: "firefox", executablePath: FIREFOX, headless: true, userDataDir: profile,
    args: ["--width=1440", "--height=900"],
  });
  server = await serve();
});

after(async () => {
  await browser?.close();
  await server?.close();
  if (profile) await fs.rm(profile, { recursive: true, force: true });
});

const leaderOf = () => window.__distribkv.sim().state().leader;

test("Firefox: the page runs the real simulation, survives a leader crash and completes a put", async () => {
  const page = await browser.newPage();
  const errors = [];
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push(String(e)));
  try {
    await page.setViewport({ width: 1440, height: 900 });
    await page.evaluateOnNewDocument(() => localStorage.setItem("distribkv.introSeen", "1"));
    await page.goto(`${server.url}#n=5&seed=42`);
    await page.waitForFunction(() => window.__distribkv && "ready" in window.__distribkv, { timeout: 20000 });
    assert.equal(await page.evaluate(() => window.__distribkv.ready), true, "the wasm build loaded");
    assert.equal(await page.evaluate(() => window.__distribkv.backend), "wasm");
    // run at full speed until a leader is elected
    await page.$eval("#speed", (el) => { el.value = el.max; el.dispatchEvent(new Event("input")); });
    await page.click("#play");
    await page.waitForFunction(`(${leaderOf})() !== null`, { timeout: 20000 });
    await page.click("#play"); // pause
    const leader = await page.evaluate(`(${leaderOf})()`);
    // crash it with the keyboard: its number selects it, "c" crashes the selection
    await page.keyboard.press(String(leader));
    await page.keyboard.press("c");
    const down = await page.evaluate((id) => window.__distribkv.sim().state().nodes.find((n) => n.id === id).up, leader);
    assert.equal(down, false, "the leader is down");
    await page.click("#play");
    await page.waitForFunction(`(() => { const l = (${leaderOf})(); return l !== null && l !== ${leader}; })()`, { timeout: 20000 });
    // a put from the client form completes
    await page.evaluate(() => { document.querySelector("#op-key").value = "greeting"; document.querySelector("#op-value").value = "hello"; });
    await page.click('#op-form button[type="submit"]');
    await page.waitForFunction(() => window.__distribkv.sim().history().some((o) => o.key === "greeting" && o.status === "ok"), { timeout: 20000 });
    // the canvas animates at a usable rate
    const fps = await page.evaluate(() => window.__distribkv.fps());
    assert.ok(fps > 20, `frame rate ${fps}`);
    assert.equal(await page.evaluate(() => window.__distribkv.sim().check().ok), true);
    assert.deepEqual(errors, [], "no errors in the console");
  } catch (err) {
    await fs.mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, "fail-firefox.png") }).catch(() => {});
    throw err;
  } finally {
    await page.close();
  }
});
