// Take screenshots of the page for a visual check: node shot.mjs [name] [query] [hash] [width] [height] [scriptFile]
import { launch, pageUrl, screenshot } from "./browser.mjs";
const [name = "page", query = "", hash = "", w = "1440", h = "900", actions = ""] = process.argv.slice(2);
const env = await launch();
const page = await env.context.newPage();
page.on("console", (m) => { if (m.type() === "error" || m.type() === "warning") console.log("console:", m.type(), m.text()); });
page.on("pageerror", (e) => console.log("pageerror:", e));
if (process.env.DARK) await page.emulateMedia({ colorScheme: "dark" });
await page.setViewportSize({ width: Number(w), height: Number(h) });
await page.addInitScript(() => localStorage.setItem("distribkv.introSeen", "1"));
await page.goto(`${env.server.url}?${query}${hash}`);
await page.waitForTimeout(500);
if (actions) { const fn = (await import(new URL(actions, `file://${process.cwd()}/`).href)).default; await fn(page); }
console.log(await screenshot(page, name));
await env.close();
