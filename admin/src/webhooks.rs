//! Signed webhooks for partner systems: events are queued in the database in the same
//! transaction as the change they report (`assignment.completed`, `evaluation.completed`,
//! `flag.raised`; see `store::partner`) and a dispatcher sends them, concurrently with a limit
//! per endpoint, retrying failures with exponential backoff, recording every attempt.
//!
//! SSRF: a webhook reaches only public addresses. Literal non-public addresses are refused at
//! creation; named hosts are resolved at each delivery, checked, and the request is pinned to
//! the checked addresses; redirects are not followed; a refused destination is logged as
//! "refused", never with a status code.
//!
//! Signature: `X-ProtoTrainer-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
//! The timestamp is signed with the body, so a receiver can refuse replays older than a few
//! minutes. Deliveries are leased when claimed, so several admin replicas can each run a
//! dispatcher without sending an event twice.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use store::Timestamp;

use crate::AppState;
use crate::error::ApiError;

pub const SIGNATURE_HEADER: &str = "x-prototrainer-signature";
pub const EVENT_HEADER: &str = "x-prototrainer-event";
pub const DELIVERY_HEADER: &str = "x-prototrainer-delivery";
/// Attempts before a delivery is given up (marked failed; still in the log).
pub const MAX_ATTEMPTS: i64 = 8;
/// Deliveries claimed at once, and how many of them may go to one endpoint at the same time
/// (so one slow partner holds up only its own deliveries).
const BATCH: i64 = 20;
const PER_ENDPOINT: usize = 4;

/// The lease a batch is claimed for: every attempt is bounded by the timeout (lookup, connect
/// and answer together) and at most `PER_ENDPOINT` of them run at once per endpoint, so the
/// batch ends within `ceil(BATCH / PER_ENDPOINT)` timeouts; one more covers recording the
/// results. Another replica cannot claim a delivery before its first attempt is recorded.
pub fn lease_ms(timeout_ms: u32) -> i64 {
    let rounds = (BATCH as usize).div_ceil(PER_ENDPOINT) as i64 + 1;
    rounds * i64::from(timeout_ms.max(1))
}

/// `t=<unix>,v1=<hex>` for a body sent at `unix_secs`.
pub fn sign(secret: &str, unix_secs: i64, body: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(format!("{unix_secs}.{body}").as_bytes());
    let digest = mac.finalize().into_bytes();
    format!("t={unix_secs},v1={}", digest.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// Webhook URLs are `https://` to a public destination. A literal non-public address (loopback,
/// private, link-local, CGNAT, unique-local, v4-mapped, unspecified, metadata endpoints) is
/// refused here; a named host is checked when each delivery resolves it ([`resolve`]). With
/// `WEBHOOK_ALLOW_PRIVATE` (tests, local development) non-public destinations are allowed, and
/// plain `http://` to `localhost` or a literal non-public address.
pub fn check_url(url: &str, allow_private: bool) -> Result<(), ApiError> {
    let url = url.trim();
    let invalid = |why: &str| ApiError::validation("url", why.to_owned());
    if url.len() > 2000 || url.contains(char::is_whitespace) {
        return Err(invalid("must be an https:// URL of at most 2000 characters"));
    }
    let parsed = reqwest::Url::parse(url).map_err(|_| invalid("must be an https:// URL"))?;
    let host = parsed.host_str().filter(|h| !h.is_empty()).ok_or_else(|| invalid("must name a host"))?;
    let literal = literal_ip(host);
    let non_public_literal = literal.is_some_and(|ip| !is_public(ip));
    // Plain http is for a receiver on this machine or network, in tests and development.
    let local = non_public_literal || (literal.is_none() && is_localhost(host));
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid("must not carry credentials"));
    }
    match parsed.scheme() {
        "https" => {}
        "http" if allow_private && local => {}
        _ => return Err(invalid("must be an https:// URL")),
    }
    // A named host (even `localhost`) is checked where it matters: at each delivery, against
    // what it resolves to then.
    if non_public_literal && !allow_private {
        return Err(invalid("must not point at a loopback, private, link-local or other non-public address"));
    }
    Ok(())
}

/// How long creation waits for a name's lookup: an endpoint being set up may not resolve yet,
/// and a slow resolver must not hold the admin's request.
const CREATION_LOOKUP: Duration = Duration::from_secs(3);

/// [`check_url`], plus what a named host points at now, for creating a webhook: `localhost`,
/// `*.localhost`, `*.local` (mDNS, the local network) and `*.internal` are refused outright, and a
/// name whose addresses are all non-public (loopback, private, link-local, ...) is refused with a
/// 422 naming `url`. A name that does not resolve yet is accepted; every delivery resolves and
/// checks it again ([`resolve`]), since DNS can change after creation.
pub async fn check_new_url(url: &str, allow_private: bool) -> Result<(), ApiError> {
    check_url(url, allow_private)?;
    if allow_private {
        return Ok(());
    }
    let refused = || {
        ApiError::validation(
            "url",
            "must point at a public address: this name is on the local machine or a private network (loopback, \
             private, link-local or .local); use the partner's public https:// address"
                .to_owned(),
        )
    };
    let Ok(parsed) = reqwest::Url::parse(url.trim()) else { return Ok(()) };
    let Some(host) = parsed.host_str() else { return Ok(()) };
    if literal_ip(host).is_some() {
        return Ok(()); // checked by `check_url`
    }
    let domain = host.trim_end_matches('.').to_ascii_lowercase();
    if is_localhost(&domain) || domain.ends_with(".local") || domain.ends_with(".internal") {
        return Err(refused());
    }
    let port = parsed.port_or_known_default().unwrap_or(443);
    match tokio::time::timeout(CREATION_LOOKUP, tokio::net::lookup_host((domain.as_str(), port))).await {
        Ok(Ok(found)) => {
            let found: Vec<SocketAddr> = found.collect();
            if !found.is_empty() && !found.iter().any(|a| is_public(a.ip())) {
                return Err(refused());
            }
            Ok(())
        }
        // Not resolvable (yet), or the resolver is slow: the delivery decides.
        _ => Ok(()),
    }
}

/// The address a URL's host names literally (`[v6]` in brackets, as URLs write it).
fn literal_ip(host: &str) -> Option<IpAddr> {
    host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host).parse().ok()
}

fn is_localhost(domain: &str) -> bool {
    let d = domain.trim_end_matches('.').to_ascii_lowercase();
    d == "localhost" || d.ends_with(".localhost")
}

/// Whether an address is on the public internet: not loopback, private, link-local (cloud
/// metadata lives there), CGNAT, unspecified, broadcast, multicast, documentation, benchmarking,
/// reserved, unique-local or site-local v6, nor a v4 address wrapped in v6 (mapped, compatible,
/// NAT64, 6to4) that is one of those.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            if s[..6] == [0, 0, 0, 0, 0, 0] {
                // :: , ::1 and the deprecated v4-compatible form.
                return v6.segments()[6] != 0 && is_public_v4(embedded_v4(s[6], s[7]));
            }
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return is_public_v4(embedded_v4(s[6], s[7]));
            }
            if s[0] == 0x2002 {
                return is_public_v4(embedded_v4(s[1], s[2]));
            }
            // Global unicast is 2000::/3; within it, documentation 2001:db8::/32 and the IETF
            // protocol block 2001::/23 (Teredo, ORCHID, ...) are not destinations.
            let global = (s[0] & 0xe000) == 0x2000;
            let documentation = s[0] == 0x2001 && s[1] == 0x0db8;
            let ietf = s[0] == 0x2001 && s[1] < 0x0200;
            global && !documentation && !ietf
        }
    }
}

fn embedded_v4(hi: u16, lo: u16) -> Ipv4Addr {
    let [a, b] = hi.to_be_bytes();
    let [c, d] = lo.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

fn is_public_v4(v4: Ipv4Addr) -> bool {
    let [a, b, c, _] = v4.octets();
    !(a == 0 // "this network", 0.0.0.0
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b)) // CGNAT (and Alibaba's metadata 100.100.100.200)
        || (a == 169 && b == 254) // link-local, cloud metadata 169.254.169.254
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // documentation
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
        || (a == 192 && b == 168)
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // documentation
        || (a == 203 && b == 0 && c == 113) // documentation
        || a >= 224) // multicast, reserved, broadcast
}

/// Why a delivery was not sent: recorded as such in the log, never as a status code, so the
/// log cannot map an internal network.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("refused: the destination address is not public")]
    NotPublic,
    #[error("refused: the URL is not a deliverable https:// URL")]
    BadUrl,
    #[error("could not resolve the host")]
    Unresolved,
}

/// Where to connect for `url`: its host and the checked addresses the request must use, so what
/// was checked is what is dialled (no second lookup a rebinding DNS server could answer
/// differently).
pub async fn resolve(url: &str, allow_private: bool) -> Result<(String, Vec<SocketAddr>), Refusal> {
    check_url(url, allow_private).map_err(|_| Refusal::BadUrl)?;
    let parsed = reqwest::Url::parse(url.trim()).map_err(|_| Refusal::BadUrl)?;
    let port = parsed.port_or_known_default().ok_or(Refusal::BadUrl)?;
    let host = parsed.host_str().ok_or(Refusal::BadUrl)?;
    if let Some(ip) = literal_ip(host) {
        return Ok((ip.to_string(), vec![SocketAddr::new(ip, port)]));
    }
    let domain = host.to_owned();
    let found: Vec<SocketAddr> =
        tokio::net::lookup_host((domain.as_str(), port)).await.map_err(|_| Refusal::Unresolved)?.collect();
    if found.is_empty() {
        return Err(Refusal::Unresolved);
    }
    let usable: Vec<SocketAddr> = found.into_iter().filter(|a| allow_private || is_public(a.ip())).collect();
    if usable.is_empty() {
        return Err(Refusal::NotPublic);
    }
    Ok((domain, usable))
}

/// Sends due deliveries until `stop` is set: woken by new events, and every second for retries
/// that came due. A batch in progress is finished before it returns (shutdown drains it).
pub async fn dispatch(state: AppState, stop: CancellationToken) {
    let timeout = Duration::from_millis(u64::from(state.config.webhook_timeout_ms.max(1)));
    let lease = lease_ms(state.config.webhook_timeout_ms);
    let mut backoff = crate::jobs::Backoff::new(Duration::from_secs(1));
    loop {
        if stop.is_cancelled() {
            return;
        }
        match state.store.claim_due_deliveries(BATCH, PER_ENDPOINT as i64, lease).await {
            Ok(due) if !due.is_empty() => {
                backoff.succeeded();
                let mut limits: HashMap<store::WebhookId, Arc<tokio::sync::Semaphore>> = HashMap::new();
                let sends = due.into_iter().map(|delivery| {
                    let limit = limits
                        .entry(delivery.webhook_id)
                        .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(PER_ENDPOINT)))
                        .clone();
                    let state = &state;
                    async move {
                        let Ok(_permit) = limit.acquire().await else { return };
                        deliver(state, timeout, delivery).await;
                    }
                });
                futures::future::join_all(sends).await;
                // Shutting down: this batch is recorded; the loop's check leaves the rest to
                // another replica.
                continue;
            }
            Ok(_) => {
                if backoff.succeeded() {
                    tracing::info!("claiming webhook deliveries again: the database answers");
                }
            }
            Err(e) => {
                // The database is failing: wait longer each time (not woken by new events,
                // which could not be claimed either).
                let wait = backoff.failed();
                tracing::warn!(error = %e, wait_ms = wait.as_millis() as u64, "claiming webhook deliveries failed; backing off");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(wait) => {}
                }
                continue;
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = state.webhook_wake.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// One attempt: resolve and check the destination, send with the checked addresses pinned,
/// record the outcome. Bounded by `timeout` as a whole.
async fn deliver(state: &AppState, timeout: Duration, delivery: store::DueDelivery) {
    let now = Timestamp::now();
    let allow_private = state.config.webhook_allow_private;
    let attempt = tokio::time::timeout(timeout, async {
        let (host, addrs) = match resolve(&delivery.url, allow_private).await {
            Ok(target) => target,
            Err(refusal) => return Err(refusal.to_string()),
        };
        let mut client = reqwest::Client::builder().timeout(timeout).redirect(reqwest::redirect::Policy::none());
        if host.parse::<IpAddr>().is_err() {
            client = client.resolve_to_addrs(&host, &addrs);
        }
        let http = client.build().map_err(|_| "could not connect or send".to_owned())?;
        let signature = sign(&delivery.secret, now.millis() / 1000, &delivery.payload);
        http.post(&delivery.url)
            .header("content-type", "application/json")
            .header(EVENT_HEADER, delivery.event.as_str())
            .header(DELIVERY_HEADER, delivery.id.to_string())
            .header(SIGNATURE_HEADER, signature)
            .body(delivery.payload.clone())
            .send()
            .await
            .map_err(|e| if e.is_timeout() { "timed out".to_owned() } else { "could not connect or send".to_owned() })
    })
    .await
    .unwrap_or_else(|_| Err("timed out".to_owned()));
    let refused = matches!(&attempt, Err(e) if e.starts_with("refused"));
    let (ok, status, error) = match attempt {
        Ok(response) if response.status().is_success() => (true, Some(response.status().as_u16()), None),
        Ok(response) => (false, Some(response.status().as_u16()), Some(format!("HTTP {}", response.status()))),
        Err(e) => (false, None, Some(e)),
    };
    let attempts = delivery.attempts + 1;
    // A refused destination is not retried: it stays refused until the webhook is changed.
    let retry_at = (!ok && !refused && attempts < MAX_ATTEMPTS).then(|| {
        let base = i64::from(state.config.webhook_retry_base_ms);
        let wait = base.saturating_mul(1 << (attempts - 1).min(12)).min(3_600_000);
        Timestamp::from_millis(now.millis() + wait)
    });
    let result = if ok {
        "delivered"
    } else if refused {
        "refused"
    } else {
        "failed"
    };
    metrics::counter!("webhook_attempts_total", "result" => result).increment(1);
    if !ok {
        tracing::warn!(delivery = %delivery.id, event = delivery.event.as_str(), attempts, ?status, result, "webhook delivery failed");
    }
    if let Err(e) = state.store.record_delivery_attempt(delivery.id, ok, status, error.as_deref(), retry_at).await {
        tracing::error!(error = %e, delivery = %delivery.id, "recording a webhook attempt");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_over_time_and_body() {
        // RFC 4231-style check computed independently: HMAC-SHA256("secret", "1700000000.{}").
        let sig = sign("secret", 1_700_000_000, "{}");
        assert!(sig.starts_with("t=1700000000,v1="));
        assert_eq!(sig.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(sig, sign("secret", 1_700_000_001, "{}"));
        assert_ne!(sig, sign("other", 1_700_000_000, "{}"));
    }

    #[test]
    fn urls_must_be_https_to_public_addresses() {
        assert!(check_url("https://partner.example.org/hooks/pt", false).is_ok());
        assert!(check_url("https://93.184.215.14/hook", false).is_ok());
        assert!(check_url("https://[2606:4700::1111]/hook", false).is_ok());
        for bad in [
            "http://partner.example.org/hook",
            "ftp://x",
            "https://",
            "https://user:pw@partner.example.org/",
            "https://127.0.0.1/",
            "https://10.0.0.1/",
            "https://169.254.169.254/",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "https://[::1]/",
            "https://[fc00::1]/",
            "https://[::ffff:192.168.0.1]/",
            "https://[64:ff9b::a00:1]/",
            "https://[2002:a00:1::]/",
            "http://localhost/hook",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
        assert!(check_url("http://127.0.0.1:9000/hook", true).is_ok());
        assert!(check_url("http://localhost/hook", true).is_ok());
        assert!(check_url("http://partner.example.org/hook", true).is_err());
    }

    #[test]
    fn leases_outlive_a_batch() {
        // 20 deliveries to one endpoint, 4 at a time, each at most one timeout.
        assert!(lease_ms(10_000) > 5 * 10_000);
    }
}
