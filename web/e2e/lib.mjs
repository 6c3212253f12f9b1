// Shared by the E2E run and the web benchmark: the real binary on 127.0.0.1 with a fresh SQLite
// database and the OpenAI simulator, and Debian's Chromium driven by playwright-core.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";
export const FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"];
export const OUT = resolve(process.env.E2E_OUT ?? "target/e2e");

/** Debian's chromium, installed with apt when missing (outside any network namespace). */
export function ensureChromium() {
  if (existsSync(CHROMIUM)) return;
  console.error("e2e: installing Debian's chromium");
  execFileSync("apt-get", ["update"], { stdio: "inherit" });
  execFileSync("apt-get", ["install", "-y", "--no-install-recommends", "chromium"], { stdio: "inherit", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
}

export function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", fail);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

const children = [];
process.on("exit", () => children.forEach((c) => c.kill("SIGTERM")));
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(130));

async function waitFor(url, what, ms = 30_000, headers = {}) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    try {
      const r = await fetch(url, { headers });
      if (r.ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} did not come up at ${url}`);
}

/**
 * Starts the simulator and the app; creates an account whose admin has `adminPassword`.
 * Returns { base, env, stop }.
 */
export async function startApp({ adminEmail, adminPassword, extraEnv = {} }) {
  const bin = resolve(process.env.E2E_BIN ?? "target/debug/proto-trainer");
  const simBin = resolve(process.env.E2E_SIM_BIN ?? "target/debug/openai-sim");
  const rules = process.env.E2E_SIM_RULES ? resolve(process.env.E2E_SIM_RULES) : null;
  const dir = mkdtempSync(join(tmpdir(), "proto-trainer-e2e-"));
  const [simPort, port] = [await freePort(), await freePort()];
  const sim = spawn(simBin, ["--bind", `127.0.0.1:${simPort}`, ...(rules ? ["--rules", rules] : [])], { stdio: "ignore" });
  children.push(sim);
  const env = {
    ...process.env,
    DATABASE_URL: `sqlite://${join(dir, "e2e.db")}?mode=rwc`,
    PORT: String(port),
    BIND_ADDR: "127.0.0.1",
    OPENAI_BASE_URL: `http://127.0.0.1:${simPort}/v1`,
    OPENAI_API_KEY: "e2e-simulated",
    RUST_LOG: process.env.RUST_LOG ?? "warn",
    DEMO_MODE: "false",
    ...extraEnv,
  };
  execFileSync(bin, ["account", "create", "--name", "E2E Crisis Center", "--admin-email", adminEmail, "--admin-name", "Ada Admin", "--password-stdin"], { env, input: `${adminPassword}\n`, stdio: ["pipe", "ignore", "inherit"] });
  const app = spawn(bin, ["serve"], { env, stdio: ["ignore", "ignore", "inherit"] });
  children.push(app);
  const base = `http://127.0.0.1:${port}`;
  await waitFor(`http://127.0.0.1:${simPort}/v1/models`, "openai-sim", 30_000, { authorization: `Bearer ${env.OPENAI_API_KEY}` });
  await waitFor(`${base}/readyz`, "proto-trainer");
  return { base, dir };
}

/** A small API client for setting up data as the admin (not what is under test). */
export async function apiSession(base, email, password) {
  const r = await fetch(`${base}/api/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ email, password }) });
  if (!r.ok) throw new Error(`login ${email}: ${r.status} ${await r.text()}`);
  const cookie = r.headers.getSetCookie().map((c) => c.split(";")[0]).join("; ");
  const { csrfToken } = await r.json();
  return async (method, path, body) => {
    const res = await fetch(`${base}${path}`, { method, headers: { cookie, "x-csrf-token": csrfToken, "content-type": "application/json" }, body: body ? JSON.stringify(body) : undefined });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
}

export async function launch(extraArgs = []) {
  ensureChromium();
  mkdirSync(OUT, { recursive: true });
  const profile = mkdtempSync(join(tmpdir(), "proto-trainer-chromium-"));
  return chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: [...FLAGS, ...extraArgs], viewport: { width: 1280, height: 900 } });
}
