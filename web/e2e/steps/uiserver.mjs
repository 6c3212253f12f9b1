// Issue 20's server-touching flows, each a scenario that failed before: a category is added and
// renamed with "&" and "+" and its capitals kept, and deleting one in use says what to do; a
// webhook to `https://localhost:3003` is refused with the reason on the form; "Send test event"
// shows the ping's delivery; a capped score says why beside it, naming who raised the flag; and
// (E2E_VOICE=1) a reload mid-call rejoins the same call, which goes on in the same session,
// while a closed tab ends the call after the rejoin grace, and it is graded.
// Each takes run.mjs's `ctx` (page, base, api as the account admin, ids, people, and the
// audit/check/signIn/signOut helpers) and leaves the browser signed out.

async function signedIn(ctx, email, password, heading) {
  await ctx.signIn(ctx.page, ctx.base, email, password);
  if (heading) await ctx.page.getByRole("heading", { name: heading, exact: true }).waitFor();
  else await ctx.page.getByRole("button", { name: "Sign out", exact: true }).waitFor();
}

async function accountTab(ctx, tab) {
  const { page } = ctx;
  await page.getByRole("link", { name: "Account", exact: true }).click();
  await page.getByRole("heading", { name: "Account", exact: true }).waitFor();
  await page.getByRole("tab", { name: tab, exact: true }).click();
}

/** Item 10: categories keep "&", "+" and capitals; rename and delete, with a confirmation and a notice. */
export async function categoriesRenameAndDelete(ctx, { ADMIN }) {
  const { page, api, check } = ctx;
  await signedIn(ctx, ADMIN.email, ADMIN.password, null);
  await accountTab(ctx, "Categories");
  await page.getByLabel("New category").fill("Youth and LGBTQ+");
  await page.getByRole("button", { name: "Add", exact: true }).click();
  const list = page.getByRole("list", { name: "Categories" });
  await list.getByText("Youth and LGBTQ+", { exact: true }).first().waitFor();
  await page.getByRole("button", { name: "Rename Youth and LGBTQ+", exact: true }).click();
  const name = page.getByLabel("New name for Youth and LGBTQ+");
  await name.fill("Youth & LGBTQ+");
  await page.getByRole("button", { name: "Save", exact: true }).click();
  await list.getByText("Youth & LGBTQ+", { exact: true }).first().waitFor();
  await page.getByText("Category renamed to “Youth & LGBTQ+”", { exact: false }).waitFor();
  const { categories } = await api("GET", "/api/categories");
  check(categories.includes("Youth & LGBTQ+") && !categories.includes("Youth and LGBTQ+"), `renamed as typed: ${categories.join(", ")}`);
  // A duplicate ignoring capitals is refused with words for people.
  await page.getByLabel("New category").fill("youth & lgbtq+");
  await page.getByRole("button", { name: "Add", exact: true }).click();
  await page.getByText("exists already", { exact: false }).waitFor();
  // The scenarios of step 1 use the first category: deleting it asks, then says what to do.
  const used = categories[0];
  const shown = /^[a-z0-9_]+$/.test(used) ? used.charAt(0).toUpperCase() + used.slice(1).replace(/_/g, " ") : used;
  await page.getByRole("button", { name: `Delete ${shown}`, exact: true }).click();
  const dialog = page.getByRole("dialog", { name: `Delete the category “${shown}”?` });
  await dialog.waitFor();
  await dialog.getByRole("button", { name: "Delete category", exact: true }).click();
  await page.getByText("move them to another category first", { exact: false }).waitFor();
  check((await api("GET", "/api/categories")).categories.includes(used), "a category in use is kept");
  await ctx.audit(page, "uiserver-01-categories");
  // An unused one goes, after the confirmation, with a notice.
  await page.getByRole("button", { name: "Delete Youth & LGBTQ+", exact: true }).click();
  await page.getByRole("dialog", { name: "Delete the category “Youth & LGBTQ+”?" }).getByRole("button", { name: "Delete category", exact: true }).click();
  await page.getByText("Category “Youth & LGBTQ+” deleted.", { exact: true }).waitFor();
  check(!(await api("GET", "/api/categories")).categories.includes("Youth & LGBTQ+"), "the unused category is deleted");
  await ctx.signOut(page);
}

/** Item 10: a webhook to a local name is refused on the form; "Send test event" shows the delivery. */
export async function webhookPrivateUrlAndTestEvent(ctx, { ADMIN }) {
  const { page, check } = ctx;
  await signedIn(ctx, ADMIN.email, ADMIN.password, null);
  await accountTab(ctx, "Webhooks");
  await page.getByLabel("URL (https)").fill("https://localhost:3003/hook");
  await page.getByRole("button", { name: "Create webhook", exact: true }).click();
  await page.getByText("must point at a public address", { exact: false }).waitFor();
  check(!(await page.getByRole("dialog", { name: "Webhook signing secret" }).isVisible()), "no webhook was made");
  await ctx.audit(page, "uiserver-02-webhook-refused");
  // A public name (unresolvable here, so its deliveries fail: the result is still shown).
  await page.getByLabel("URL (https)").fill("https://partner.example.org/uiserver-hook");
  await page.getByRole("button", { name: "Create webhook", exact: true }).click();
  const secret = page.getByRole("dialog", { name: "Webhook signing secret" });
  await secret.waitFor();
  await secret.getByRole("button", { name: "Done", exact: true }).click();
  await page.getByRole("button", { name: "Send test event to https://partner.example.org/uiserver-hook", exact: true }).click();
  await page.getByRole("cell", { name: "ping (test event)", exact: true }).waitFor();
  // The first attempt is recorded, and the page says what became of it.
  await page.getByRole("status").filter({ hasText: /Test event (delivered|not delivered)/ }).waitFor({ timeout: 20_000 });
  await ctx.audit(page, "uiserver-03-webhook-test-event");
  await ctx.signOut(page);
}

/** Item 3: a score a flag capped says why beside the score, naming who raised the flag. */
export async function scoreExplanation(ctx) {
  const { page, api, ids, people, check } = ctx;
  const sessions = await api("GET", `/api/sessions?type=all&userId=${ids.casey}&status=completed&sort=newest`);
  // Step ui2b raised a supervisor's flag on Casey's newest graded chat.
  const capped = sessions.find((s) => s.kind === "chat" && s.overallScore != null && s.overallScore <= 49);
  check(capped, `a capped chat session of Casey's: ${JSON.stringify(sessions.map((s) => [s.kind, s.overallScore]))}`);
  await signedIn(ctx, people.casey.email, people.casey.password, "My assignments");
  await page.goto(`${ctx.base}/feedback/${capped.id}`);
  await page.getByRole("heading", { name: "Feedback", exact: true }).waitFor();
  const score = page.getByLabel(/Overall score \d+ of 100/);
  await score.waitFor();
  const note = page.locator(`#${await score.getAttribute("aria-describedby")}`);
  const text = await note.innerText();
  check(/^Capped at \d+ because of (a safety flag|\d safety flags): /.test(text), `the score says why: "${text}"`);
  check(text.includes("raised by a supervisor"), `it names who raised the flag: "${text}"`);
  await ctx.audit(page, "uiserver-04-score-explained");
  await ctx.signOut(page);
}

/**
 * Item 1 (E2E_VOICE=1): a reload mid-call is not a hang-up. The counselor speaks, reloads; the
 * page rejoins the same call by itself, the counselor speaks again, hangs up: one session, with
 * counselor turns from both halves.
 */
export async function voiceReloadRejoins(ctx) {
  const { page, api, ids, people, check } = ctx;
  const started = Date.now();
  const lap = (what) => console.log(`     ${what} at ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const before = await api("GET", `/api/sessions?type=all&userId=${ids.casey}&limit=200`);
  await signedIn(ctx, people.casey.email, people.casey.password, "My assignments");
  await page.goto(`${ctx.base}/practice/voice`);
  await page.getByRole("heading", { name: "Voice practice", exact: true }).waitFor();
  await page.getByRole("button", { name: "Connect", exact: true }).click();
  const captions = page.getByRole("list", { name: "Live captions" });
  const mine = captions.getByRole("listitem").filter({ hasText: /^You/ });
  await mine.first().waitFor({ timeout: 30_000 });
  lap("the counselor's first words");
  const sessionId = await page.evaluate(() => sessionStorage.getItem("pt-voice-call"));
  check(sessionId, "the tab remembers its call");
  const firstHalf = (await api("GET", `/api/sessions/${sessionId}`)).transcript.length;
  // The reload asks first (beforeunload); the test accepts.
  page.once("dialog", (d) => void d.accept());
  await page.reload();
  lap("reloaded");
  await page.getByRole("heading", { name: "Voice practice", exact: true }).waitFor();
  // No click: the page rejoins the call this tab was in.
  await page.getByRole("button", { name: "Hang up", exact: true }).waitFor({ timeout: 20_000 });
  lap("rejoined");
  check((await page.evaluate(() => sessionStorage.getItem("pt-voice-call"))) === sessionId, "the same call");
  // The fake microphone plays its file again: the counselor speaks in the second half.
  await mine.first().waitFor({ timeout: 30_000 });
  lap("the counselor's words after the reload");
  await ctx.audit(page, "uiserver-05-voice-rejoined");
  await page.getByRole("button", { name: "Hang up", exact: true }).click();
  await page.getByRole("heading", { name: "Feedback", exact: true }).waitFor();
  check(page.url().endsWith(`/feedback/${sessionId}`), "feedback for the same session");
  const detail = await api("GET", `/api/sessions/${sessionId}`);
  const counselorTurns = detail.transcript.filter((t) => t.speaker === "counselor");
  check(counselorTurns.length >= 2 && detail.transcript.length > firstHalf, `turns from both halves: ${JSON.stringify(detail.transcript.map((t) => [t.speaker, t.text]))}`);
  const after = await api("GET", `/api/sessions?type=all&userId=${ids.casey}&limit=200`);
  check(after.length === before.length + 1, `one session for the call and its rejoin (${before.length} -> ${after.length})`);
  await page.getByLabel(/Overall score \d+ of 100/).waitFor({ timeout: 30_000 });
  lap("graded");
  await ctx.signOut(page);
}

/**
 * Item 1 (E2E_VOICE=1): a closed tab is not a hang-up either, but nobody comes back: the agent
 * waits its rejoin grace (60 s), ends the call, and the call is graded.
 */
export async function voiceClosedTabEndsAfterGrace(ctx) {
  const { page, api, people, check } = ctx;
  const tab = await page.context().newPage();
  tab.setDefaultTimeout(15_000);
  await ctx.signIn(tab, ctx.base, people.casey.email, people.casey.password);
  await tab.getByRole("heading", { name: "My assignments", exact: true }).waitFor();
  await tab.goto(`${ctx.base}/practice/voice`);
  await tab.getByRole("button", { name: "Connect", exact: true }).click();
  await tab.getByRole("list", { name: "Live captions" }).getByRole("listitem").filter({ hasText: /^You/ }).first().waitFor({ timeout: 30_000 });
  const sessionId = await tab.evaluate(() => sessionStorage.getItem("pt-voice-call"));
  check(sessionId, "the tab remembers its call");
  await tab.close();
  const closed = Date.now();
  let detail = await api("GET", `/api/sessions/${sessionId}`);
  while (detail.status === "active" && Date.now() - closed < 120_000) {
    await new Promise((r) => setTimeout(r, 1000));
    detail = await api("GET", `/api/sessions/${sessionId}`);
  }
  const endedAfter = (Date.now() - closed) / 1000;
  console.log(`     the call ended ${endedAfter.toFixed(1)} s after the tab closed (${detail.status})`);
  check(detail.status !== "active" && endedAfter >= 55 && endedAfter <= 100, `the call ends after the 60 s grace (LiveKit notices the loss first), not at once nor never (${endedAfter.toFixed(1)} s, ${detail.status})`);
  while (!detail.evaluation && Date.now() - closed < 150_000) {
    await new Promise((r) => setTimeout(r, 1000));
    detail = await api("GET", `/api/sessions/${sessionId}`);
  }
  check(detail.evaluation?.overallScore != null || detail.evaluation?.scoreBasis, `the call is graded: ${JSON.stringify(detail.evaluation)?.slice(0, 200)}`);
  console.log(`     graded ${((Date.now() - closed) / 1000).toFixed(1)} s after the tab closed`);
  // The main page shares the tab's cookies: start the next step signed out.
  await page.goto(`${ctx.base}/`);
  await ctx.signOut(page);
}
