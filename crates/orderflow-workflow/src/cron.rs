//! Five-field cron expressions (minute hour day-of-month month day-of-week), in UTC: `*`,
//! numbers, ranges `a-b`, lists `a,b` and steps `*/n` or `a-b/n`. As in classic cron, when both
//! day fields are restricted a day matching either one fires.

use time::{Duration, OffsetDateTime, Time};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cron expression {expression:?}: {reason}")]
pub struct CronError {
    pub expression: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    expression: String,
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    days_restricted: bool,
    weekdays_restricted: bool,
}

impl Cron {
    pub fn parse(expression: &str) -> Result<Self, CronError> {
        let error = |reason: String| CronError {
            expression: expression.to_owned(),
            reason,
        };
        let fields: Vec<&str> = expression.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = fields[..] else {
            return Err(error(format!("expected 5 fields, found {}", fields.len())));
        };
        let field = |text: &str, low: u32, high: u32, name: &str| {
            parse_field(text, low, high).map_err(|reason| error(format!("{name}: {reason}")))
        };
        let mut weekdays = field(weekday, 0, 7, "day of week")?;
        // 7 is Sunday too.
        if weekdays & (1 << 7) != 0 {
            weekdays |= 1;
        }
        Ok(Self {
            expression: expression.to_owned(),
            minutes: field(minute, 0, 59, "minute")?,
            hours: field(hour, 0, 23, "hour")?,
            days: field(day, 1, 31, "day of month")?,
            months: field(month, 1, 12, "month")?,
            weekdays,
            days_restricted: day != "*",
            weekdays_restricted: weekday != "*",
        })
    }

    pub fn expression(&self) -> &str {
        &self.expression
    }

    fn day_matches(&self, at: OffsetDateTime) -> bool {
        let day = self.days & (1 << at.day()) != 0;
        let weekday = self.weekdays & (1 << at.weekday().number_days_from_sunday()) != 0;
        match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => day || weekday,
            (true, false) => day,
            (false, true) => weekday,
            (false, false) => true,
        }
    }

    /// The first whole minute strictly after `after` that the expression matches; `None` if
    /// none comes within eight years (`0 0 30 2 *`, say).
    pub fn next_after(&self, after: OffsetDateTime) -> Option<OffsetDateTime> {
        let after = after.to_offset(time::UtcOffset::UTC);
        let mut at = after.replace_time(Time::from_hms(after.hour(), after.minute(), 0).ok()?)
            + Duration::minutes(1);
        let limit = after + Duration::days(366 * 8);
        while at <= limit {
            if self.months & (1 << u8::from(at.month())) == 0 || !self.day_matches(at) {
                at = at.replace_time(Time::MIDNIGHT) + Duration::days(1);
                continue;
            }
            if self.hours & (1 << at.hour()) == 0 {
                at = at.replace_time(Time::from_hms(at.hour(), 0, 0).ok()?) + Duration::hours(1);
                continue;
            }
            if self.minutes & (1 << at.minute()) == 0 {
                at += Duration::minutes(1);
                continue;
            }
            return Some(at);
        }
        None
    }
}

fn parse_field(text: &str, low: u32, high: u32) -> Result<u64, String> {
    let mut bits = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step
                    .parse()
                    .map_err(|_| format!("{step:?} is not a step"))?;
                if step == 0 {
                    return Err("a step of 0".into());
                }
                (range, step)
            }
            None => (part, 1),
        };
        let (from, to) = if range == "*" {
            (low, high)
        } else if let Some((a, b)) = range.split_once('-') {
            (number(a, low, high)?, number(b, low, high)?)
        } else {
            let single = number(range, low, high)?;
            // `5/15` means from 5 to the end, every 15.
            (single, if step > 1 { high } else { single })
        };
        if from > to {
            return Err(format!("range {from}-{to} runs backwards"));
        }
        let mut value = from;
        while value <= to {
            bits |= 1 << value;
            value += step;
        }
    }
    Ok(bits)
}

fn number(text: &str, low: u32, high: u32) -> Result<u32, String> {
    let value: u32 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if (low..=high).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{value} is outside {low}-{high}"))
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn next(expression: &str, after: OffsetDateTime) -> OffsetDateTime {
        Cron::parse(expression)
            .and_then(|cron| {
                cron.next_after(after).ok_or(CronError {
                    expression: expression.into(),
                    reason: "never".into(),
                })
            })
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn every_minute_fires_on_the_next_whole_minute() {
        assert_eq!(
            next("* * * * *", datetime!(2026-11-22 10:15:30 UTC)),
            datetime!(2026-11-22 10:16 UTC)
        );
        assert_eq!(
            next("* * * * *", datetime!(2026-11-22 10:15 UTC)),
            datetime!(2026-11-22 10:16 UTC)
        );
    }

    #[test]
    fn a_daily_job_waits_for_tomorrow_once_today_has_passed() {
        assert_eq!(
            next("30 2 * * *", datetime!(2026-11-22 10:00 UTC)),
            datetime!(2026-11-23 02:30 UTC)
        );
    }

    #[test]
    fn steps_ranges_and_lists_combine() {
        assert_eq!(
            next("*/15 9-17 * * 1-5", datetime!(2026-11-21 12:00 UTC)), // a Saturday
            datetime!(2026-11-23 09:00 UTC)
        );
        assert_eq!(
            next("0,30 * * * *", datetime!(2026-11-22 10:01 UTC)),
            datetime!(2026-11-22 10:30 UTC)
        );
    }

    #[test]
    fn either_day_field_fires_when_both_are_restricted() {
        // The 1st of the month or any Sunday: Sunday 2026-11-22 comes first.
        assert_eq!(
            next("0 0 1 * 0", datetime!(2026-11-20 00:00 UTC)),
            datetime!(2026-11-22 00:00 UTC)
        );
    }

    #[test]
    fn leap_day_is_found_years_ahead() {
        assert_eq!(
            next("0 0 29 2 *", datetime!(2026-03-01 00:00 UTC)),
            datetime!(2028-02-29 00:00 UTC)
        );
    }

    #[test]
    fn malformed_expressions_are_refused_with_the_reason() {
        for bad in [
            "* * * *",
            "60 * * * *",
            "*/0 * * * *",
            "5-1 * * * *",
            "a * * * *",
        ] {
            assert!(Cron::parse(bad).is_err(), "{bad} was accepted");
        }
    }
}
