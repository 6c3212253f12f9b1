// Issue 18's whole loop in Chromium (a scenario with a clinical truth):
//   a. a supervisor authors a profiled scenario in the form beside the persona (facts with their
//      disclosure rules, the expected level, required actions), reads the caller-instructions
//      preview (the facts are there, the level and the rule names are not), saves it, starts a
//      thorough and a poor test run and reads their results side by side (facts elicited, whether
//      the caller stayed true, determination, grade);
//   b. a counselor practises it by chat against the simulator's scripted caller (which follows
//      the disclosure rules), asks about suicide but never about means, files a call record that
//      under-estimates the risk, and sees the determination, the fact they missed, and the
//      suggested alternative beside the transcript at its turn;
//   c. the admin (a supervisor too) sees determination accuracy (the under-estimate) on the progress page,
//      the caller's fidelity counted on the scenario's page, and on the session's review what
//      the truth grader answered (kept for audit).
// Step a also asks for a test run longer than allowed and reads the 422 naming the field;
// d. the admin names the center's risk levels (422 for an empty label, 409 for one in use) and
//    the review shows the center's label for the level the counselor judged.
// The helpers (`check`, `audit`, `signIn`, `signOut`, `people`, `api`, `ids`) come in `ctx`
// from run.mjs.

export const TITLE = "E2E: profiled caller with pills";
const MEANS = "I have a bottle of my mother's sleeping pills in the drawer.";
const IDEATION = "I have been thinking about killing myself most nights.";

/** a. Author the profile in the form, preview it, save, run a thorough and a poor test run. */
export async function authorAndTestRun(ctx) {
  const { page, base, people, check, audit, signIn, signOut } = ctx;
  await signIn(page, base, people.supervisor.email, people.supervisor.password);
  await page.getByRole("heading", { name: "Scenarios", exact: true }).waitFor();
  await page.getByRole("button", { name: "New scenario", exact: true }).click();
  await page.getByLabel("Title", { exact: true }).fill(TITLE);
  await page.getByLabel("Caller persona (the prompt the AI caller plays)").fill("You are Dana, 29. You are calling a crisis line late at night. You speak quietly and in short sentences.");
  await page.getByLabel("Mode", { exact: true }).selectOption("chat");
  await page.getByLabel("Description", { exact: true }).fill("A caller who hides her means unless asked directly.");
  await page.getByLabel("This scenario has a risk profile").check();
  await page.getByLabel("Expected risk level").selectOption({ label: "High" });
  for (const action of ["Safety plan", "Means restriction"]) await page.getByRole("checkbox", { name: action, exact: true }).check();
  // One fact per group used: what the caller volunteers, what it says when asked, and what it
  // keeps back until asked directly.
  const addFact = async (group, { kind, key, rule, text }) => {
    const section = page.getByRole("region", { name: group, exact: true });
    await section.getByRole("button", { name: `Add ${group.toLowerCase()} fact`, exact: true }).click();
    if (kind) await section.getByLabel("Kind", { exact: true }).last().selectOption({ label: kind });
    await section.getByLabel("Key", { exact: true }).last().fill(key);
    await section.getByLabel("When the caller reveals it").last().selectOption({ label: rule });
    await section.getByLabel("What the caller knows (in their words)").last().fill(text);
  };
  await addFact("Context", { key: "job_loss", rule: "Volunteered: brings it up early", text: "I lost my job last month and the rent is due." });
  await addFact("Suicidal intent", { kind: "Ideation", key: "ideation", rule: "Told when asked about it", text: IDEATION });
  await addFact("Suicidal capability", { kind: "Means and access", key: "pills", rule: "Never volunteered; truthful if asked directly", text: MEANS });
  // The preview is compiled by the API from what is typed (debounced): the facts and how to
  // share them are there; the expected level, the rule names and the keys are not.
  const preview = page.getByLabel("Caller instructions preview");
  await preview.filter({ hasText: "sleeping pills" }).waitFor();
  const compiled = await preview.textContent();
  check(compiled.includes("killing myself most nights") && compiled.includes("rent is due"), "the preview has every fact");
  for (const label of [/\bhigh\b/i, /never_volunteered|when_asked/, /\bjob_loss\b/, /risk level/i]) {
    check(!label.test(compiled), `the preview carries no label the caller must not see (${label})`);
  }
  await audit(page, "truth-01-profile-form");
  await page.getByRole("button", { name: "Save", exact: true }).click();
  await page.getByRole("heading", { name: "Scenarios", exact: true }).waitFor();
  await page.getByRole("link", { name: `Edit ${TITLE}`, exact: true }).click();
  await page.getByRole("heading", { name: "Edit scenario", exact: true }).waitFor();
  ctx.truthScenarioId = page.url().split("/").at(-2);
  // The saved profile comes back into the form.
  check((await page.getByLabel("Expected risk level").inputValue()) === "high", "the saved profile is loaded into the form");

  const panel = page.getByRole("region", { name: "Test runs", exact: true });
  // The run's length out of bounds: the server's 422 names the field and its bounds.
  const turnsField = panel.getByLabel("Most counselor turns");
  await turnsField.fill("31");
  await panel.getByRole("button", { name: "Run a thorough counselor", exact: true }).click();
  await panel.getByText(/Most counselor turns: must be 1 to 30/).waitFor();
  check((await panel.getByTestId("test-run").count()) === 0, "no run was queued");
  await turnsField.fill("");
  await panel.getByRole("button", { name: "Run a thorough counselor", exact: true }).click();
  const runs = panel.getByTestId("test-run");
  await runs.first().waitFor();
  await runs.first().getByText("Done", { exact: true }).waitFor({ timeout: 120_000 });
  await panel.getByRole("button", { name: "Run a poor counselor", exact: true }).click();
  await runs.nth(1).waitFor();
  await runs.first().getByText("Done", { exact: true }).waitFor({ timeout: 120_000 });
  const comparison = panel.getByTestId("test-run-comparison");
  await comparison.waitFor();
  const rowText = async (name) => (await comparison.getByRole("row").filter({ has: page.getByRole("rowheader", { name, exact: true }) }).textContent()) ?? "";
  const grade = await rowText("Grade");
  check(/\d+.*\d+/.test(grade), `both runs are graded (${grade})`);
  const elicited = await rowText("Hidden facts elicited");
  check(/\d+ of 2.*\d+ of 2/.test(elicited), `hidden facts elicited per run (${elicited})`);
  const fidelity = await rowText("Caller followed the profile");
  check(/stayed true|deviation/.test(fidelity), `the caller's fidelity per run (${fidelity})`);
  const determination = await rowText("Risk determination");
  check(/vs High/.test(determination), `the determination per run (${determination})`);
  // The thorough counselor asks directly about means; the scripted caller then tells.
  const pills = await comparison.getByRole("row").filter({ hasText: "sleeping pills" }).textContent();
  check(/Elicited/.test(pills), `the thorough run elicited the hidden means (${pills})`);
  await audit(page, "truth-02-test-runs");
  await signOut(page);
  // Setup, not under test here (assigning is step 1's): the scenario goes to Casey.
  await ctx.api("POST", "/api/assignments", { scenarioId: ctx.truthScenarioId, counselorId: ctx.ids.casey });
}

/** b. Practise by chat, file the call record, read what was missed and what to say instead. */
export async function practiseAndFeedback(ctx) {
  const { page, base, people, check, audit, signIn, signOut } = ctx;
  await signIn(page, base, people.casey.email, people.casey.password);
  await page.getByRole("heading", { name: "My assignments", exact: true }).waitFor();
  await page.getByRole("button", { name: `Start chat: ${TITLE}` }).click();
  await page.getByRole("heading", { name: "Chat practice", exact: true }).waitFor();
  const turns = page.getByRole("list", { name: "Transcript" }).getByRole("listitem");
  await turns.first().waitFor();
  const said = ["Thank you for calling. What's been going on tonight?", "That sounds so hard. Are you thinking about suicide?"];
  for (const [i, text] of said.entries()) {
    await page.getByLabel("Your reply").fill(text);
    await page.getByRole("button", { name: "Send", exact: true }).click();
    await turns.nth(2 * (i + 1)).waitFor();
  }
  // The caller follows its rules: asked about suicide, it says so.
  await turns.nth(4).filter({ hasText: "killing myself" }).waitFor();
  check((await page.getByRole("list", { name: "Transcript" }).textContent()).includes("sleeping pills") === false, "the caller never volunteers the hidden means");
  await page.getByRole("button", { name: "End and get feedback", exact: true }).click();
  await page.getByRole("heading", { name: "Feedback", exact: true }).waitFor();
  const record = page.getByRole("form", { name: "Call record" });
  await record.waitFor({ timeout: 30_000 });
  await audit(page, "truth-03-call-record");
  await record.getByRole("radio", { name: /^Moderate/ }).check();
  await record.getByRole("checkbox", { name: "Suicidal thoughts", exact: true }).check();
  await record.getByRole("checkbox", { name: "Safety plan", exact: true }).check();
  await record.getByRole("button", { name: "File call record", exact: true }).click();
  await page.getByLabel(/Overall score \d+ of 100/).waitFor({ timeout: 60_000 });
  const truth = page.getByRole("region", { name: "Against the scenario's truth" });
  await truth.getByText("Lower than the scenario's risk").waitFor();
  const facts = truth.getByRole("list", { name: "Facts of the scenario" });
  const missed = facts.locator('li[data-outcome="missed"]');
  check((await missed.filter({ hasText: "sleeping pills" }).count()) === 1, "the hidden means are shown as not uncovered");
  check((await facts.locator('li[data-fact="ideation"]').getAttribute("data-outcome")) === "elicited", "the ideation the counselor asked about is elicited");
  // The suggestion for the missed fact sits beside the transcript, in the turn where it mattered.
  const transcript = page.getByRole("list", { name: "Transcript" });
  const atTurn = transcript.getByRole("listitem").filter({ has: page.locator('[data-suggestion="fact:pills"]') });
  await atTurn.waitFor();
  check((await atTurn.count()) === 1, "one turn holds the suggestion for the missed means");
  const turnId = await atTurn.getAttribute("id");
  check(/^turn-\d+$/.test(turnId ?? ""), `the suggestion is inside a numbered turn (${turnId})`);
  await atTurn.getByText("What you could say here · Not uncovered: " + MEANS).waitFor();
  ctx.truthFeedbackUrl = page.url();
  await audit(page, "truth-04-feedback-missed-and-suggested");
  await signOut(page);
}

/** c. The supervisor's progress page counts the under-estimate. */
export async function determinationOnProgress(ctx) {
  const { page, base, people, check, audit, signIn, admin } = ctx;
  // The account admin (a supervisor too) reads progress and reviews, then names the levels
  // (step d, signed in still: the run stays under the sign-in rate limit per address).
  await signIn(page, base, admin.email, admin.password);
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Progress", exact: true }).click();
  await page.getByRole("heading", { name: "Progress", exact: true }).waitFor();
  const accuracy = page.getByTestId("determination-accuracy");
  await accuracy.waitFor();
  const summary = await accuracy.locator("p").first().textContent();
  check(/judged correctly in 0% \(0\/1\)/.test(summary) && /under-estimated 1\b/.test(summary), `one call, under-estimated (${summary})`);
  const casey = accuracy.getByRole("row").filter({ has: page.getByRole("rowheader", { name: people.casey.name, exact: true }) });
  check((await casey.count()) === 1, "Casey has a row of her own");
  await audit(page, "truth-05-progress-determination");
  // The scenario's page counts the caller's departures from the profile across its sessions
  // and test runs (the scripted caller follows its rules: none).
  await page.goto(`${base}/scenarios/${ctx.truthScenarioId}/edit`);
  const fidelity = page.getByTestId("fidelity-summary");
  await fidelity.waitFor();
  const said = await fidelity.textContent();
  check(/departed from the profile 0 times, in 0 of 3 graded sessions/.test(said), `fidelity counted over the call and both test runs (${said})`);
  await audit(page, "truth-06-scenario-fidelity");
  // The review shows the same comparison, and what the truth grader answered, kept for audit
  // with its model and prompt version (raw JSON: screenshotted, not checked for people's words).
  await page.goto(`${base}/sessions/${ctx.truthFeedbackUrl.split("/").pop()}`);
  await page.getByRole("heading", { name: "Session review", exact: true }).waitFor();
  await page.getByRole("region", { name: "Against the scenario's truth" }).getByText("Lower than the scenario's risk").waitFor();
  await page.getByText("What the graders answered, as received").click();
  const truthAnswer = page.getByLabel("Truth grader (facts and suggestions), as received");
  await truthAnswer.filter({ hasText: "disclosed_turns" }).waitFor();
  await page.getByText(/prompt version 1/).first().waitFor();
  await page.screenshot({ path: `${process.env.E2E_OUT ?? "target/e2e"}/truth-07-review-grader-output.png`, fullPage: true });
}

/**
 * d. (Signed in as the admin from step c.) The admin names the center's own risk levels (the
 * settings tab): an empty label is named by the server (422), removing the only level a scenario
 * expects is refused (409), and the review then reads the center's label for the judged level.
 */
export async function centerRiskLevels(ctx) {
  const { page, base, check, audit, signOut } = ctx;
  await page.getByRole("link", { name: "Account", exact: true }).click();
  await page.getByRole("tab", { name: "Risk levels", exact: true }).click();
  const form = page.getByRole("form", { name: "Risk levels" });
  await form.getByLabel("Level 2 label").waitFor();
  check((await form.getByLabel("Level 2 label").inputValue()) === "Moderate", "the defaults are the four standard levels");
  await form.getByLabel("Level 2 label").fill(" ");
  await form.getByRole("button", { name: "Save risk levels", exact: true }).click();
  await page.getByText(/a label is required/).waitFor();
  await form.getByLabel("Level 2 label").fill("Amber: ideation without a plan");
  // The only level mapped to high: the profiled scenario expects high.
  await form.getByRole("button", { name: "Remove level 3", exact: true }).click();
  await form.getByRole("button", { name: "Save risk levels", exact: true }).click();
  await page.getByText(/is in use \(1 scenario/).waitFor();
  await page.reload();
  await page.getByRole("tab", { name: "Risk levels", exact: true }).click();
  await form.getByLabel("Level 2 label").fill("Amber: ideation without a plan");
  await form.getByRole("button", { name: "Save risk levels", exact: true }).click();
  await page.getByText("Risk levels saved.").waitFor();
  await audit(page, "truth-08-risk-levels");
  // The review (as the feedback) names the level the counselor judged by the center's label.
  await page.goto(`${base}/sessions/${ctx.truthFeedbackUrl.split("/").pop()}`);
  const truth = page.getByRole("region", { name: "Against the scenario's truth" });
  await truth.getByText("Amber: ideation without a plan", { exact: true }).waitFor();
  await signOut(page);
}
