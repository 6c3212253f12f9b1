//! Flag notifications: every safety flag raised on a practice session (by the AI evaluation, the
//! post-session analysis, or a counselor's report about the AI caller) is logged, and e-mailed to
//! the account's active supervisors and admins when `SMTP_URL` is set.
//!
//! A notification is queued with the flag, in its transaction (a `notify_flag` job), and sent by
//! the job workers (`jobs.rs`): a restart between the flag and the mail only delays the mail,
//! and of several replicas exactly one claims each job. A relay that fails is retried with
//! backoff; SMTP has no idempotency, so a worker that dies after the relay accepted a message but
//! before recording it sends that message again once its lease runs out (at least once, never
//! lost). Outcomes are logged without secrets and counted in
//! `flag_notifications_total{result="sent"|"failed"|"skipped"}`.

use std::net::IpAddr;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use store::{Role, UserFilter};
use uuid::Uuid;

use crate::config::{Config, ConfigError};
use store::{AccountId, FlagId, SessionId};

/// How long one delivery may take (connect, each command) before it counts as failed; lettre's
/// default is a minute, and a stuck relay should not hold a job worker that long.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Subjects are cut to this many characters: enough for any flag type, short enough for an inbox.
const MAX_SUBJECT_CHARS: usize = 160;

/// What the accepted `SMTP_URL` forms are, for error messages.
const URL_FORMS: &str = "use smtp://host[:port] (plain, for a relay on this machine), \
     smtp://user:pass@host[:port]?tls=required (STARTTLS, port 587 by default) or \
     smtps://user:pass@host[:port] (TLS, port 465 by default)";

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// `SMTP_URL` or `MAIL_FROM` is unusable; the error names the variable, never its value.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// None of the recipient addresses could be parsed (or there were none).
    #[error("no valid recipient addresses")]
    NoRecipients,
    #[error("building the message: {0}")]
    Message(#[from] lettre::error::Error),
    /// The relay refused the message or could not be reached.
    #[error("sending mail: {0}")]
    Send(#[from] lettre::transport::smtp::Error),
    /// Reading the flag or the recipients failed.
    #[error("reading the flag or its recipients: {0}")]
    Store(#[from] store::Error),
}

/// What became of one flag's notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notified {
    Sent {
        recipients: usize,
    },
    /// `SMTP_URL` is not set: the flag is only logged.
    NoMailer,
    /// The account has no active supervisor or admin.
    NoRecipients,
}

/// Sends plain-text mail through the relay named by `SMTP_URL`. Built once at start; cheap to
/// clone (each send opens its own connection).
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

/// By hand, because the transport holds the relay's credentials.
impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("from", &self.from.to_string()).finish_non_exhaustive()
    }
}

impl Mailer {
    /// The mailer `config` asks for: `None` when `SMTP_URL` is not set (flags are then only
    /// logged).
    ///
    /// Accepted `SMTP_URL` forms (lettre's connection URLs):
    /// - `smtp://host[:port]` — plain SMTP, port 25 by default: a relay on this machine or a
    ///   test sink (`smtp://127.0.0.1:2525`);
    /// - `smtp://user:pass@host[:port]?tls=required` — STARTTLS, port 587 by default
    ///   (`?tls=opportunistic` upgrades only when the server offers it);
    /// - `smtps://user:pass@host[:port]` — TLS from the first byte, port 465 by default.
    ///
    /// Percent-encode special characters in the user name and password. A password is refused
    /// on a connection that may stay unencrypted (plain `smtp://` or `tls=opportunistic`) unless
    /// the host is loopback, so a typo cannot send it over the network in clear.
    pub fn from_config(config: &Config) -> Result<Option<Mailer>, NotifyError> {
        let Some(url) = &config.smtp_url else {
            return Ok(None);
        };
        let from: Mailbox = config.mail_from.parse().map_err(|_| ConfigError {
            name: "MAIL_FROM",
            problem: "is not an address such as `Proto Trainer <noreply@example.org>`".into(),
        })?;
        let url = url.expose();
        if sends_password_in_clear(url) {
            return Err(ConfigError {
                name: "SMTP_URL",
                problem: format!("a password would be sent unencrypted to a remote host; {URL_FORMS}"),
            }
            .into());
        }
        // lettre's messages name the scheme and `tls` value at most, never the credentials.
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| ConfigError { name: "SMTP_URL", problem: format!("{e}; {URL_FORMS}") })?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        Ok(Some(Mailer { transport, from }))
    }

    /// Sends one plain-text UTF-8 message to every address in `to`. Recipients go in the
    /// envelope only (as Bcc would), so they do not see each other's addresses; the `To` header
    /// is the sender. Addresses that do not parse are skipped with a warning.
    pub async fn send(&self, to: &[String], subject: &str, body: &str) -> Result<(), NotifyError> {
        let recipients: Vec<_> = to.iter().filter_map(|a| a.trim().parse::<lettre::Address>().ok()).collect();
        if recipients.len() < to.len() {
            // Not the addresses themselves: logs are not the place for users' e-mail addresses.
            tracing::warn!(skipped = to.len() - recipients.len(), "skipping recipient addresses that do not parse");
        }
        if recipients.is_empty() {
            return Err(NotifyError::NoRecipients);
        }
        let envelope = Envelope::new(Some(self.from.email.clone()), recipients)?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(self.from.clone())
            .subject(one_line(subject, MAX_SUBJECT_CHARS))
            // lettre names ids after "localhost" without its `hostname` feature; spam filters
            // prefer the sender's own domain.
            .message_id(Some(format!("<{}@{}>", Uuid::now_v7(), self.from.email.domain())))
            .header(ContentType::TEXT_PLAIN)
            .envelope(envelope)
            .body(body.to_owned())?;
        self.transport.send(message).await?;
        Ok(())
    }
}

/// What a notification says about a flag. Plain data, so any code that raises a flag can fill it.
#[derive(Debug, Clone)]
pub struct FlagNotice {
    pub account_id: AccountId,
    pub session_id: SessionId,
    pub flag_id: FlagId,
    /// e.g. `missed_suicide_inquiry`.
    pub flag_type: String,
    /// e.g. `high`.
    pub severity: String,
    /// Who raised it: the evaluation, the analysis, a counselor's report.
    pub source: String,
    /// Free text about the flag; may describe the call, so it is mailed but never logged.
    pub details: String,
    pub counselor_name: String,
    /// `None` for free practice without a scenario.
    pub scenario_title: Option<String>,
}

impl FlagNotice {
    /// The subject line, e.g. `[Proto Trainer] high severity flag: missed_suicide_inquiry`.
    pub fn subject(&self) -> String {
        let subject = format!(
            "[Proto Trainer] {} severity flag: {}",
            one_line(&self.severity, 40),
            one_line(&self.flag_type, 100)
        );
        one_line(&subject, MAX_SUBJECT_CHARS)
    }

    /// The plain-text body. One-line fields are flattened so they cannot pass for other lines.
    pub fn body(&self) -> String {
        let scenario =
            self.scenario_title.as_deref().map_or_else(|| "(free practice)".to_owned(), |t| one_line(t, 200));
        format!(
            "A safety flag was raised on a practice session.\n\
             \n\
             Type:      {}\n\
             Severity:  {}\n\
             Source:    {}\n\
             Counselor: {}\n\
             Scenario:  {}\n\
             Session:   {}\n\
             Flag:      {}\n\
             \n\
             Please review session {} in Proto Trainer. The flag's details and the call's\n\
             transcript stay there: they are never sent by e-mail.\n\
             \n\
             Sent automatically by Proto Trainer to the account's supervisors and admins.\n",
            one_line(&self.flag_type, 100),
            one_line(&self.severity, 40),
            one_line(&self.source, 100),
            one_line(&self.counselor_name, 200),
            scenario,
            self.session_id,
            self.flag_id,
            self.session_id,
        )
    }
}

/// What the notification of a stored flag says: the flag with its counselor and scenario.
pub async fn flag_notice(
    store: &store::Store,
    account_id: store::AccountId,
    flag_id: store::FlagId,
) -> store::Result<FlagNotice> {
    let flag = store.flag(account_id, flag_id).await?;
    let session = store.session(account_id, flag.session_id).await?;
    let counselor_name = match store.user(account_id, session.user_id).await {
        Ok(user) => user.display_name,
        Err(store::Error::NotFound(_)) => session.user_id.to_string(),
        Err(e) => return Err(e),
    };
    let scenario_title = match session.scenario_id {
        Some(id) => match store.scenario(account_id, id).await {
            Ok(s) => Some(s.title),
            Err(store::Error::NotFound(_)) => None,
            Err(e) => return Err(e),
        },
        None => None,
    };
    Ok(FlagNotice {
        account_id,
        session_id: flag.session_id,
        flag_id: flag.id,
        flag_type: flag.flag_type.as_str().to_owned(),
        severity: flag.severity.as_str().to_owned(),
        source: flag.source.as_str().to_owned(),
        details: flag.details,
        counselor_name,
        scenario_title,
    })
}

/// Logs the flag and mails the account's active supervisors and admins. An error means the mail
/// may not have gone out and is worth retrying (the job queue does).
pub async fn notify_flag(
    store: &store::Store,
    mailer: Option<&Mailer>,
    notice: &FlagNotice,
) -> Result<Notified, NotifyError> {
    // Ids and classification only: `details` may describe the call.
    tracing::warn!(
        account_id = %notice.account_id,
        session_id = %notice.session_id,
        flag_id = %notice.flag_id,
        flag_type = %notice.flag_type,
        severity = %notice.severity,
        source = %notice.source,
        "safety flag raised"
    );
    let Some(mailer) = mailer else {
        tracing::debug!(flag_id = %notice.flag_id, "SMTP_URL not set; flag not mailed");
        count("skipped");
        return Ok(Notified::NoMailer);
    };
    let to = recipients(store, notice.account_id).await.inspect_err(|_| count("failed"))?;
    if to.is_empty() {
        tracing::warn!(flag_id = %notice.flag_id, account_id = %notice.account_id, "no active supervisor or admin to notify of a flag");
        count("skipped");
        return Ok(Notified::NoRecipients);
    }
    match mailer.send(&to, &notice.subject(), &notice.body()).await {
        Ok(()) => {
            tracing::info!(flag_id = %notice.flag_id, recipients = to.len(), "flag notification sent");
            count("sent");
            Ok(Notified::Sent { recipients: to.len() })
        }
        Err(e) => {
            count("failed");
            Err(e)
        }
    }
}

fn count(result: &'static str) {
    metrics::counter!("flag_notifications_total", "result" => result).increment(1);
}

/// The e-mail addresses of the account's active supervisors and admins, each once.
async fn recipients(store: &store::Store, account_id: AccountId) -> store::Result<Vec<String>> {
    let mut to: Vec<String> = Vec::new();
    for role in [Role::Supervisor, Role::Admin] {
        // `include_inactive` stays false: deactivated staff no longer get mail.
        let filter = UserFilter { role: Some(role), limit: Some(1000), ..UserFilter::default() };
        for user in store.list_users(account_id, &filter).await? {
            if !to.iter().any(|e| e.eq_ignore_ascii_case(&user.email)) {
                to.push(user.email);
            }
        }
    }
    Ok(to)
}

/// `text` on one line: control characters (CR and LF above all, so no header or body line can be
/// forged) become spaces, runs of whitespace one space, at most `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let cleaned: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let mut out = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    if let Some((cut, _)) = out.char_indices().nth(max) {
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// Whether lettre would send a password over a connection that may stay unencrypted (plain
/// `smtp://`, or `tls=opportunistic`) to a host other than this machine.
fn sends_password_in_clear(url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once("://") else { return false };
    if !scheme.eq_ignore_ascii_case("smtp") {
        return false;
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some((userinfo, hostport)) = rest[..authority_end].rsplit_once('@') else { return false };
    if !userinfo.contains(':') {
        return false; // lettre uses credentials only when a password is given
    }
    let query = rest[authority_end..].split_once('?').map_or("", |(_, q)| q);
    let query = query.split('#').next().unwrap_or("");
    if query.split('&').any(|pair| pair == "tls=required") {
        return false;
    }
    let host = match hostport.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => hostport.split(':').next().unwrap_or(""),
    };
    let loopback = host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    !loopback
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_flattens_and_cuts() {
        assert_eq!(one_line("a\r\nBcc: x@y.z\tb ", 100), "a Bcc: x@y.z b");
        assert_eq!(one_line("abcdef", 3), "abc…");
        assert_eq!(one_line("ééé", 3), "ééé");
    }

    #[test]
    fn passwords_in_clear_are_recognised() {
        assert!(sends_password_in_clear("smtp://u:p@mail.example.org"));
        assert!(sends_password_in_clear("smtp://u:p@mail.example.org:25?tls=opportunistic"));
        assert!(sends_password_in_clear("SMTP://u:p%40x@10.0.0.1:2525/"));
        assert!(!sends_password_in_clear("smtp://u:p@mail.example.org:587?tls=required"));
        assert!(!sends_password_in_clear("smtps://u:p@mail.example.org"));
        assert!(!sends_password_in_clear("smtp://mail.example.org"));
        assert!(!sends_password_in_clear("smtp://u:p@127.0.0.1:2525"));
        assert!(!sends_password_in_clear("smtp://u:p@[::1]:2525"));
        assert!(!sends_password_in_clear("smtp://u:p@localhost"));
    }
}
