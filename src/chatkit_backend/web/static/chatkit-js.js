// Mounts OpenAI's <openai-chatkit> web component (loaded from OpenAI's CDN) on this server.
// Its requests carry the bearer token the built-in page keeps in sessionStorage.

const TOKEN_KEY = "chatkit.token";
const domainKey = document.querySelector('meta[name="chatkit-domain-key"]').content;

function authFetch(input, init = {}) {
  const headers = new Headers(init.headers || {});
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.set("Authorization", `Bearer ${token}`);
  return fetch(input, { ...init, headers });
}

// The CDN script is async: by the page's load event it has run or failed to load. Without it
// the page would stay blank; say why instead (and still mount it if it turns up later).
const unavailable = document.getElementById("unavailable");
function checkLoaded() {
  if (!customElements.get("openai-chatkit")) unavailable.hidden = false;
}
if (document.readyState === "complete") checkLoaded();
else window.addEventListener("load", checkLoaded, { once: true });

await customElements.whenDefined("openai-chatkit");
unavailable.hidden = true;
document.getElementById("chatkit").setOptions({
  api: { url: new URL("/chatkit", location.origin).href, domainKey, fetch: authFetch },
  history: { enabled: true, showDelete: true, showRename: true },
  threadItemActions: { feedback: true, retry: true },
});
