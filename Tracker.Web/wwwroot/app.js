// Tracker's only script. Pages work without it; it adds three conveniences.
"use strict";

// The browser's time zone, for the times the usage page shows by the hour or day (without it they are in UTC).
const timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
if (timeZone) document.cookie = `tracker.tz=${encodeURIComponent(timeZone)}; path=/; max-age=31536000; samesite=lax`;

// Copy buttons: <button data-copy="input-id"> copies that input's value and says so in [data-copy-status].
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const input = document.getElementById(button.dataset.copy);
  const status = button.closest("section")?.querySelector("[data-copy-status]");
  input.select();
  try {
    await navigator.clipboard.writeText(input.value);
    if (status) status.textContent = "Copied to the clipboard.";
  } catch {
    if (status) status.textContent = "Copying is not allowed here: the key is selected, press Ctrl+C (or ⌘C) to copy it.";
  }
});

// Live regions: <div id="…" data-refresh-seconds="5"> is reloaded from this same address every few seconds,
// while the tab is visible; the Tracker-Refresh-Region header names the region, so the page fetches only what
// that region shows. A signed-out session (the answer is the sign-in page) reloads the whole page.
for (const region of document.querySelectorAll("[data-refresh-seconds]")) {
  const seconds = Math.max(Number(region.dataset.refreshSeconds) || 5, 2);
  let busy = false;
  setInterval(async () => {
    if (busy || document.hidden) return;
    busy = true;
    try {
      const response = await fetch(location.href, {
        credentials: "same-origin", cache: "no-store", headers: { "Tracker-Refresh-Region": region.id },
      });
      if (response.redirected || !response.ok) {
        if (response.redirected) location.assign(response.url);
        return;
      }
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.getElementById(region.id);
      if (fresh && fresh.innerHTML !== region.innerHTML) {
        const open = [...region.querySelectorAll("details")].map((details) => details.open);
        region.innerHTML = fresh.innerHTML;
        region.querySelectorAll("details").forEach((details, index) => { details.open = open[index] ?? false; });
      }
    } catch {
      // Offline for a moment: the next tick tries again.
    } finally {
      busy = false;
    }
  }, seconds * 1000);
}
