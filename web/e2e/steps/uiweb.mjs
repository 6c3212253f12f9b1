// The web UI issue's phone, chart, combobox and microphone items (issue 20, items 5, 8 and 10),
// each a scenario that failed before the change:
//   - at 390 px the chat's reply box and End button stay on screen after many messages, even
//     scrolled to the top, and no counselor page scrolls sideways;
//   - the progress charts' legends sit under the charts, never on them, and every chart has its
//     numbers as a table ("Show as table");
//   - the counselor picker names its highlighted option (`aria-activedescendant`);
//   - the microphone test shows a level from Chromium's fake microphone, and "we can't hear you"
//     for a microphone that sends silence.
// Each step takes run.mjs's `ctx` (page, base, api as the account admin, ids, people with their
// chosen passwords, and the audit/check/signIn/signOut helpers) and leaves the browser signed out
// at the desktop size. Screenshots go to E2E_OUT as `${E2E_SHOT_PREFIX ?? "after-"}<name>.png`
// (the "before" set is the same steps run against the UI at main 9a6885a; see the run notes in
// the REPORT of the branch).
//
// Also runnable alone (`node web/e2e/steps/uiweb.mjs`, same E2E_BIN / E2E_SIM_BIN /
// E2E_SIM_RULES / E2E_OUT as run.mjs): it then starts the app and sets up its own people.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { apiSession, E2E_ADMIN, E2E_PEOPLE, launch, OUT, startApp } from "../lib.mjs";

/** The service's settings for the run: the E2E signs its five people in from 127.0.0.1 far more
 * often than 20 times in 15 minutes (the default limit per address, which stopped the run once
 * these steps were added); the limits themselves are tested in the admin suite. */
export const env = { RATE_LIMIT_LOGIN_PER_IP: "1000/900", RATE_LIMIT_LOGIN_PER_PAIR: "200/900", RATE_LIMIT_LOGIN_PER_EMAIL: "200/900" };

const PREFIX = process.env.E2E_SHOT_PREFIX ?? "after-";
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 900 };

async function shot(page, name) {
  await page.screenshot({ path: join(OUT, `${PREFIX}${name}.png`) });
}

async function signedIn(ctx, person, heading) {
  await ctx.signIn(ctx.page, ctx.base, person.email, person.password);
  await ctx.page.getByRole("heading", { name: heading, exact: true }).waitFor();
}

/** A chat of `messages` exchanges by `person` through the API; graded when `grade`. */
async function chatAs(ctx, person, messages, grade) {
  const as = await apiSession(ctx.base, person.email, person.password);
  const started = await as("POST", "/api/sessions", {});
  const id = started.session.id;
  for (let i = 0; i < messages; i++) {
    await as("POST", `/api/sessions/${id}/message`, { content: `Message ${i + 1}: I am here with you. Are you thinking about suicide?` });
  }
  if (grade) {
    await as("POST", `/api/sessions/${id}/evaluate`);
  }
  return id;
}

/** The page scrolls sideways: its content is wider than the window. */
async function sideways(page) {
  return page.evaluate(() => document.documentElement.scrollWidth > document.documentElement.clientWidth + 1);
}

/** Whether an element is wholly inside the window. */
async function onScreen(locator) {
  const box = await locator.boundingBox();
  const size = locator.page().viewportSize();
  return !!box && box.y >= 0 && box.y + box.height <= size.height + 0.5 && box.x >= 0 && box.x + box.width <= size.width + 0.5;
}

/** Item 10: at 390 px the reply box and End stay visible after many messages; nothing scrolls sideways. */
export async function phoneChat(ctx) {
  const { page, people, check } = ctx;
  const id = await chatAs(ctx, people.casey, 10, false);
  await page.setViewportSize(PHONE);
  try {
    await signedIn(ctx, people.casey, "My assignments");
    check(!(await sideways(page)), "the counselor's home does not scroll sideways at 390 px");
    await page.goto(`${ctx.base}/practice/chat/${id}`);
    await page.getByRole("heading", { name: "Chat practice", exact: true }).waitFor();
    const turns = page.getByRole("list", { name: "Transcript" }).getByRole("listitem");
    await page.waitForFunction(() => document.querySelectorAll('[aria-label="Transcript"] li').length >= 21);
    await page.waitForTimeout(300);
    await shot(page, "chat-390");
    const reply = page.getByLabel("Your reply");
    const end = page.getByRole("button", { name: "End and get feedback", exact: true });
    const send = page.getByRole("button", { name: "Send", exact: true });
    check((await turns.count()) >= 21, "the chat has 21 messages");
    check(await onScreen(reply), "the reply box is on screen after 21 messages (newest at the bottom)");
    check(await onScreen(end), "the End button is on screen after 21 messages");
    // Scrolled back to the start of the conversation, both are still there.
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.waitForTimeout(200);
    await shot(page, "chat-390-top");
    check(await onScreen(reply), "the reply box stays on screen at the top of the conversation");
    check(await onScreen(end), "the End button stays on screen at the top of the conversation");
    check(!(await sideways(page)), "the chat does not scroll sideways at 390 px");
    // A new message still lands right above the reply box.
    await reply.fill("Thank you for telling me. Is anyone with you tonight?");
    await send.click();
    await page.waitForFunction(() => document.querySelectorAll('[aria-label="Transcript"] li').length >= 23);
    await page.waitForTimeout(300);
    const last = turns.last();
    const lastBox = await last.boundingBox();
    const replyBox = await page.getByTestId("chat-composer").boundingBox();
    check(!!lastBox && !!replyBox && lastBox.y + lastBox.height <= replyBox.y + 1 && lastBox.y >= 0, "the newest message shows above the reply box");
    await ctx.audit(page, `${PREFIX}uiweb-chat-390`);
    await page.goto(`${ctx.base}/my-progress`);
    await page.getByRole("heading", { name: "My progress", exact: true }).waitFor();
    check(!(await sideways(page)), "my progress does not scroll sideways at 390 px");
    await ctx.signOut(page);
  } finally {
    await page.setViewportSize(DESKTOP);
  }
}

/** Each legend of `page` lies under its chart's drawing, overlapping nothing of it. */
async function legendsUnderCharts(page) {
  return page.evaluate(() => {
    const out = [];
    for (const chart of document.querySelectorAll('[role="img"]')) {
      const svg = chart.querySelector("svg.recharts-surface");
      if (!svg) continue;
      const s = svg.getBoundingClientRect();
      // Recharts' own legend (inside the chart box) or ours (next to it, in the page's flow).
      const legends = [...chart.querySelectorAll(".recharts-legend-wrapper"), ...(chart.parentElement?.querySelectorAll('[data-testid="chart-legend"]') ?? [])];
      for (const l of legends) {
        const b = l.getBoundingClientRect();
        const overlaps = b.top < s.bottom - 1 && b.bottom > s.top + 1 && b.left < s.right && b.right > s.left;
        out.push({ chart: chart.getAttribute("aria-label"), legendTop: Math.round(b.top), legendHeight: Math.round(b.height), chartTop: Math.round(s.top), chartBottom: Math.round(s.bottom), overlaps });
      }
    }
    return out;
  });
}

/** Items 8 and 10: progress legends wrap under the charts at 390 px; every chart has a table. */
export async function phoneProgress(ctx) {
  const { page, people, check } = ctx;
  // Both counselors have a graded chat, so the score chart draws a line each, with a legend.
  const graded = await chatAs(ctx, people.casey, 1, true);
  await chatAs(ctx, people.robin, 1, true);
  await page.setViewportSize(PHONE);
  try {
    await signedIn(ctx, people.supervisor, "Scenarios");
    await page.goto(`${ctx.base}/progress`);
    await page.getByRole("heading", { name: "Progress", exact: true }).waitFor();
    await page.getByTestId("score-chart").locator("svg.recharts-surface").first().waitFor();
    await page.waitForTimeout(500);
    await page.screenshot({ path: join(OUT, `${PREFIX}progress-390.png`), fullPage: true });
    const legends = await legendsUnderCharts(page);
    check(legends.length >= 1, "the score chart has a legend naming the counselors");
    check(legends.every((l) => !l.overlaps && l.legendTop >= l.chartBottom - 1), `legends sit under their charts: ${JSON.stringify(legends)}`);
    check(!(await sideways(page)), "the progress page does not scroll sideways at 390 px");
    // Every chart has its numbers as a table.
    const charts = await page.locator('[role="img"]').count();
    const tables = page.getByTestId("chart-table");
    check((await tables.count()) === charts, `a "Show as table" for each of the ${charts} charts, got ${await tables.count()}`);
    await tables.first().getByText("Show as table", { exact: true }).click();
    const table = tables.first().getByRole("table");
    await table.waitFor();
    check((await table.getByRole("row").count()) >= 3, "the score table has a row per session");
    check((await table.innerText()).includes(people.robin.name), "the score table names the counselor");
    await page.screenshot({ path: join(OUT, `${PREFIX}progress-390-table.png`), fullPage: true });
    await ctx.audit(page, `${PREFIX}uiweb-progress-390`);
    await ctx.signOut(page);

    await signedIn(ctx, people.casey, "My assignments");
    await page.goto(`${ctx.base}/my-progress`);
    await page.getByRole("heading", { name: "My progress", exact: true }).waitFor();
    await page.locator("svg.recharts-surface").first().waitFor();
    await page.waitForTimeout(500);
    await page.screenshot({ path: join(OUT, `${PREFIX}my-progress-390.png`), fullPage: true });
    const mine = await legendsUnderCharts(page);
    check(mine.length >= 1, "the criteria chart has a legend");
    check(mine.every((l) => !l.overlaps && l.legendTop >= l.chartBottom - 1), `legends sit under their charts: ${JSON.stringify(mine)}`);
    check((await page.getByTestId("chart-table").count()) === (await page.locator('[role="img"]').count()), "each chart on my progress has a table");
    check(!(await sideways(page)), "my progress does not scroll sideways at 390 px");
    await ctx.audit(page, `${PREFIX}uiweb-my-progress-390`);
    // The rest of a counselor's pages at 390 px: feedback and the voice page.
    await page.goto(`${ctx.base}/feedback/${graded}`);
    await page.getByLabel(/Overall score \d+ of 100/).waitFor({ timeout: 60_000 });
    await page.screenshot({ path: join(OUT, `${PREFIX}feedback-390.png`), fullPage: true });
    check(!(await sideways(page)), "the feedback page does not scroll sideways at 390 px");
    await page.goto(`${ctx.base}/practice/voice`);
    await page.getByRole("heading", { name: "Voice practice", exact: true }).waitFor();
    check(!(await sideways(page)), "the voice page does not scroll sideways at 390 px");
    await ctx.signOut(page);
  } finally {
    await page.setViewportSize(DESKTOP);
  }
}

/** Item 8: the counselor picker exposes the highlighted option through aria-activedescendant. */
export async function comboboxActiveDescendant(ctx) {
  const { page, people, check } = ctx;
  await signedIn(ctx, people.supervisor, "Scenarios");
  await page.goto(`${ctx.base}/assignments`);
  await page.getByRole("heading", { name: "Assignments", exact: true }).waitFor();
  const box = page.getByRole("combobox", { name: "Counselors", exact: true });
  await box.fill("Counselor");
  const list = page.getByRole("listbox");
  await list.getByRole("option").nth(1).waitFor();
  // The list opens with its first option highlighted (Enter picks it).
  const first = await box.getAttribute("aria-activedescendant");
  check(!!first, "the highlighted option is named by aria-activedescendant");
  const option = page.locator(`[id="${first}"]`);
  check((await option.getAttribute("role")) === "option" && (await option.getAttribute("aria-selected")) === "true", "aria-activedescendant points at the selected option");
  await box.press("ArrowDown");
  const second = await box.getAttribute("aria-activedescendant");
  check(!!second && second !== first, "moving the highlight moves aria-activedescendant");
  check((await option.getAttribute("aria-selected")) === "false", "the option left behind is no longer selected");
  const name = (await page.locator(`[id="${second}"]`).innerText()).split("\n")[0].trim();
  await ctx.audit(page, `${PREFIX}uiweb-combobox`);
  await box.press("Enter");
  await page.getByRole("button", { name: new RegExp(`^Remove ${name.split(" ")[0]}`) }).waitFor();
  check((await box.getAttribute("aria-expanded")) !== "true" || (await box.getAttribute("aria-activedescendant")) !== second, "the picked option leaves the list");
  await ctx.signOut(page);
}

/** Item 5: the microphone test shows Chromium's fake microphone's level, and warns on silence. */
export async function micTest(ctx) {
  const { page, people, check } = ctx;
  await signedIn(ctx, people.casey, "My assignments");
  await page.goto(`${ctx.base}/practice/voice`);
  await page.getByRole("heading", { name: "Voice practice", exact: true }).waitFor();
  await page.getByRole("button", { name: "Test microphone", exact: true }).click();
  const meter = page.getByRole("meter", { name: "Microphone level" });
  await meter.waitFor();
  // Chromium's fake microphone beeps: the meter moves (every change is caught, not sampled).
  await page.evaluate(() => {
    const el = document.querySelector('[data-testid="mic-level"]');
    window.__micMax = Number(el.getAttribute("aria-valuenow"));
    new MutationObserver(() => (window.__micMax = Math.max(window.__micMax, Number(el.getAttribute("aria-valuenow"))))).observe(el, { attributes: true });
  });
  await page.waitForFunction(() => window.__micMax > 0, null, { timeout: 10_000 });
  await shot(page, "mic-test-level");
  await page.waitForTimeout(3500);
  check(!(await page.getByText("We can't hear you", { exact: false }).isVisible()), "a working microphone gets no warning");
  await ctx.audit(page, `${PREFIX}uiweb-voice-mic-test`);
  await page.getByRole("button", { name: "Stop test", exact: true }).click();
  // A microphone that sends silence: getUserMedia answers a stream of nothing.
  await page.evaluate(() => {
    navigator.mediaDevices.getUserMedia = async () => new AudioContext().createMediaStreamDestination().stream;
  });
  await page.getByRole("button", { name: "Test microphone", exact: true }).click();
  await page.getByText("We can't hear you: check the microphone", { exact: false }).waitFor({ timeout: 8000 });
  check((await meter.getAttribute("aria-valuenow")) === "0", "the silent microphone reads 0");
  check((await meter.getAttribute("aria-valuetext"))?.startsWith("No sound"), "the meter says there is no sound");
  await shot(page, "mic-test-silent");
  await ctx.audit(page, `${PREFIX}uiweb-voice-mic-silent`);
  await page.reload();
  await ctx.signOut(page);
}

/** Item 5 (guardrails): an upload goes through the typed client (`fileForm`), multipart, CSRF and all. */
export async function uploadThroughTypedClient(ctx) {
  const { page, people } = ctx;
  await signedIn(ctx, people.supervisor, "Scenarios");
  await page.goto(`${ctx.base}/admin`);
  await page.getByRole("heading", { name: "Policy documents", exact: true }).waitFor();
  await page.getByLabel("Document", { exact: true }).setInputFiles({ name: "uiweb-policy.txt", mimeType: "text/plain", buffer: Buffer.from("Always ask directly about suicide. Never promise secrecy about a risk to life.\n") });
  await page.getByRole("button", { name: "Upload", exact: true }).click();
  await page.getByRole("button", { name: "Delete uiweb-policy.txt", exact: true }).waitFor({ timeout: 30_000 });
  await ctx.signOut(page);
}

// Alone: the app, three people with chosen passwords, and the steps above.
if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const require = createRequire(import.meta.url);
  const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
  const ADMIN = E2E_ADMIN;
  const people = E2E_PEOPLE;
  const check = (cond, what) => {
    if (!cond) throw new Error(`expected: ${what}`);
  };
  const { base } = await startApp({ adminEmail: ADMIN.email, adminPassword: ADMIN.password, extraEnv: env });
  const api = await apiSession(base, ADMIN.email, ADMIN.password);
  const ids = {};
  for (const [key, p] of Object.entries(people)) {
    const created = await api("POST", "/api/users", { email: p.email, displayName: p.name, role: p.role });
    ids[key] = created.id;
    const as = await apiSession(base, p.email, created.temporaryPassword);
    await as("POST", "/api/auth/password", { currentPassword: created.temporaryPassword, newPassword: p.password });
  }
  const browser = await launch(["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]);
  const page = browser.pages()[0] ?? (await browser.newPage());
  page.setDefaultTimeout(15_000);
  const audit = async (p, name) => {
    await p.screenshot({ path: join(OUT, `${name}.png`), fullPage: true });
    const result = await p.evaluate(`${AXE}\n;axe.run(document, { resultTypes: ["violations"] })`);
    if (result.violations.length) throw new Error(`axe on ${name}: ${result.violations.map((v) => `${v.id} (${v.impact}) at ${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(", ")}`).join("; ")}`);
  };
  const signIn = async (p, b, email, password) => {
    await p.goto(`${b}/sign-in`);
    await p.getByLabel("E-mail").fill(email);
    await p.getByLabel("Password", { exact: true }).fill(password);
    await p.getByRole("button", { name: "Sign in", exact: true }).click();
  };
  const signOut = async (p) => {
    await p.getByRole("button", { name: "Sign out", exact: true }).click();
    await p.getByRole("heading", { name: "Sign in", exact: true }).waitFor();
  };
  const ctx = { page, base, api, ids, people, audit, check, signIn, signOut };
  let failed = 0;
  for (const [name, fn] of [["phone chat", phoneChat], ["phone progress", phoneProgress], ["combobox", comboboxActiveDescendant], ["mic test", micTest], ["upload", uploadThroughTypedClient]]) {
    const started = Date.now();
    try {
      await fn(ctx);
      console.log(`ok   ${name} (${Date.now() - started} ms)`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${name}: ${e.stack ?? e}`);
      await page.screenshot({ path: join(OUT, `${PREFIX}FAILED-${name.replace(/\W/g, "-")}.png`), fullPage: true }).catch(() => {});
      await page.setViewportSize(DESKTOP);
      await page.goto(`${base}/sign-in`).catch(() => {});
      await page.context().clearCookies();
    }
  }
  await browser.close();
  console.log(failed ? `${failed} failed` : "all passed");
  process.exit(failed ? 1 : 0);
}
