//! Session schedules with QuickFIX's settings (StartTime, EndTime, StartDay, EndDay,
//! TimeZone): when a session may be logged on. Pure functions of an instant, so the session
//! stays sans-IO and the tests can walk a week in microseconds.
//!
//! Daily: from StartTime to EndTime every day (an EndTime before the StartTime runs over
//! midnight; equal times mean a continuous session that starts a new period every day at
//! that time). Weekly: from StartDay StartTime to EndDay EndTime. Both ends are inclusive, as
//! in QuickFIX. Times are wall-clock times in `TimeZone` (an IANA name; UTC by default), so
//! daylight-saving changes move the UTC instants, as a venue's calendar does.

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// When a session may be logged on.
#[derive(Clone, Debug)]
pub struct Schedule {
    start: Time,
    end: Time,
    /// Weekly schedule: both set.
    days: Option<(Weekday, Weekday)>,
    tz: TimeZone,
}

fn parse_time(key: &str, v: &str) -> Result<Time, String> {
    v.parse::<Time>()
        .map_err(|e| format!("{key} {v:?}: not a time of day HH:MM:SS ({e})"))
}

fn parse_day(key: &str, v: &str) -> Result<Weekday, String> {
    let d = v.trim().to_ascii_lowercase();
    let day = match d.get(..3).unwrap_or(&d) {
        "mon" => Weekday::Monday,
        "tue" => Weekday::Tuesday,
        "wed" => Weekday::Wednesday,
        "thu" => Weekday::Thursday,
        "fri" => Weekday::Friday,
        "sat" => Weekday::Saturday,
        "sun" => Weekday::Sunday,
        _ => return Err(format!("{key} {v:?}: not a day of the week")),
    };
    Ok(day)
}

impl Schedule {
    /// From the configuration's text. `start_day` and `end_day` go together.
    pub fn parse(
        start_time: &str,
        end_time: &str,
        start_day: Option<&str>,
        end_day: Option<&str>,
        time_zone: Option<&str>,
    ) -> Result<Schedule, String> {
        let start = parse_time("start_time", start_time)?;
        let end = parse_time("end_time", end_time)?;
        let days = match (start_day, end_day) {
            (Some(s), Some(e)) => Some((parse_day("start_day", s)?, parse_day("end_day", e)?)),
            (None, None) => None,
            _ => return Err("start_day and end_day go together".into()),
        };
        let tz = match time_zone {
            None => TimeZone::UTC,
            Some(name) => {
                TimeZone::get(name).map_err(|e| format!("time_zone {name:?}: unknown ({e})"))?
            }
        };
        Ok(Schedule {
            start,
            end,
            days,
            tz,
        })
    }

    fn at(&self, date: Date, time: Time) -> Option<Timestamp> {
        self.tz
            .to_ambiguous_zoned(date.to_datetime(time))
            .compatible()
            .ok()
            .map(|z| z.timestamp())
    }

    /// The period that starts on local date `d`, if one does.
    fn period_from(&self, d: Date) -> Option<(Timestamp, Timestamp)> {
        let start = self.at(d, self.start)?;
        let end_date = match self.days {
            None => {
                if self.end > self.start {
                    d
                } else {
                    d.checked_add(1.day()).ok()?
                }
            }
            Some((sd, ed)) => {
                if d.weekday() != sd {
                    return None;
                }
                let mut ahead = i64::from(ed.since(sd));
                if ahead == 0 && self.end <= self.start {
                    ahead = 7;
                }
                d.checked_add(ahead.days()).ok()?
            }
        };
        let end = self.at(end_date, self.end)?;
        Some((start, end))
    }

    /// The period containing `t` (start and end, inclusive), or `None` outside the schedule.
    /// For a continuous daily session (start = end) the period that began last.
    pub fn period_at(&self, t: Timestamp) -> Option<(Timestamp, Timestamp)> {
        let today = t.to_zoned(self.tz.clone()).date();
        let continuous = self.days.is_none() && self.start == self.end;
        (0..=8)
            .filter_map(|back: i64| today.checked_sub(back.days()).ok())
            .filter_map(|d| self.period_from(d))
            .find(|(s, e)| *s <= t && (t <= *e || (continuous && t < *e)))
    }

    /// The next period start after `t`.
    pub fn next_start(&self, t: Timestamp) -> Option<Timestamp> {
        let today = t.to_zoned(self.tz.clone()).date();
        (0..=8)
            .filter_map(|ahead: i64| today.checked_add(ahead.days()).ok())
            .filter_map(|d| self.period_from(d))
            .map(|(s, _)| s)
            .find(|s| *s > t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn daily_and_overnight() {
        let s = Schedule::parse("08:00:00", "17:00:00", None, None, None).unwrap();
        assert!(s.period_at(ts("2026-12-04T07:59:59Z")).is_none());
        let (a, b) = s.period_at(ts("2026-12-04T12:00:00Z")).unwrap();
        assert_eq!(
            (a, b),
            (ts("2026-12-04T08:00:00Z"), ts("2026-12-04T17:00:00Z"))
        );
        assert!(s.period_at(ts("2026-12-04T17:00:01Z")).is_none());
        assert_eq!(
            s.next_start(ts("2026-12-04T17:30:00Z")),
            Some(ts("2026-12-05T08:00:00Z"))
        );
        let night = Schedule::parse("22:00:00", "06:00:00", None, None, None).unwrap();
        let (a, b) = night.period_at(ts("2026-12-05T03:00:00Z")).unwrap();
        assert_eq!(
            (a, b),
            (ts("2026-12-04T22:00:00Z"), ts("2026-12-05T06:00:00Z"))
        );
        assert!(night.period_at(ts("2026-12-05T12:00:00Z")).is_none());
        // continuous: always in, a new period every day at 00:00
        let all = Schedule::parse("00:00:00", "00:00:00", None, None, None).unwrap();
        let (a, _) = all.period_at(ts("2026-12-04T13:00:00Z")).unwrap();
        assert_eq!(a, ts("2026-12-04T00:00:00Z"));
    }

    #[test]
    fn weekly_in_a_time_zone_across_daylight_saving() {
        // Sunday 17:00 to Friday 17:00 New York time (FX week).
        let s = Schedule::parse(
            "17:00:00",
            "17:00:00",
            Some("Sun"),
            Some("friday"),
            Some("America/New_York"),
        )
        .unwrap();
        // Wednesday 2026-12-02 noon UTC: in; the period began Sunday 2026-11-29 22:00 UTC (EST)
        let (a, b) = s.period_at(ts("2026-12-02T12:00:00Z")).unwrap();
        assert_eq!(
            (a, b),
            (ts("2026-11-29T22:00:00Z"), ts("2026-12-04T22:00:00Z"))
        );
        // Saturday: out
        assert!(s.period_at(ts("2026-12-05T12:00:00Z")).is_none());
        assert_eq!(
            s.next_start(ts("2026-12-05T12:00:00Z")),
            Some(ts("2026-12-06T22:00:00Z"))
        );
        // In July (EDT) the same wall time is an hour earlier in UTC.
        let (a, _) = s.period_at(ts("2026-07-01T12:00:00Z")).unwrap();
        assert_eq!(a, ts("2026-06-28T21:00:00Z"));
    }

    #[test]
    fn bad_settings_say_which() {
        for (args, says) in [
            (("8am", "17:00:00", None, None, None), "start_time"),
            (
                ("08:00:00", "17:00:00", Some("Funday"), Some("Fri"), None),
                "start_day",
            ),
            (
                ("08:00:00", "17:00:00", Some("Mon"), None, None),
                "go together",
            ),
            (
                ("08:00:00", "17:00:00", None, None, Some("Mars/Olympus")),
                "time_zone",
            ),
        ] {
            let e = Schedule::parse(args.0, args.1, args.2, args.3, args.4).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
    }
}
