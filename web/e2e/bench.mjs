// `cargo xtask bench web`: first-load JavaScript (gzip) and time to interactive of the
// counselor home and the voice page, in headless Chromium against the real binary with the
// cache disabled. Time to interactive here: from navigation start until the page's main control
// is on screen and enabled and the main thread has had no long task (>50 ms) for 500 ms.
// Prints numbers; asserts nothing but that the pages load.
import { gzipSync } from "node:zlib";
import { apiSession, launch, startApp } from "./lib.mjs";

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const ADMIN = { email: "ada@bench.test", password: "admin-password-bench-only" };
const COUNSELOR = { email: "casey@bench.test", password: "casey-bench-password" };

async function measure(page, cdp, url, ready) {
  const scripts = new Map();
  const onResponse = async (res) => {
    if (res.request().resourceType() !== "script") return;
    try {
      scripts.set(res.url(), gzipSync(await res.body()).length);
    } catch {}
  };
  page.on("response", onResponse);
  await cdp.send("Network.clearBrowserCache");
  await page.goto("about:blank");
  await page.addInitScript(() => {
    window.__longTasks = [];
    new PerformanceObserver((list) => list.getEntries().forEach((e) => window.__longTasks.push(e.startTime + e.duration))).observe({ type: "longtask", buffered: true });
  });
  await page.goto(url);
  await ready(page);
  const visibleAt = await page.evaluate(() => performance.now());
  // Quiet window: no long task for 500 ms.
  let tti = visibleAt;
  for (;;) {
    await page.waitForTimeout(500);
    const last = await page.evaluate(() => Math.max(0, ...window.__longTasks));
    const now = await page.evaluate(() => performance.now());
    tti = Math.max(visibleAt, last);
    if (now - tti >= 500) break;
  }
  page.off("response", onResponse);
  const gzip = [...scripts.values()].reduce((a, b) => a + b, 0);
  return { gzip, files: scripts.size, tti };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function main() {
  const { base } = await startApp({ adminEmail: ADMIN.email, adminPassword: ADMIN.password });
  const api = await apiSession(base, ADMIN.email, ADMIN.password);
  const created = await api("POST", "/api/users", { email: COUNSELOR.email, displayName: "Casey Counselor", role: "counselor" });
  const first = await apiSession(base, COUNSELOR.email, created.temporaryPassword);
  await first("POST", "/api/auth/password", { currentPassword: created.temporaryPassword, newPassword: COUNSELOR.password });
  const browser = await launch();
  const page = browser.pages()[0] ?? (await browser.newPage());
  const cdp = await browser.newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
  await page.goto(`${base}/sign-in`);
  await page.getByLabel("E-mail").fill(COUNSELOR.email);
  await page.getByLabel("Password", { exact: true }).fill(COUNSELOR.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "My assignments" }).waitFor();
  const pages = {
    "counselor home": [`${base}/practice`, (p) => p.getByRole("button", { name: "Free chat practice" }).waitFor()],
    "voice page": [`${base}/practice/voice`, (p) => p.getByRole("button", { name: "Connect" }).waitFor()],
  };
  const results = {};
  for (const [name, [url, ready]] of Object.entries(pages)) {
    const runs = [];
    for (let i = 0; i < RUNS; i++) runs.push(await measure(page, cdp, url, ready));
    results[name] = { gzipKB: runs[0].gzip / 1024, files: runs[0].files, ttiMs: median(runs.map((r) => r.tti)), ttiMax: Math.max(...runs.map((r) => r.tti)) };
  }
  await browser.close();
  console.log(`web bench (${RUNS} cold loads each, cache disabled, 127.0.0.1, headless Chromium)`);
  for (const [name, r] of Object.entries(results)) {
    console.log(`${name.padEnd(15)} first-load JS ${r.gzipKB.toFixed(1)} KB gzip in ${r.files} files; time to interactive median ${r.ttiMs.toFixed(0)} ms (max ${r.ttiMax.toFixed(0)} ms)`);
  }
  const home = results["counselor home"].gzipKB;
  console.log(`counselor home target <= 250 KB gzip: ${home <= 250 ? "met" : "NOT met"} (${home.toFixed(1)} KB)`);
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
