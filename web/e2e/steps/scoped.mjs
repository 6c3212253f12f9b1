// Retention and erasure in the browser (issue 22, section 3): an account admin sets how long
// transcripts are kept on the Account page's "Data retention" tab, an expired transcript is
// purged by the service's own housekeeping, and the admin erases a counselor through the erase
// dialog: they can no longer sign in, their sessions list under the pseudonym, and the audit log
// shows the erasure. Every assertion is on what the page shows.
//
// How the purge is driven, test-only parts named: the harness starts the service with
// `RETENTION_PURGE_SECS=2` (an ordinary setting, an hour by default, see `env`), and makes the
// calls "two days old" by moving their times back in the run's own SQLite file with the sqlite3
// CLI (setup, not under test). Nothing in the product is switched on for tests.
import { execFileSync } from "node:child_process";
import { join } from "node:path";

/** The service's environment for this run: apply retention every 2 s instead of every hour. */
export const env = { RETENTION_PURGE_SECS: "2" };

const DAY_MS = 86_400_000;

/** Polls `probe` (reloading the page between tries) until it answers true, or fails naming `what`. */
async function eventually(page, probe, what, ms = 30_000) {
  const until = Date.now() + ms;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > until) throw new Error(`expected: ${what} (waited ${ms} ms)`);
    await page.waitForTimeout(1000);
    await page.reload();
  }
}

async function openAccountTab(page, tab) {
  await page.getByRole("link", { name: "Account", exact: true }).click();
  await page.getByRole("heading", { name: "Account", exact: true }).waitFor();
  await page.getByRole("tab", { name: tab, exact: true }).click();
}

async function openSessions(page) {
  await page.getByRole("link", { name: "Sessions", exact: true }).click();
  await page.getByRole("heading", { name: "Sessions", exact: true }).waitFor();
}

/**
 * `ctx`: the run's page, base URL and service directory (`dir`, holding `e2e.db`); `h`: run.mjs's
 * helpers and people ({ ADMIN, people, check, audit, signIn, signOut }).
 */
export async function retentionAndErasure(ctx, h) {
  const { page, base, dir } = ctx;
  const { ADMIN, people, check, audit, signIn, signOut } = h;
  const casey = people.casey;
  await signIn(page, base, ADMIN.email, ADMIN.password);

  // 1. The admin keeps transcripts one day after the call.
  await openAccountTab(page, "Data retention");
  await page.getByLabel("Transcripts (days after the call)").fill("1");
  await page.getByRole("button", { name: "Save", exact: true }).click();
  await page.getByText(/^Saved\./).waitFor();
  check(await page.getByLabel("Transcripts (days after the call)").inputValue() === "1", "the retention field shows 1 day");
  await audit(page, "23-data-retention");

  // 2. Casey's chat (scenario 2) still shows its transcript.
  await openSessions(page);
  await page.getByRole("link", { name: new RegExp(`Review session of ${casey.name}`) }).last().click();
  await page.getByRole("heading", { name: "Session review", exact: true }).waitFor();
  const turns = page.getByRole("list", { name: "Transcript" }).getByRole("listitem");
  await turns.first().waitFor();
  const reviewUrl = page.url();

  // Setup: every ended call ended two days ago (the run's database, beside the service).
  const sql = `UPDATE sessions SET started_at = started_at - ${2 * DAY_MS}, ended_at = ended_at - ${2 * DAY_MS} WHERE status <> 'active';`;
  execFileSync("sqlite3", ["-cmd", ".timeout 10000", join(dir, "e2e.db"), sql]);

  // 3. The housekeeping purges it: the same page now has no transcript.
  await page.goto(reviewUrl);
  await eventually(page, async () => {
    await page.getByRole("heading", { name: "Session review", exact: true }).waitFor();
    return page.getByText("No transcript yet.", { exact: true }).isVisible();
  }, "the expired transcript is purged from the session review page");
  check(await turns.count() === 0, "no transcript turn is shown after the purge");
  await audit(page, "24-transcript-purged");
  // ... and the audit log says the system purged it.
  await openAccountTab(page, "Audit log");
  await page.getByLabel("What", { exact: true }).selectOption({ label: "Everything" });
  await page.getByRole("button", { name: "Show", exact: true }).click();
  await page.getByRole("row").filter({ hasText: /Retention purged|past (their|its) retention/i }).filter({ hasText: "The system" }).first().waitFor();

  // 4. The admin erases Casey through the erase dialog.
  await page.getByRole("tab", { name: "Users", exact: true }).click();
  await page.getByRole("cell", { name: casey.name, exact: true }).waitFor();
  await page.getByRole("button", { name: `Erase ${casey.name}`, exact: true }).click();
  const dialog = page.getByRole("dialog", { name: `Erase ${casey.name}?`, exact: true });
  await dialog.waitFor();
  const erase = dialog.getByRole("button", { name: "Erase for good", exact: true });
  check(await erase.isDisabled(), "erasing waits for the name to be typed");
  await audit(page, "25-erase-dialog");
  await dialog.getByLabel(`Type "${casey.name}" to confirm`).fill(casey.name);
  await erase.click();
  await dialog.waitFor({ state: "detached" });
  const pseudonym = page.getByRole("cell", { name: /^Erased user [0-9a-f]{8}$/ });
  await pseudonym.first().waitFor();
  const erasedName = (await pseudonym.first().textContent()).trim();
  check(await page.getByRole("cell", { name: casey.name, exact: true }).count() === 0, "the users list no longer names Casey");
  check(await page.getByText(casey.email).count() === 0, "the users list no longer shows Casey's e-mail");

  // 5. Casey's sessions stay, listed under the pseudonym.
  await openSessions(page);
  await page.getByRole("cell", { name: erasedName, exact: true }).first().waitFor();
  check(await page.getByRole("cell", { name: casey.name, exact: true }).count() === 0, "the sessions list no longer names Casey");
  await audit(page, "26-sessions-pseudonymised");

  // 6. The audit log shows the erasure, by the admin.
  await openAccountTab(page, "Audit log");
  await page.getByLabel("What", { exact: true }).selectOption({ label: "User changes" });
  await page.getByRole("button", { name: "Show", exact: true }).click();
  await page.getByRole("row").filter({ hasText: /User erased|Erased a user/ }).filter({ hasText: "Ada Admin" }).first().waitFor();
  await audit(page, "27-audit-erasure");
  await signOut(page);

  // 7. Casey can no longer sign in.
  await signIn(page, base, casey.email, casey.password);
  await page.getByRole("alert").waitFor();
  check(await page.getByRole("heading", { name: "Sign in", exact: true }).isVisible(), "Casey stays on the sign-in page");
  check(await page.getByRole("button", { name: "Sign out", exact: true }).count() === 0, "Casey is not signed in");
}
