// The web UI's cross-cutting pieces in Chromium (issue 20, items 4, 7, 8): a wrong password is
// named as such; a destructive admin action asks first (native dialog, Escape and Cancel keep the
// key) and acknowledges in a live region; every route has its own document title and moves focus
// to its heading. The helpers (`check`, `audit`, `signIn`, `signOut`) come from run.mjs.

/** Wrong password, then revoke an API key through the confirmation and its notice. */
export async function confirmRevoke(ctx, { ADMIN, check, audit, signIn, signOut }) {
  const { page, base } = ctx;
  await signIn(page, base, ADMIN.email, "not-the-password");
  await page.getByRole("alert").filter({ hasText: "Wrong e-mail or password" }).waitFor();
  await audit(page, "ui2b-01-wrong-password");
  await signIn(page, base, ADMIN.email, ADMIN.password);
  await page.getByRole("link", { name: "Account", exact: true }).click();
  await page.getByRole("tab", { name: "API keys", exact: true }).click();
  const name = "E2E key to revoke";
  await page.getByLabel("What it is for").fill(name);
  await page.getByRole("button", { name: "Create key", exact: true }).click();
  await page.getByRole("dialog", { name: "Your new API key", exact: true }).getByRole("button", { name: "Done", exact: true }).click();
  const row = page.getByRole("listitem").filter({ hasText: name });
  const revoke = row.getByRole("button", { name: `Revoke ${name}`, exact: true });
  const question = page.getByRole("dialog", { name: `Revoke the key “${name}”?`, exact: true });
  // Cancel and Escape both keep the key.
  await revoke.click();
  await question.waitFor();
  await audit(page, "ui2b-02-confirm-revoke");
  await question.getByRole("button", { name: "Cancel", exact: true }).click();
  await question.waitFor({ state: "detached" });
  check(await revoke.isVisible(), "Cancel keeps the key");
  await revoke.click();
  await question.waitFor();
  await page.keyboard.press("Escape");
  await question.waitFor({ state: "detached" });
  check(await revoke.isVisible(), "Escape keeps the key");
  check(await revoke.evaluate((b) => b === document.activeElement), "focus returns to the Revoke button");
  // Confirmed: the key is revoked and the page says so in the live region.
  await revoke.click();
  await question.getByRole("button", { name: "Revoke key", exact: true }).click();
  await page.getByRole("status").filter({ hasText: `Key “${name}” revoked.` }).waitFor();
  await row.getByText("Revoked", { exact: true }).waitFor();
  await audit(page, "ui2b-03-revoked-notice");
  await signOut(page);
}

/**
 * Every supervisor route through the navigation: the tab is titled after the page's heading and
 * the heading has the focus (a screen reader announces the page), and Back does the same.
 */
export async function titlesAndFocus(ctx, { ADMIN, check, signIn, signOut }) {
  const { page, base } = ctx;
  await signIn(page, base, ADMIN.email, ADMIN.password);
  const nav = page.getByRole("navigation", { name: "Main" });
  await nav.waitFor();
  // A link's text can end in its badge's count ("Flags9"); the badge is not part of its name.
  const links = (await nav.getByRole("link").allTextContents()).map((t) => t.replace(/\d+$/, "").trim());
  check(links.length >= 5, `the admin's navigation has its links (${links.join(", ")})`);
  const seen = new Set();
  const expectPage = async (what) => {
    const h1 = page.locator("main h1");
    await h1.waitFor();
    // The heading can fill in from data after it appears; the title follows it.
    await page.waitForFunction(() => {
      const h = document.querySelector("main h1");
      return h && document.title === `${h.textContent.trim()} · Proto Trainer` && document.activeElement === h;
    }, null, { timeout: 5000 }).catch(async () => {
      const state = await page.evaluate(() => ({ title: document.title, h1: document.querySelector("main h1")?.textContent, focus: document.activeElement?.outerHTML.slice(0, 80) }));
      throw new Error(`${what}: expected the title "<h1> · Proto Trainer" and focus on the h1, got ${JSON.stringify(state)}`);
    });
    seen.add(await page.title());
  };
  for (const text of links) {
    await nav.getByRole("link", { name: text, exact: true }).click();
    await expectPage(`after clicking "${text}"`);
  }
  check(seen.size === links.length, `each route has its own title (${[...seen].join(" | ")})`);
  await page.goBack();
  await expectPage("after Back");
  await signOut(page);
  check((await page.title()) === "Sign in · Proto Trainer", `the sign-in page is titled (${await page.title()})`);
}
