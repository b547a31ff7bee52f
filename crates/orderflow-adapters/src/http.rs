//! What the HTTP clients share: a client with timeouts, and the reading of an answer into
//! success, [`AdapterError::Transient`] or [`AdapterError::Rejected`].

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{DATE, HeaderMap, RETRY_AFTER};
use time::OffsetDateTime;

use crate::AdapterError;

/// How long one request to an outside service may take, connecting included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A client whose every request gives up after `timeout` (and whose connecting gives up
/// sooner), following no redirects: a provider's API does not redirect, and a redirected POST
/// is not the same request.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, AdapterError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("orderflow/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| AdapterError::rejected(format!("the HTTP client could not be built: {e}")))
}

/// A request that got no answer. Timeouts, refused or dropped connections and broken bodies
/// are all worth another try; only a request that could not even be built is not. The URL
/// is left out of the message: a webhook URL is a secret.
pub(crate) fn unanswered(service: &str, error: reqwest::Error) -> AdapterError {
    let error = error.without_url();
    if error.is_builder() {
        return AdapterError::rejected(format!("the request to {service} is not valid: {error}"));
    }
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    AdapterError::transient(format!("the request to {service} {what}: {error}"))
}

/// Statuses that say "not now" rather than "no".
pub(crate) fn is_transient(status: StatusCode) -> bool {
    status.is_server_error()
        || matches!(
            status,
            StatusCode::REQUEST_TIMEOUT
                | StatusCode::CONFLICT
                | StatusCode::TOO_EARLY
                | StatusCode::TOO_MANY_REQUESTS
        )
}

/// `Retry-After` in seconds or as an HTTP date (measured by the answer's own `Date`), capped
/// at [`orderflow_connectors::retry_after::MAX`].
pub(crate) fn retry_after(headers: &HeaderMap, now: OffsetDateTime) -> Option<Duration> {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    orderflow_connectors::retry_after::parse(text(RETRY_AFTER)?, text(DATE), now)
}

/// An answer read whole.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) body: Vec<u8>,
}

impl Answer {
    pub(crate) async fn read(
        service: &str,
        sent: Result<reqwest::Response, reqwest::Error>,
    ) -> Result<Self, AdapterError> {
        let response = sent.map_err(|e| unanswered(service, e))?;
        let status = response.status();
        let retry_after = retry_after(response.headers(), OffsetDateTime::now_utc());
        let body = response
            .bytes()
            .await
            .map_err(|e| unanswered(service, e))?
            .to_vec();
        Ok(Self {
            status,
            retry_after,
            body,
        })
    }

    /// The body as JSON of type `T`. A success the client cannot read is transient: the
    /// request may have acted, and a retry under the same key gets the same answer back once
    /// whatever garbled it has passed.
    pub(crate) fn json<T: serde::de::DeserializeOwned>(
        &self,
        service: &str,
    ) -> Result<T, AdapterError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            AdapterError::transient(format!(
                "{service} answered {} with a body that is not understood: {e}",
                self.status
            ))
        })
    }

    /// The body as text, cut short, for error messages.
    pub(crate) fn snippet(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let text = text.trim();
        match text.char_indices().nth(200) {
            Some((at, _)) => format!("{}…", &text[..at]),
            None => text.to_owned(),
        }
    }

    /// The failure for a status that is not a success, when nothing better is known.
    pub(crate) fn failure(&self, service: &str, detail: &str) -> AdapterError {
        let message = format!("{service} answered {}: {detail}", self.status);
        if is_transient(self.status) {
            AdapterError::Transient {
                message,
                retry_after: self.retry_after,
            }
        } else {
            AdapterError::Rejected(message)
        }
    }
}

/// Whether `id` can go into a URL path as it is: ids from providers are letters, digits and
/// underscores.
pub(crate) fn is_path_safe(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use reqwest::header::{HeaderName, HeaderValue};
    use time::macros::datetime;

    use super::*;

    fn retry_after_of(pairs: &[(HeaderName, &'static str)]) -> Option<Duration> {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(name.clone(), HeaderValue::from_static(value));
        }
        retry_after(&headers, datetime!(2026-11-27 10:00:00 UTC))
    }

    #[test]
    fn a_providers_retry_after_is_read_in_seconds_or_as_an_http_date_and_garbage_is_ignored() {
        assert_eq!(
            retry_after_of(&[(RETRY_AFTER, "2")]),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_after_of(&[(RETRY_AFTER, "Fri, 27 Nov 2026 10:01:00 GMT")]),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            retry_after_of(&[
                (RETRY_AFTER, "Fri, 27 Nov 2026 09:00:10 GMT"),
                (DATE, "Fri, 27 Nov 2026 09:00:00 GMT"),
            ]),
            Some(Duration::from_secs(10)),
            "measured by the provider's clock, an hour behind ours"
        );
        assert_eq!(
            retry_after_of(&[(RETRY_AFTER, "Fri, 31 Dec 9999 23:59:59 GMT")]),
            Some(orderflow_connectors::retry_after::MAX)
        );
        assert_eq!(retry_after_of(&[(RETRY_AFTER, "tomorrow")]), None);
        assert_eq!(retry_after_of(&[]), None);
    }
}
