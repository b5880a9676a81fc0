// A tiny static file server for web/ (no dependencies). Used by the tests,
// fps.mjs and scripts/serve-web.sh; by hand: `node serve.mjs [port]`.
import http from "node:http";
import fs from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const WEB_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../web");

const TYPES = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8", ".json": "application/json", ".wasm": "application/wasm", ".svg": "image/svg+xml",
  ".png": "image/png", ".ico": "image/x-icon", ".txt": "text/plain; charset=utf-8", ".map": "application/json",
  ".ts": "text/plain; charset=utf-8", ".md": "text/plain; charset=utf-8",
};

function handler(root) {
  return async (req, res) => {
    try {
      const u = new URL(req.url, "http://localhost");
      let p = decodeURIComponent(u.pathname);
      if (p.endsWith("/")) p += "index.html";
      const file = path.resolve(root, "." + p);
      if (!file.startsWith(root + path.sep) && file !== root) { res.writeHead(403).end(); return; }
      const body = await fs.readFile(file);
      res.writeHead(200, { "content-type": TYPES[path.extname(file)] ?? "application/octet-stream", "cache-control": "no-store" });
      res.end(req.method === "HEAD" ? undefined : body);
    } catch {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
    }
  };
}

function listen(server, port, host) {
  return new Promise((resolve, reject) => {
    const onError = (err) => { server.off("listening", onListening); reject(err); };
    const onListening = () => { server.off("error", onError); resolve(); };
    server.once("error", onError);
    server.once("listening", onListening);
    server.listen(port, host);
  });
}

/**
 * Serve `root` on `host`; resolves to { url, port, close() }. Port 0 picks a
 * free one. With `fallback`, a busy port is followed by the next ones (up to
 * 20), then by any free port.
 */
export async function serve({ root = WEB_ROOT, port = 0, host = "127.0.0.1", fallback = false } = {}) {
  const server = http.createServer(handler(root));
  const tries = fallback && port ? [...Array.from({ length: 20 }, (_, i) => port + i).filter((p) => p <= 65535), 0] : [port];
  let lastErr = null;
  for (const p of tries) {
    try {
      await listen(server, p, host);
      lastErr = null;
      break;
    } catch (err) {
      if (err.code !== "EADDRINUSE" && err.code !== "EACCES") throw err;
      lastErr = err;
    }
  }
  if (lastErr) throw lastErr;
  const { port: actual } = server.address();
  const shown = host === "0.0.0.0" || host === "::" ? "localhost" : host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${shown}:${actual}/`,
    port: actual,
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const wanted = Number(process.argv[2] ?? process.env.PORT ?? 8080);
  if (!Number.isInteger(wanted) || wanted < 0 || wanted > 65535) {
    console.error(`serve.mjs: not a port: ${process.argv[2] ?? process.env.PORT}`);
    process.exit(2);
  }
  const host = process.env.HOST ?? "127.0.0.1";
  const s = await serve({ port: wanted, host, fallback: true });
  if (wanted && s.port !== wanted) console.log(`port ${wanted} is busy; using ${s.port}`);
  console.log(`serving ${WEB_ROOT}`);
  console.log(`open ${s.url}   (Ctrl-C to stop)`);
  const stop = async () => { await s.close(); process.exit(0); };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
