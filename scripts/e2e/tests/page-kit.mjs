// What the page's end-to-end test files share: one Chromium per file
// (launched before its tests, closed after them), pageTest, and the small
// steps the tests are written with.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch, openPage, pageUrl, screenshot } from "../browser.mjs";

/** The browser and the page's server of this test file (set before the tests run). */
export let env;
before(async () => { env = await launch(); await env.context.grantPermissions(["clipboard-read", "clipboard-write"]); });
after(async () => { await env?.close(); });

/** Run a test body with a fresh page; on failure save a screenshot to artifacts/. */
export function pageTest(name, body, { timeout = 60000, open = {}, skip = false } = {}) {
  test(name, { timeout, skip }, async () => {
    const { page, errors } = await openPage(env, open);
    try {
      await body(page, errors);
      assert.deepEqual(errors, [], "no console errors");
    } catch (err) {
      const file = await screenshot(page, `fail-${name}`).catch(() => null);
      if (file) err.message += `\n(screenshot: ${file})`;
      throw err;
    } finally {
      await page.close();
    }
  });
}

export const state = (page) => page.evaluate(() => window.__distribkv.sim().state());
export const summary = (st) => st.nodes.map((n) => ({ id: n.id, up: n.up, role: n.role, term: n.term, commitIndex: n.commitIndex, lastIndex: n.lastIndex }));

export async function setSpeed(page, exp) {
  await page.$eval("#speed", (el, v) => { el.value = String(v); el.dispatchEvent(new Event("input", { bubbles: true })); }, exp);
}
export async function play(page) { if ((await page.getAttribute("#play", "aria-label")) === "Play") await page.click("#play"); }
/** Wait until the element's text matches: the side panels follow the run a few times a second, not at once. */
export async function waitText(page, selector, re) {
  try {
    await page.waitForFunction(([sel, src]) => new RegExp(src).test(document.querySelector(sel)?.textContent ?? ""), [selector, re.source], { timeout: 5000 });
  } catch {
    assert.match(await page.textContent(selector), re);
  }
}
export async function pause(page) { if ((await page.getAttribute("#play", "aria-label")) === "Pause") await page.click("#play"); }
export async function waitLeader(page, { not = null, timeout = 20000 } = {}) {
  const h = await page.waitForFunction((not) => {
    const { leader } = window.__distribkv.sim().state();
    return leader !== null && leader !== not ? leader : null;
  }, not, { timeout });
  return h.jsonValue();
}
export async function scrubTo(page, t) {
  await page.$eval("#timeline", (el, v) => {
    el.dispatchEvent(new PointerEvent("pointerdown", { bubbles: true }));
    el.value = String(v);
    el.dispatchEvent(new Event("input", { bubbles: true }));
    el.dispatchEvent(new Event("change", { bubbles: true }));
    el.dispatchEvent(new PointerEvent("pointerup", { bubbles: true }));
  }, t);
  await page.waitForFunction((t) => Math.abs(window.__distribkv.timeline().display - t) < 1.01, t);
}

/** Client coordinates of a point given in canvas (CSS pixel) coordinates. */
export async function canvasPoint(page, x, y) {
  const r = await page.evaluate(() => document.querySelector("#cluster").getBoundingClientRect().toJSON());
  return [r.x + x, r.y + y];
}

/**
 * Open a share link as anyone could craft or mangle it, in a fresh page, and
 * see what the page makes of it: within `ms` (a link that freezes the tab
 * fails here, in seconds) the app must run with the stage shown. Every
 * message the page shows (toasts, the notice bar) is kept in order, as a
 * later one may replace an earlier one. `respond()` then checks that the
 * page still answers: Step, and a put from the form lands in the history.
 */
export async function openLink(hash, { ms = 8000 } = {}) {
  const page = await env.context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  await page.addInitScript(() => {
    localStorage.setItem("distribkv.introSeen", "1");
    window.__messages = [];
    addEventListener("DOMContentLoaded", () => {
      const seen = () => {
        for (const sel of ["#toast", "#notice-text"]) {
          const text = document.querySelector(sel)?.textContent;
          if (text && window.__messages.at(-1) !== text) window.__messages.push(text);
        }
      };
      new MutationObserver(seen).observe(document.body, { subtree: true, childList: true, characterData: true });
    });
  });
  const close = () => Promise.race([page.close(), new Promise((ok) => setTimeout(ok, 3000))]);
  try {
    await page.goto(pageUrl(env.server, { hash }), { waitUntil: "commit", timeout: ms });
    await page.waitForFunction(() => window.__distribkv?.app?.timeline && document.querySelector("#boot")?.hidden, null, { timeout: ms, polling: 50 });
  } catch (err) {
    await close();
    throw new Error(`${hash.slice(0, 80)}: the page did not answer within ${ms} ms (${err.message.split("\n")[0]}); page errors: ${errors.join("; ")}`);
  }
  const messages = () => page.evaluate(() => window.__messages.join(" | "));
  const respond = async () => {
    const before = await page.evaluate(() => ({ now: window.__distribkv.sim().now(), ops: window.__distribkv.sim().history().length }));
    await page.click("#step", { timeout: ms });
    const form = (await page.evaluate(() => window.__distribkv.mode)) === "sharded" ? "#sh-op-form" : "#op-form";
    await page.click(`${form} button[type="submit"]`, { timeout: ms });
    await page.waitForFunction((n) => window.__distribkv.sim().history().length > n, before.ops, { timeout: ms });
  };
  return { page, errors, messages, respond, close };
}
