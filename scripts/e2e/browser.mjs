// Launch Debian's Chromium through playwright-core (no browser download) and
// open the page, which loads the wasm build from web/pkg/.
import { chromium } from "playwright-core";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { serve } from "./serve.mjs";

export const ARTIFACTS = path.join(path.dirname(fileURLToPath(import.meta.url)), "artifacts");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

export async function launch() {
  const userDataDir = await fs.mkdtemp(path.join(os.tmpdir(), "distribkv-e2e-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
    viewport: { width: 1440, height: 900 },
    deviceScaleFactor: Number(process.env.DPR ?? 1),
  });
  const server = await serve();
  return {
    context, server,
    async close() { await context.close(); await server.close(); await fs.rm(userDataDir, { recursive: true, force: true }); },
  };
}

/** The page URL for a query/hash. */
export function pageUrl(server, { hash = "", query = "" } = {}) {
  return `${server.url}${query ? `?${query}` : ""}${hash}`;
}

/** Open a page, collecting console errors, with the intro already dismissed. */
export async function openPage(env, opts = {}) {
  const page = await env.context.newPage();
  const errors = [];
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.addInitScript(() => localStorage.setItem("distribkv.introSeen", "1"));
  await page.goto(pageUrl(env.server, opts));
  await page.waitForFunction(() => window.__distribkv && "ready" in window.__distribkv, null, { timeout: 15000 });
  const ready = await page.evaluate(() => window.__distribkv.ready);
  if (!ready) throw new Error(`the page could not load the simulation: ${await page.evaluate(() => window.__distribkv.error)}`);
  return { page, errors };
}

export async function screenshot(page, name) {
  await fs.mkdir(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name.replace(/[^a-z0-9-]+/gi, "_")}.png`);
  await page.screenshot({ path: file });
  return file;
}
