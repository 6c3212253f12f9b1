// Issue 20 in Chromium. Item 5 (E2E_VOICE=1): live captions follow the newest line unless the
// counselor scrolled up. The vitest (CaptionList.test.tsx) fakes the box sizes, since jsdom lays
// nothing out; here the real list, in a real call, is shrunk to about three lines of text so two
// captions overflow it, and the browser's own scroll positions are read as lines arrive.
// Accessibility: the counselor picker, now on Downshift, on its second page (the scenario form's
// "Learner"; uiweb.mjs checks the assignments page's).
// Each takes run.mjs's `ctx` and leaves the browser signed out.

/** CaptionList's NEAR_BOTTOM_PX: within this many pixels of the end counts as "at the newest line". */
const NEAR_BOTTOM_PX = 24;
/** `scrollTop + clientHeight` may miss `scrollHeight` by a rounded fraction of a pixel. */
const AT_END_PX = 2;
const CAPTIONS_SCENARIO = "E2E: caller for the captions check";

/**
 * Runs in the page: shrinks the caption list and records, one animation frame after each new line
 * (after React's layout effect and the browser's layout), where the list is scrolled. The first
 * new line that overflows the list well past the "near the end" margin must find the list at its
 * end; the recorder then scrolls the list to its top as the counselor would, and the next new
 * line must leave it there, with "Jump to newest" offered. In the page, not from the test, so no
 * round trip can lose the race with the caller's answer, which follows the counselor's line closely.
 */
function recordCaptionScrolling(list, near) {
  // About three lines of caption text (20 px each): one caption fits, two do not.
  list.style.setProperty("max-height", "3.75rem", "important");
  const state = { phase: "follow", records: [] };
  window.__ui3Captions = state;
  const jumpShown = () => [...list.parentElement.querySelectorAll("button")].some((b) => b.textContent.startsWith("Jump to newest"));
  new MutationObserver((mutations) => {
    if (!mutations.some((m) => m.addedNodes.length)) return;
    const lines = list.children.length;
    requestAnimationFrame(() => {
      const r = { phase: state.phase, lines, scrollTop: list.scrollTop, gap: list.scrollHeight - list.scrollTop - list.clientHeight, overflow: list.scrollHeight - list.clientHeight, jump: jumpShown() };
      state.records.push(r);
      if (state.phase === "follow" && r.overflow > 2 * near) {
        state.phase = "up";
        list.scrollTop = 0;
      } else if (state.phase === "up") {
        state.phase = "done";
      }
    });
  }).observe(list, { childList: true });
}

/** Item 5: captions scroll to each new line; scrolled up, a new line leaves them; "Jump to newest" works. */
export async function captionsFollowNewestLine(ctx) {
  const { page, api, ids, people } = ctx;
  // Setup, not under test: a phone scenario whose caller speaks first, assigned to Casey, for
  // three lines (the caller's opening, the fake microphone's line, the caller's answer; free
  // practice has only the last two).
  const { categories } = await api("GET", "/api/categories");
  const scenario = await api("POST", "/api/scenarios", {
    title: CAPTIONS_SCENARIO,
    prompt: "You are Jo, 41. You have not slept for days and have pills at home. Speak in short sentences.",
    mode: "phone",
    category: categories[0],
    voice: { callerSpeaksFirst: true },
  });
  await api("POST", "/api/assignments", { scenarioId: scenario.id, counselorId: ids.casey });
  await ctx.signIn(page, ctx.base, people.casey.email, people.casey.password);
  await page.getByRole("heading", { name: "My assignments", exact: true }).waitFor();
  await page.getByRole("button", { name: `Start voice call: ${CAPTIONS_SCENARIO}` }).click();
  await page.getByRole("heading", { name: "Voice practice", exact: true }).waitFor();
  await page.getByRole("button", { name: "Connect", exact: true }).click();
  try {
    await checkCaptionScrolling(ctx);
  } finally {
    // Even after a failed check: a call left live would be offered for rejoining to later steps.
    const hangUp = page.getByRole("button", { name: "Hang up", exact: true });
    if (await hangUp.isVisible()) {
      await hangUp.click();
      await page.getByRole("heading", { name: "Feedback", exact: true }).waitFor();
    }
  }
  await ctx.signOut(page);
}

async function checkCaptionScrolling(ctx) {
  const { page, check } = ctx;
  const list = page.getByRole("list", { name: "Live captions" });
  // The list is there as the call starts, before the caller's first words.
  await list.waitFor();
  await list.evaluate(recordCaptionScrolling, NEAR_BOTTOM_PX);
  // The caller's opening, the counselor's line (the fake microphone), the caller's answer.
  await page.waitForFunction(() => window.__ui3Captions.phase === "done", null, { timeout: 45_000 }).catch(async (e) => {
    throw new Error(`fewer new caption lines than the check needs: ${JSON.stringify(await page.evaluate(() => window.__ui3Captions))} (${e.message})`);
  });
  const { records } = await page.evaluate(() => window.__ui3Captions);
  const seen = JSON.stringify(records);
  const followed = records.find((r) => r.phase === "follow" && r.overflow > 2 * NEAR_BOTTOM_PX);
  check(followed && followed.gap <= AT_END_PX, `a new line that overflows the list scrolls it to its end (scrollTop + clientHeight ≈ scrollHeight): ${seen}`);
  const stayed = records.find((r) => r.phase === "up");
  check(stayed.scrollTop === 0 && stayed.gap > NEAR_BOTTOM_PX && stayed.lines > followed.lines, `a new line while scrolled up leaves the list where the counselor put it: ${seen}`);
  check(stayed.jump, `"Jump to newest" is offered once the counselor scrolled up: ${seen}`);
  const jump = page.getByRole("button", { name: "Jump to newest", exact: true });
  await jump.waitFor();
  check((await list.evaluate((el) => el.scrollTop)) === 0, "still where the counselor scrolled to");
  await ctx.audit(page, "ui3-01-captions-scrolled-up");
  await jump.click();
  await jump.waitFor({ state: "hidden" });
  const after = await list.evaluate((el) => ({ scrollTop: el.scrollTop, clientHeight: el.clientHeight, scrollHeight: el.scrollHeight }));
  check(after.scrollHeight - after.scrollTop - after.clientHeight <= AT_END_PX && after.scrollTop > 0, `"Jump to newest" scrolls to the end: ${JSON.stringify(after)}`);
  await ctx.audit(page, "ui3-02-captions-jumped-to-newest");
}

/**
 * The counselor picker's second user, on Downshift: the one-time scenario's single "Learner"
 * picker on the scenario form. Type, the first answer highlighted and named by
 * `aria-activedescendant`, Enter picks it and closes the list; a second pick (by mouse) replaces
 * it; "Create & assign" waits for a learner. Nothing is saved.
 */
export async function learnerPicker(ctx) {
  const { page, people, check } = ctx;
  await ctx.signIn(page, ctx.base, people.supervisor.email, people.supervisor.password);
  await page.getByRole("heading", { name: "Scenarios", exact: true }).waitFor();
  await page.getByRole("button", { name: "New scenario", exact: true }).click();
  await page.getByLabel("One-time scenario", { exact: false }).check();
  const create = page.getByRole("button", { name: "Create & assign", exact: true });
  check(await create.isDisabled(), "no learner, no Create & assign");
  const box = page.getByRole("combobox", { name: "Learner", exact: true });
  await box.fill("Robin");
  const robin = page.getByRole("option", { name: /^Robin Counselor/ });
  await robin.waitFor();
  check((await box.getAttribute("aria-expanded")) === "true", "the list is open");
  check((await box.getAttribute("aria-activedescendant")) === (await robin.getAttribute("id")), "the first answer is highlighted and named by aria-activedescendant");
  check((await robin.getAttribute("aria-selected")) === "true", "the highlighted option is marked selected");
  await ctx.audit(page, "ui3-03-learner-picker-open");
  await box.press("Enter");
  await page.getByRole("button", { name: "Remove Robin Counselor", exact: true }).waitFor();
  check((await box.getAttribute("aria-expanded")) === "false" && !(await box.getAttribute("aria-activedescendant")), "a single pick closes the list");
  check((await box.inputValue()) === "", "the search is emptied after the pick");
  await box.fill("Casey");
  await page.getByRole("option", { name: /^Casey Counselor/ }).click();
  await page.getByRole("button", { name: "Remove Casey Counselor", exact: true }).waitFor();
  check((await page.getByRole("button", { name: "Remove Robin Counselor", exact: true }).count()) === 0, "the single picker replaces its learner");
  check(await create.isEnabled(), "a learner enables Create & assign");
  // Leaving the field with a search typed picks nobody.
  await box.fill("Robin");
  await robin.waitFor();
  await page.getByLabel("Title", { exact: true }).focus();
  check((await page.getByRole("button", { name: "Remove Robin Counselor", exact: true }).count()) === 0, "leaving the field picks nobody");
  await ctx.audit(page, "ui3-04-learner-picked");
  await page.getByRole("button", { name: "Cancel", exact: true }).click();
  await page.getByRole("heading", { name: "Scenarios", exact: true }).waitFor();
  await ctx.signOut(page);
}
