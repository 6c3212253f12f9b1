//! Rendered list pages, kept per caller and served again while the account's data revision
//! (`store::AuthSession::revision`, moved by database triggers in the same transaction as every
//! change a list shows) stands. A hit costs the one query that signs the caller in, which reads
//! the revision too (shared with the sign-ins of the same moment, `store::Store::auth_session`);
//! so a cached answer is never older than the database at the start of the request, on any
//! replica: a change made through another replica moves the same revision.
//!
//! What it covers: `GET` of the list routes in [`CACHED`], answered 200 to a signed-in user.
//! The key is the caller and the whole path and query, so one user never sees another's view
//! (a counselor's list holds only their own rows). The clock also changes lists (an assignment
//! turns overdue at its due time), so an entry serves for at most [`MAX_AGE`] whatever the
//! revision says. Memory is bounded by `LIST_CACHE_MB` (least recently used pages go first;
//! `0` turns the cache off), and a page larger than an eighth of it is never kept.
//!
//! A kept page larger than 1 KiB is also gzipped once, when it is rendered, and sent so to
//! callers whose `Accept-Encoding` allows it (browsers): the largest page, progress over a
//! year of sessions, is half a megabyte of JSON.
//!
//! It is a layer in front of the handlers, which stay as they are: on a miss the layer passes
//! the caller it already resolved to the handler's extractor ([`crate::identity::SignedIn`]),
//! so a miss still signs in once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use store::UserId;

use crate::AppState;
use crate::identity::SignedIn;

/// The routes whose `GET` answers are kept: the lists a supervisor's and a counselor's pages
/// poll. Their answers depend only on the caller, the query and the tracked tables
/// (`store::REVISION_TRACKED`), and on the clock within [`MAX_AGE`].
pub const CACHED: [&str; 5] = ["/api/scenarios", "/api/assignments", "/api/sessions", "/api/flags", "/api/progress"];

/// The longest an entry serves, for what the clock changes without a write (overdue flags).
pub const MAX_AGE: Duration = Duration::from_secs(5);

/// Says on each answer of a cached route whether it was kept (`hit`) or rendered (`miss`), for
/// operators and tests.
pub const HEADER: &str = "x-list-cache";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    user: UserId,
    /// Path and query as sent: two spellings of one query are two entries, which costs memory,
    /// never correctness.
    uri: String,
}

struct Entry {
    revision: i64,
    rendered: Instant,
    /// The cache's tick at the last use: the eviction order.
    used: AtomicU64,
    headers: HeaderMap,
    body: Bytes,
    /// The body gzipped once, for the callers that accept it (every browser): a large page
    /// (progress over a year of sessions) is then a tenth of the bytes to send.
    gzip: Option<Bytes>,
}

impl Entry {
    fn size(&self, key: &Key) -> usize {
        // The headers and the map's own overhead, roughly; the bodies dominate.
        self.body.len() + self.gzip.as_ref().map_or(0, Bytes::len) + key.uri.len() + 256
    }
}

/// Pages below this are sent as they are: gzip would save little and cost a header's worth.
const GZIP_FROM: usize = 1024;

/// A kept page as one caller gets it.
struct Page {
    headers: HeaderMap,
    body: Bytes,
    gzip: Option<Bytes>,
}

fn gzip(body: &[u8]) -> Option<Bytes> {
    use std::io::Write;
    if body.len() < GZIP_FROM {
        return None;
    }
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 8), flate2::Compression::fast());
    encoder.write_all(body).ok()?;
    encoder.finish().ok().map(Bytes::from)
}

/// Whether `Accept-Encoding` allows gzip: a `gzip` or `*` token whose weight, if given, is a
/// positive number (a weight that does not parse, NaN included, refuses).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=").is_some_and(|q| q.parse::<f32>().map_or(true, |q| !q.is_finite() || q <= 0.0))
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        },
    )
}

/// The response for `page`: gzipped when the caller accepts it and the page is worth it.
fn respond(page: Page, accepts_gzip: bool, kept: bool) -> Response {
    let (body, gzipped) = match page.gzip {
        Some(gzip) if accepts_gzip => (gzip, true),
        _ => (page.body, false),
    };
    let mut response = Response::new(Body::from(body));
    *response.headers_mut() = page.headers;
    let headers = response.headers_mut();
    headers.remove(header::CONTENT_LENGTH);
    if gzipped {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    headers.insert(HEADER, HeaderValue::from_static(if kept { "hit" } else { "miss" }));
    response
}

/// The kept pages, bounded in bytes.
pub struct ListCache {
    budget: usize,
    /// Counts uses, so entries used in one millisecond still have an order.
    clock: AtomicU64,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Key, Entry>,
    bytes: usize,
}

impl std::fmt::Debug for ListCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListCache").field("budget", &self.budget).finish_non_exhaustive()
    }
}

impl ListCache {
    /// A cache of at most `megabytes` MiB; `None` for 0 (off).
    pub fn new(megabytes: u32) -> Option<Self> {
        (megabytes > 0).then(|| ListCache {
            budget: megabytes as usize * 1024 * 1024,
            clock: AtomicU64::new(0),
            inner: Mutex::new(Inner::default()),
        })
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed)
    }

    fn get(&self, key: &Key, revision: i64) -> Option<Page> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let entry = inner.entries.get(key)?;
        if entry.revision != revision || entry.rendered.elapsed() > MAX_AGE {
            return None;
        }
        entry.used.store(self.tick(), Ordering::Relaxed);
        Some(Page { headers: entry.headers.clone(), body: entry.body.clone(), gzip: entry.gzip.clone() })
    }

    fn put(&self, key: Key, revision: i64, rendered: Instant, page: &Page) {
        let entry = Entry {
            revision,
            rendered,
            used: AtomicU64::new(self.tick()),
            headers: page.headers.clone(),
            body: page.body.clone(),
            gzip: page.gzip.clone(),
        };
        let size = entry.size(&key);
        if size > self.budget / 8 {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = inner.entries.get(&key) {
            // A slower request that read an older revision must not replace a newer page.
            if old.revision > revision {
                return;
            }
            let old_size = old.size(&key);
            inner.bytes -= old_size;
        }
        inner.bytes += size;
        inner.entries.insert(key, entry);
        if inner.bytes > self.budget {
            // Least recently used first, down to 90% so eviction runs once per many inserts.
            let mut order: Vec<(u64, Key)> =
                inner.entries.iter().map(|(k, e)| (e.used.load(Ordering::Relaxed), k.clone())).collect();
            order.sort_unstable_by_key(|(used, _)| *used);
            for (_, key) in order {
                if inner.bytes <= self.budget / 10 * 9 {
                    break;
                }
                if let Some(gone) = inner.entries.remove(&key) {
                    inner.bytes -= gone.size(&key);
                }
            }
        }
    }

    /// Entries and bytes held (for tests and metrics).
    pub fn usage(&self) -> (usize, usize) {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        (inner.entries.len(), inner.bytes)
    }
}

/// The layer: serves a kept page when the caller's account is still at its revision, otherwise
/// lets the handler render and keeps what it answered.
pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(cache) = state.list_cache.clone() else { return next.run(request).await };
    if request.method() != Method::GET || !CACHED.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let signed_in = match SignedIn::from_request_parts(&mut parts, &state).await {
        Ok(signed_in) => signed_in,
        // The same answer the handler's extractor would give (401, 403).
        Err(rejection) => return rejection.into_response(),
    };
    let key = Key {
        user: signed_in.actor.user_id,
        uri: parts.uri.path_and_query().map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned()),
    };
    let revision = signed_in.session.revision;
    let gzip_ok = accepts_gzip(&parts.headers);
    if let Some(page) = cache.get(&key, revision) {
        metrics::counter!("list_cache_requests_total", "result" => "hit").increment(1);
        return respond(page, gzip_ok, true);
    }
    metrics::counter!("list_cache_requests_total", "result" => "miss").increment(1);
    let rendered = Instant::now();
    parts.extensions.insert(signed_in);
    let response = next.run(Request::from_parts(parts, body)).await;
    if response.status() != StatusCode::OK {
        return response;
    }
    let (parts, body) = response.into_parts();
    // The handler built the whole page in memory (JSON); collecting it copies nothing new.
    match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => {
            let page = Page { headers: parts.headers, gzip: gzip(&bytes), body: bytes };
            cache.put(key, revision, rendered, &page);
            respond(page, gzip_ok, false)
        }
        Err(err) => {
            tracing::error!(error = %err, "reading a rendered list failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(body: &'static [u8]) -> Page {
        Page { headers: HeaderMap::new(), body: Bytes::from_static(body), gzip: None }
    }

    fn big(len: usize) -> Page {
        Page { headers: HeaderMap::new(), body: Bytes::from(vec![b'x'; len]), gzip: None }
    }

    fn key(n: u8) -> Key {
        Key { user: UserId::new(), uri: format!("/api/sessions?page={n}") }
    }

    #[test]
    fn serves_only_the_revision_it_was_rendered_at() {
        let cache = ListCache::new(1).expect("on");
        let k = key(1);
        cache.put(k.clone(), 7, Instant::now(), &page(b"[1]"));
        assert_eq!(cache.get(&k, 7).map(|p| p.body), Some(Bytes::from_static(b"[1]")));
        assert!(cache.get(&k, 8).is_none(), "a later revision must render again");
        assert!(cache.get(&key(2), 7).is_none(), "another caller or query is another entry");
    }

    #[test]
    fn an_older_render_never_replaces_a_newer_one() {
        let cache = ListCache::new(1).expect("on");
        let k = key(1);
        cache.put(k.clone(), 8, Instant::now(), &page(b"new"));
        cache.put(k.clone(), 7, Instant::now(), &page(b"old"));
        assert_eq!(cache.get(&k, 8).map(|p| p.body), Some(Bytes::from_static(b"new")));
    }

    #[test]
    fn entries_expire_with_the_clock() {
        let cache = ListCache::new(1).expect("on");
        let k = key(1);
        let long_ago = Instant::now().checked_sub(MAX_AGE + Duration::from_millis(1)).expect("clock");
        cache.put(k.clone(), 1, long_ago, &page(b"[]"));
        assert!(cache.get(&k, 1).is_none());
    }

    #[test]
    fn memory_stays_within_the_budget_and_big_pages_are_not_kept() {
        assert!(ListCache::new(0).is_none());
        let cache = ListCache::new(1).expect("on");
        let first = key(0);
        cache.put(first.clone(), 1, Instant::now(), &big(100 * 1024));
        for n in 1..40 {
            cache.put(key(n), 1, Instant::now(), &big(100 * 1024));
            assert!(cache.usage().1 <= 1024 * 1024, "over budget after {n} pages");
        }
        assert!(cache.get(&first, 1).is_none(), "the least recently used page goes first");
        let huge = key(99);
        cache.put(huge.clone(), 1, Instant::now(), &big(200 * 1024));
        assert!(cache.get(&huge, 1).is_none(), "a page over an eighth of the budget is not kept");
    }

    #[test]
    fn gzip_goes_to_those_who_accept_it() {
        let accept = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).expect("value"));
            accepts_gzip(&h)
        };
        assert!(accept("gzip, deflate, br, zstd"));
        assert!(accept("br;q=1.0, gzip;q=0.8"));
        assert!(accept("*"));
        assert!(!accept("gzip;q=0"));
        assert!(!accept("br, identity"));
        // Hostile or malformed weights are a refusal, never a panic.
        assert!(!accept("gzip;q=abc"));
        assert!(!accept("gzip;q=NaN, *;q=-1"));
        assert!(!accept(&format!("{}gzip;q=0", ",".repeat(10_000))));
        assert!(!accepts_gzip(&HeaderMap::new()));

        let body =
            serde_json::to_vec(&vec![serde_json::json!({"title": "Scenario", "score": 71.5}); 200]).expect("json");
        let packed = gzip(&body).expect("worth it");
        assert!(packed.len() * 5 < body.len(), "{} of {}", packed.len(), body.len());
        let mut unpacked = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&packed[..]), &mut unpacked).expect("gunzip");
        assert_eq!(unpacked, body);
        assert!(gzip(b"[]").is_none(), "a tiny page goes as it is");

        let page = Page { headers: HeaderMap::new(), body: Bytes::from(body), gzip: Some(packed.clone()) };
        let response = respond(page, true, true);
        assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(response.headers()[HEADER], "hit");
    }
}
