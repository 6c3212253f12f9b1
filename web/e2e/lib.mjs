// Shared by the E2E run and the web benchmark: the real binary on 127.0.0.1 with a fresh SQLite
// database and the OpenAI simulator, and Debian's Chromium driven by playwright-core. For the
// voice scenario also the real livekit-server (`startLivekit`; the binary then runs the voice
// agent in-process), all in the loopback-only network namespace the caller runs this in
// (scripts/livekit/netns-run.sh).
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, mkdirSync, openSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";
export const FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"];
// The run's account admin and three people with the passwords they choose at first sign-in
// (the whole run and the steps that can also run alone).
export const E2E_ADMIN = { email: "ada@e2e.test", password: "admin-password-e2e-only" };
export const E2E_PEOPLE = {
  supervisor: { email: "sue@e2e.test", name: "Sue Supervisor", role: "supervisor", password: "supervisor-chosen-pass" },
  casey: { email: "casey@e2e.test", name: "Casey Counselor", role: "counselor", password: "casey-chosen-password" },
  robin: { email: "robin@e2e.test", name: "Robin Counselor", role: "counselor", password: "robin-chosen-password" },
};
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
// The run's temporary directories (databases, recordings, speech, Chromium profiles) go when it
// ends, as its children do: every CI run makes dozens, and left behind they fill the disk.
const tempDirs = [];
function tempDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}
process.on("exit", () => {
  children.forEach((c) => c.kill("SIGTERM"));
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
});
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(130));

export async function waitFor(url, what, ms = 30_000, headers = {}) {
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
export async function startApp({ adminEmail, adminPassword, extraEnv = {}, logFile = null }) {
  const bin = resolve(process.env.E2E_BIN ?? "target/debug/proto-trainer");
  const simBin = resolve(process.env.E2E_SIM_BIN ?? "target/debug/openai-sim");
  const rules = process.env.E2E_SIM_RULES ? resolve(process.env.E2E_SIM_RULES) : null;
  const dir = tempDir("proto-trainer-e2e-");
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
  // With a log file (the voice run), the service's and its in-process agent's info logs go there.
  const log = logFile ? openSync(logFile, "w") : "inherit";
  const app = spawn(bin, ["serve"], { env: logFile ? { ...env, RUST_LOG: process.env.RUST_LOG ?? "info,str0m=warn,sqlx=warn" } : env, stdio: ["ignore", logFile ? log : "ignore", log] });
  children.push(app);
  const base = `http://127.0.0.1:${port}`;
  await waitFor(`http://127.0.0.1:${simPort}/v1/models`, "openai-sim", 30_000, { authorization: `Bearer ${env.OPENAI_API_KEY}` });
  await waitFor(`${base}/readyz`, "proto-trainer");
  return { base, dir };
}

/** Whether a TCP port accepts connections. */
function listening(port) {
  return new Promise((ok) => {
    const s = connect({ host: "127.0.0.1", port }, () => {
      s.destroy();
      ok(true);
    });
    s.on("error", () => ok(false));
  });
}

/**
 * The voice peer: livekit-server with the loopback config of scripts/livekit/render-config.sh
 * and a dev key pair made for this run. Answers the environment that makes `proto-trainer
 * serve` run the voice agent in-process (LIVEKIT_*; recordings where the service reads them).
 */
export async function startLivekit() {
  const root = resolve(process.env.E2E_REPO ?? ".");
  const server = resolve(process.env.E2E_LIVEKIT_SERVER ?? join(process.env.HOME ?? "/root", ".cache/proto-trainer/bin/livekit-server"));
  const dir = tempDir("proto-trainer-e2e-voice-");
  const lk = { LK_PORT: "7880", LK_TCP_PORT: "7881", LK_UDP_PORT: "7882", LK_API_KEY: "devkey", LK_API_SECRET: `devsecret-${randomBytes(16).toString("hex")}`, LK_LOG_LEVEL: "warn" };
  const config = execFileSync(join(root, "scripts/livekit/render-config.sh"), { env: { ...process.env, ...lk } });
  writeFileSync(join(dir, "livekit.yaml"), config);
  const log = openSync(join(OUT, "livekit-server.log"), "w");
  children.push(spawn(server, ["--config", join(dir, "livekit.yaml")], { stdio: ["ignore", log, log] }));
  const until = Date.now() + 15_000;
  while (!(await listening(Number(lk.LK_PORT)))) {
    if (Date.now() > until) throw new Error("livekit-server did not come up");
    await new Promise((r) => setTimeout(r, 100));
  }
  const recordings = join(dir, "recordings");
  mkdirSync(recordings, { recursive: true });
  return {
    appEnv: { LIVEKIT_URL: `ws://127.0.0.1:${lk.LK_PORT}`, LIVEKIT_API_KEY: lk.LK_API_KEY, LIVEKIT_API_SECRET: lk.LK_API_SECRET, RECORDINGS_DIR: recordings, JOB_POLL_MS: "250" },
  };
}

/**
 * The counselor's microphone for Chromium's fake capture: espeak-ng speech resampled by sox to
 * 48 kHz mono, after `leadSeconds` of silence (the caller speaks first) and followed by silence.
 */
export function speechWav(text, leadSeconds) {
  const dir = tempDir("proto-trainer-e2e-wav-");
  const raw = join(dir, "raw.wav");
  const out = join(OUT, "counselor.wav");
  execFileSync("espeak-ng", ["-w", raw, text], { stdio: "ignore" });
  execFileSync("sox", [raw, "-r", "48000", "-c", "1", "-b", "16", out, "pad", String(leadSeconds), "2"], { stdio: "ignore" });
  return out;
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
  const profile = tempDir("proto-trainer-chromium-");
  return chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: [...FLAGS, ...extraArgs], viewport: { width: 1280, height: 900 } });
}
