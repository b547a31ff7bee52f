//! `Retry-After` as outside services send it (RFC 9110 §10.2.3): a number of seconds or an
//! HTTP date, read into how long to wait. One reading for every client that honours it: the
//! forwarder to courier systems and the adapters' HTTP clients.

use std::time::Duration;

use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

/// The longest wait a `Retry-After` is believed for. Longer than any retry schedule here
/// waits between two tries, and short enough that a wrong clock or a hostile answer (a date
/// in the year 9999, twenty digits of seconds) cannot park a retry for ever or overflow the
/// arithmetic of whoever schedules it.
pub const MAX: Duration = Duration::from_secs(24 * 60 * 60);

/// How long `value` asks the client to wait, at most [`MAX`]; `None` when it is neither form.
///
/// An HTTP date is measured against `date`, the answer's own `Date` header, when that is a
/// valid HTTP date too: both then come from the sender's clock, so a skew between its clock
/// and ours does not change the wait (RFC 9110 §10.2.3 reads the delay that way). Otherwise
/// it is measured against `now`. A date already past means "now": zero.
pub fn parse(value: &str, date: Option<&str>, now: OffsetDateTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    // delay-seconds = 1*DIGIT: no sign, no fraction, no spaces inside (`str::parse` would
    // take a leading `+`).
    if value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(match value.parse::<u64>() {
            Ok(seconds) => Duration::from_secs(seconds).min(MAX),
            // All digits, yet beyond u64: a very long wait, capped like any other.
            Err(_) => MAX,
        });
    }
    let at = http_date(value)?;
    let from = date.and_then(|d| http_date(d.trim())).unwrap_or(now);
    let wait = at - from;
    if wait.is_negative() {
        return Some(Duration::ZERO);
    }
    Some(Duration::try_from(wait).map_or(MAX, |wait| wait.min(MAX)))
}

/// An IMF-fixdate, the form RFC 9110 §5.6.7 requires senders to use:
/// `Sun, 06 Nov 1994 08:49:37 GMT`. The obsolete RFC 850 and asctime forms are not read: a
/// service that still sends them gets its retry on our own schedule instead.
pub fn http_date(text: &str) -> Option<OffsetDateTime> {
    let format = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at = PrimitiveDateTime::parse(text, format).ok()?;
    // `time` does not check the weekday against the date; a text that names two different
    // days is not one instant, and writing the instant back out tells.
    let written = at.format(format).ok()?;
    (written == text).then(|| at.assume_utc())
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-11-27 10:00:00 UTC);

    fn wait(value: &str) -> Option<Duration> {
        parse(value, None, NOW)
    }

    #[test]
    fn delay_seconds_are_the_wait() {
        assert_eq!(wait("120"), Some(Duration::from_secs(120)));
        assert_eq!(wait(" 0 "), Some(Duration::ZERO));
        assert_eq!(wait("007"), Some(Duration::from_secs(7)));
    }

    #[test]
    fn an_http_date_is_the_wait_until_then() {
        assert_eq!(
            wait("Fri, 27 Nov 2026 10:01:30 GMT"),
            Some(Duration::from_secs(90))
        );
    }

    #[test]
    fn an_http_date_is_measured_against_the_answers_own_date_when_it_has_one() {
        // The sender's clock is five minutes ahead of ours; the wait it means is still 30 s.
        assert_eq!(
            parse(
                "Fri, 27 Nov 2026 10:05:30 GMT",
                Some("Fri, 27 Nov 2026 10:05:00 GMT"),
                NOW
            ),
            Some(Duration::from_secs(30))
        );
        // A Date header that is not a date is no better than none.
        assert_eq!(
            parse("Fri, 27 Nov 2026 10:00:30 GMT", Some("yesterday"), NOW),
            Some(Duration::from_secs(30))
        );
    }

    #[test]
    fn a_date_already_past_means_retry_now() {
        assert_eq!(wait("Sun, 06 Nov 1994 08:49:37 GMT"), Some(Duration::ZERO));
    }

    #[test]
    fn both_forms_are_capped() {
        assert_eq!(wait("86401"), Some(MAX));
        assert_eq!(wait("99999999999999999999999999"), Some(MAX));
        assert_eq!(wait("Fri, 31 Dec 9999 23:59:59 GMT"), Some(MAX));
    }

    #[test]
    fn garbage_is_no_retry_after_at_all() {
        for value in [
            "",
            "   ",
            "-5",
            "+5",
            "1.5",
            "5 s",
            "soon",
            "0x10",
            // Not IMF-fixdate: the obsolete forms, another zone, a wrong weekday, no zero pad.
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Fri, 27 Nov 2026 10:01:30 +0000",
            "Mon, 27 Nov 2026 10:01:30 GMT",
            "Fri, 27 Nov 2026 10:01:30",
            "Sat, 7 Nov 2026 10:01:30 GMT",
            "2026-11-27T10:01:30Z",
        ] {
            assert_eq!(wait(value), None, "{value:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_text_gives_a_wait_no_longer_than_the_cap_or_none(
            value in ".{0,40}",
            date in proptest::option::of(".{0,40}"),
        ) {
            let wait = parse(&value, date.as_deref(), NOW);
            proptest::prop_assert!(wait.is_none_or(|wait| wait <= MAX));
        }
    }
}
