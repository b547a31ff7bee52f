//! Mail: one message to one recipient, behind [`Mailer`]; an SMTP client.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::AdapterError;

/// Sends mail. A retried message carries the same `Message-ID`, so that a receiver (or the
/// delivery log) can tell a re-send from a new message.
#[async_trait]
pub trait Mailer: Send + Sync + fmt::Debug {
    /// Sends the message; answers the server's reply, for the delivery log.
    async fn send(&self, email: &Email) -> Result<String, AdapterError>;
}

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    /// `shop@example.com` or `Shop <shop@example.com>`.
    pub from: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    /// An HTML alternative to `text`.
    pub html: Option<String>,
    /// Stable per (order, event): `ord_1.confirmed`. Written as `<ord_1.confirmed@domain>`
    /// with the sender's domain, unless it already is `<...@...>` or has an `@`.
    pub message_id: String,
}

/// SMTP through lettre, over tokio.
#[derive(Clone)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// `host:port`, for logs: the URL may hold a password.
    server: String,
}

impl fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// A mailer for the server at `url`:
    /// - `smtp://host:port`: plain SMTP, no TLS (local sinks and relays);
    /// - `smtp://user:pass@host:587?tls=starttls` (or `tls=required`): STARTTLS, required;
    /// - `smtp://host:587?tls=opportunistic`: STARTTLS when the server offers it;
    /// - `smtps://user:pass@host:465`: TLS from the first byte.
    ///
    /// User and password are percent-decoded; a path (`smtp://host/mail.example.com`) is the
    /// name given in `EHLO`.
    pub fn new(url: &str) -> Result<Self, AdapterError> {
        Self::with_timeout(url, crate::DEFAULT_TIMEOUT)
    }

    /// As [`SmtpMailer::new`], each SMTP command giving up after `timeout`. Connections are
    /// pooled and reused; the pool's upkeep runs on the current tokio runtime, which must exist.
    pub fn with_timeout(url: &str, timeout: Duration) -> Result<Self, AdapterError> {
        let url = url.trim();
        // lettre calls STARTTLS-or-fail `required`; `starttls` is the name people look for.
        let url = url.replacen("tls=starttls", "tls=required", 1);
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&url)
            .map_err(|e| AdapterError::Rejected(format!("the SMTP URL is not usable: {e}")))?
            .timeout(Some(timeout))
            .build();
        Ok(Self {
            transport,
            server: server_of(&url),
        })
    }
}

/// `smtp://user:pass@host:25/name?x` → `host:25`.
fn server_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.split(['/', '?']).next().unwrap_or_default();
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    host.to_owned()
}

/// The `Message-ID` to write: `<id@domain>`.
fn message_id(id: &str, from: &Mailbox) -> String {
    let id = id.trim();
    if id.starts_with('<') && id.ends_with('>') {
        return id.to_owned();
    }
    let clean: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && !"<>()[]\\,;:\"".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    if clean.contains('@') {
        format!("<{clean}>")
    } else {
        format!("<{clean}@{}>", from.email.domain())
    }
}

fn mailbox(role: &str, text: &str) -> Result<Mailbox, AdapterError> {
    text.parse().map_err(|e| {
        AdapterError::Rejected(format!("the {role} address {text:?} is not usable: {e}"))
    })
}

/// 4xx replies, timeouts and broken connections are worth another try; 5xx replies and
/// what the client itself refuses (no usable authentication, a bad address) are not.
fn classify(server: &str, error: &smtp::Error) -> AdapterError {
    if error.is_permanent() {
        return AdapterError::Rejected(format!(
            "the mail server {server} refused the message: {error}"
        ));
    }
    if error.is_client() {
        return AdapterError::Rejected(format!(
            "the message could not be sent to {server}: {error}"
        ));
    }
    let what = if error.is_transient() {
        "deferred the message"
    } else if error.is_timeout() {
        "timed out"
    } else {
        "could not be reached"
    };
    AdapterError::transient(format!("the mail server {server} {what}: {error}"))
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, email: &Email) -> Result<String, AdapterError> {
        let from = mailbox("sender", &email.from)?;
        let to = mailbox("recipient", &email.to)?;
        let id = message_id(&email.message_id, &from);
        let builder = Message::builder()
            .from(from)
            .to(to)
            .subject(email.subject.clone())
            .message_id(Some(id));
        let message = match &email.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                email.text.clone(),
                html.clone(),
            )),
            None => builder.singlepart(SinglePart::plain(email.text.clone())),
        }
        .map_err(|e| AdapterError::Rejected(format!("the message could not be written: {e}")))?;
        let response = self
            .transport
            .send(message)
            .await
            .map_err(|e| classify(&self.server, &e))?;
        let lines: Vec<&str> = response.message().collect();
        Ok(format!("{} {}", response.code(), lines.join(" ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_is_named_without_credentials() {
        assert_eq!(
            server_of("smtps://u:p%40ss@mail.example.com:465"),
            "mail.example.com:465"
        );
        assert_eq!(
            server_of("smtp://127.0.0.1:2525?tls=starttls"),
            "127.0.0.1:2525"
        );
        assert_eq!(server_of("smtp://host/ehlo.name"), "host");
    }

    #[test]
    fn message_ids_take_the_senders_domain() {
        let from: Mailbox = "Shop <shop@shop.example>".parse().expect("an address");
        assert_eq!(
            message_id("ord_1.confirmed", &from),
            "<ord_1.confirmed@shop.example>"
        );
        assert_eq!(message_id("a b", &from), "<a-b@shop.example>");
        assert_eq!(message_id("x@y", &from), "<x@y>");
        assert_eq!(message_id("<x@y>", &from), "<x@y>");
    }

    // Building a pooled transport starts its pool's task, so it needs a runtime.
    #[tokio::test]
    async fn urls_lettre_cannot_read_are_rejected() {
        assert!(matches!(
            SmtpMailer::new("http://x"),
            Err(AdapterError::Rejected(_))
        ));
        assert!(SmtpMailer::new("smtp://127.0.0.1:2525").is_ok());
        assert!(SmtpMailer::new("smtp://u:p@mail.example.com:587?tls=starttls").is_ok());
        assert!(SmtpMailer::new("smtps://u:p@mail.example.com").is_ok());
    }
}
