// Sign-in for the placeholder page: password login, the demo switcher (DEMO_MODE only), sign-out.
// State-changing requests carry the session's CSRF token, as every client of the API must.
"use strict";

let csrf = null;

async function api(method, path, body) {
  const headers = { "content-type": "application/json" };
  if (csrf) headers["x-csrf-token"] = csrf;
  const res = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined, credentials: "same-origin" });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

function show(id, visible) {
  document.getElementById(id).hidden = !visible;
}

function signedIn(info) {
  csrf = info.csrfToken;
  document.getElementById("me-name").textContent = info.user.displayName;
  document.getElementById("me-role").textContent = info.user.role + (info.user.isDemo ? ", demo user" : "");
  document.getElementById("me-account").textContent = info.account.name;
  show("me", true);
  show("login", false);
  show("demo", false);
}

async function signedOut() {
  csrf = null;
  show("me", false);
  show("login", true);
  const demo = await api("GET", "/api/auth/demo-users");
  if (demo.status !== 200) return;
  const list = document.getElementById("demo-users");
  list.replaceChildren();
  for (const user of demo.body) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = `${user.displayName} (${user.role})`;
    button.addEventListener("click", async () => {
      const res = await api("POST", "/api/auth/demo-login", { userId: user.id });
      if (res.status === 200) signedIn(res.body);
    });
    list.append(button);
  }
  show("demo", demo.body.length > 0);
}

document.addEventListener("DOMContentLoaded", async () => {
  document.getElementById("login").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    const res = await api("POST", "/api/auth/login", { email: form.get("email"), password: form.get("password") });
    document.getElementById("login-error").textContent = res.status === 200 ? "" : (res.body?.message ?? "sign-in failed");
    if (res.status === 200) signedIn(res.body);
  });
  document.getElementById("logout").addEventListener("click", async () => {
    await api("POST", "/api/auth/logout");
    await signedOut();
  });
  const me = await api("GET", "/api/me");
  if (me.status === 200) signedIn(me.body);
  else await signedOut();
});
