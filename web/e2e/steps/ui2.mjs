// The web UI issue's flows (issue 20, items 1, 2, 3, 6, 9), each a scenario that failed before:
// a double-clicked Start is one attempt; a flag a supervisor raises in a calibration review is in
// the queue (most severe first, naming the counselor) and goes out as a `flag.raised` webhook; the
// scenario's name on the sessions list and the review page; an overdue assignment marked; the
// sessions list exports CSV. Each takes run.mjs's `ctx` (page, base, api as the account admin,
// ids, people, and the audit/check/signIn/signOut helpers) and leaves the browser signed out.
import { readFileSync } from "node:fs";

const CHAT_TITLE = "E2E: double-click caller";
const OVERDUE_TITLE = "E2E: overdue practice";

async function signedIn(ctx, person, heading) {
  await ctx.signIn(ctx.page, ctx.base, person.email, person.password);
  await ctx.page.getByRole("heading", { name: heading, exact: true }).waitFor();
}

/** Item 2: a double click on Start chat opens one session, one attempt. */
export async function doubleClickStartIsOneAttempt(ctx) {
  const { page, api, ids, people, check } = ctx;
  const { categories } = await api("GET", "/api/categories");
  const scenario = await api("POST", "/api/scenarios", { title: CHAT_TITLE, prompt: "You are Lee, 30, worried about a friend.", mode: "chat", category: categories[0] });
  const assignment = await api("POST", "/api/assignments", { scenarioId: scenario.id, counselorId: ids.casey });
  await signedIn(ctx, people.casey, "My assignments");
  await page.getByRole("button", { name: `Start chat: ${CHAT_TITLE}`, exact: true }).dblclick();
  await page.getByRole("heading", { name: "Chat practice", exact: true }).waitFor();
  await page.getByText(`Scenario: ${CHAT_TITLE}`).waitFor();
  // Both clicks have reached the server by now (the second is refused by the disabled button or
  // answered with the attempt in progress): one session.
  await new Promise((r) => setTimeout(r, 1000));
  const sessions = await api("GET", `/api/sessions?type=all&assignmentId=${assignment.id}`);
  check(sessions.length === 1, `one session for a double click, got ${sessions.length}`);
  await page.goto(`${ctx.base}/practice`);
  await page.getByRole("button", { name: `Resume chat: ${CHAT_TITLE}`, exact: true }).click();
  await page.getByText(`Scenario: ${CHAT_TITLE}`).waitFor();
  check(page.url().endsWith(`/practice/chat/${sessions[0].id}`), "Start resumes the attempt in progress");
  const again = await api("GET", `/api/sessions?type=all&assignmentId=${assignment.id}`);
  check(again.length === 1, "still one attempt after resuming");
  await ctx.audit(page, "ui2-01-chat-resumed");
  await ctx.signOut(page);
}

/** Item 3: a supervisor-raised flag reaches the queue (sorted by severity), named, and the webhook. */
export async function supervisorFlagInQueueAndWebhook(ctx) {
  const { page, api, ids, people, check } = ctx;
  const { webhook } = await api("POST", "/api/webhooks", { url: "https://partner.example.org/ui2-hook", events: ["flag.raised"] });
  const [session] = await api("GET", `/api/sessions?type=all&userId=${ids.casey}&status=completed&sort=newest`);
  check(session, "Casey has a graded chat session (step 2)");
  await signedIn(ctx, people.supervisor, "Scenarios");
  // Raised in a calibration review (what the review page's override form sends), as the admin.
  await api("POST", `/api/sessions/${session.id}/review`, {
    overrides: [{ kind: "flag", target: "dismissive_language", value: "raised", reason: "Turn 3 brushed the caller's fear aside." }],
    note: "E2E: raised by a supervisor",
  });
  await page.goto(`${ctx.base}/flags`);
  await page.getByRole("heading", { name: "Flags", exact: true }).waitFor();
  // The scripted grading already raised (or derived) the critical ones; the supervisor's is high.
  const first = page.getByRole("article").filter({ hasText: "a supervisor's review" }).first();
  await first.getByText("Dismissive language", { exact: true }).waitFor();
  check((await first.innerText()).includes(people.casey.name), "the flag card names the counselor");
  check((await first.innerText()).includes("a supervisor's review"), "the flag card says a supervisor raised it");
  // High: neither closing button works without a note.
  check(await first.getByRole("button", { name: "Dismiss", exact: true }).isDisabled(), "a high flag needs a note to close");
  const severities = await page.getByRole("article").evaluateAll((cards) => cards.map((c) => c.querySelector("span")?.textContent ?? ""));
  const rank = { Critical: 0, High: 1, Medium: 2, Low: 3 };
  check(severities.every((s, i) => i === 0 || (rank[severities[i - 1]] ?? 9) <= (rank[s] ?? 9)), `the queue sorts by severity: ${severities.join(", ")}`);
  const badge = page.getByTestId("open-flags");
  check(Number(await badge.innerText()) >= 1, "the navigation shows the open-flag count");
  await ctx.audit(page, "ui2-02-flag-queue");
  const deliveries = await api("GET", `/api/webhooks/${webhook.id}/deliveries`);
  // The hook was made just before the review: its one `flag.raised` is the supervisor's flag.
  check(deliveries.filter((d) => d.event === "flag.raised").length === 1, `one flag.raised delivery, got ${JSON.stringify(deliveries.map((d) => d.event))}`);
  await ctx.signOut(page);
}

/** Item 6: the scenario's name on the sessions list and the review page; CSV export downloads. */
export async function scenarioNamesAndCsv(ctx) {
  const { page, people, check } = ctx;
  await signedIn(ctx, people.supervisor, "Scenarios");
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Sessions", exact: true }).click();
  await page.getByRole("heading", { name: "Sessions", exact: true }).waitFor();
  await page.getByLabel("Search", { exact: true }).fill(ctx.scenarioTitle);
  const row = page.getByTestId("session-row").filter({ hasText: ctx.scenarioTitle }).first();
  await row.waitFor();
  await ctx.audit(page, "ui2-03-sessions-list");
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Export CSV", exact: true }).click()]);
  check(download.suggestedFilename() === "sessions.csv", `CSV named sessions.csv, got ${download.suggestedFilename()}`);
  const csv = readFileSync(await download.path(), "utf8");
  check(csv.startsWith("Started,Counselor,Scenario") && csv.includes(ctx.scenarioTitle), "the CSV has the rows shown");
  await page.getByRole("tab", { name: "Needs review", exact: true }).click();
  await page.getByTestId("session-row").first().waitFor();
  await ctx.audit(page, "ui2-04-needs-review");
  await page.getByTestId("session-row").first().getByRole("link").click();
  await page.getByRole("heading", { name: "Session review", exact: true }).waitFor();
  await page.getByText(ctx.scenarioTitle, { exact: false }).first().waitFor();
  await ctx.signOut(page);
}

/** Item 9: an assignment past its due date is marked overdue; past dates are not offered. */
export async function overdueAssignmentShown(ctx) {
  const { page, api, ids, people, check } = ctx;
  const { categories } = await api("GET", "/api/categories");
  const scenario = await api("POST", "/api/scenarios", { title: OVERDUE_TITLE, prompt: "You are Ash.", mode: "chat", category: categories[0] });
  await api("POST", "/api/assignments", { scenarioId: scenario.id, counselorId: ids.robin, dueAt: new Date(Date.now() + 1500).toISOString() });
  await new Promise((r) => setTimeout(r, 2000));
  await signedIn(ctx, people.supervisor, "Scenarios");
  await page.goto(`${ctx.base}/assignments`);
  await page.getByRole("heading", { name: "Assignments", exact: true }).waitFor();
  const row = page.getByTestId("assignment-row").filter({ hasText: OVERDUE_TITLE });
  await row.getByText("Overdue", { exact: true }).waitFor();
  check((await page.getByLabel("Due date (optional)").getAttribute("min")) !== null, "past days are not offered");
  await ctx.audit(page, "ui2-05-assignments-overdue");
  await ctx.signOut(page);
}
