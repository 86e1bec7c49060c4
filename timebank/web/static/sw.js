// The app shell works offline: the page and this version's files are cached at
// install; the API is never cached (balances must be live, and exchanges recorded
// offline wait in the app's own outbox, not here).
const VERSION = "__VERSION__";
const CACHE = `timebank-${VERSION}`;
// Every file of this version, listed by the service when it serves this worker.
const SHELL = ["/", "/manifest.webmanifest", ...__FILES__.map((name) => `/static/${VERSION}/${name}`)];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((names) => Promise.all(names.filter((n) => n !== CACHE).map((n) => caches.delete(n))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== location.origin) return;
  if (event.request.mode === "navigate") {
    // The network first, so that a new version shows at once; the cached page offline.
    event.respondWith(fetch(event.request).catch(() => caches.match("/")));
  } else if (url.pathname.startsWith(`/static/${VERSION}/`)) {
    event.respondWith(caches.match(event.request).then((hit) => hit || fetch(event.request)));
  }
});
