//! FIX UTCTimestamp: `YYYYMMDD-HH:MM:SS[.sss...]`, always UTC.

use std::time::{Duration, Instant};

use time::{Date, Month, OffsetDateTime, Time};

/// `t + d` without the panic on overflow: a deadline that far away is "never", and 30 years
/// is as good as never for a session timer.
pub(crate) fn after(t: Instant, d: Duration) -> Instant {
    const NEVER: Duration = Duration::from_secs(30 * 365 * 86_400);
    t.checked_add(d.min(NEVER)).unwrap_or(t)
}

/// `d * num / den`, saturating (heartbeat multiples: 6/5 and 12/5 of the interval).
pub(crate) fn scaled(d: Duration, num: u32, den: u32) -> Duration {
    d.saturating_mul(num).checked_div(den).unwrap_or(d)
}

/// Formats with millisecond precision, the precision every FIX version accepts.
#[allow(clippy::arithmetic_side_effects)] // digits of calendar fields (year < 10000)
pub fn format_utc_timestamp(t: OffsetDateTime, out: &mut Vec<u8>) {
    let t = t.to_offset(time::UtcOffset::UTC);
    let two = |out: &mut Vec<u8>, n: u8| {
        out.push(b'0' + n / 10);
        out.push(b'0' + n % 10);
    };
    let year = t.year().clamp(0, 9999) as u32;
    out.push(b'0' + (year / 1000) as u8);
    out.push(b'0' + (year / 100 % 10) as u8);
    out.push(b'0' + (year / 10 % 10) as u8);
    out.push(b'0' + (year % 10) as u8);
    two(out, t.month() as u8);
    two(out, t.day());
    out.push(b'-');
    two(out, t.hour());
    out.push(b':');
    two(out, t.minute());
    out.push(b':');
    two(out, t.second());
    out.push(b'.');
    let ms = t.millisecond();
    out.push(b'0' + (ms / 100) as u8);
    out.push(b'0' + (ms / 10 % 10) as u8);
    out.push(b'0' + (ms % 10) as u8);
}

/// Formats into a fresh string.
pub fn utc_timestamp_string(t: OffsetDateTime) -> String {
    let mut v = Vec::with_capacity(21);
    format_utc_timestamp(t, &mut v);
    String::from_utf8(v).unwrap_or_default()
}

/// Parses a UTCTimestamp with 0 to 9 fractional digits. `None` for anything else.
#[allow(clippy::arithmetic_side_effects)] // at most nine fraction digits and two-digit fields, checked before use
pub fn parse_utc_timestamp(v: &[u8]) -> Option<OffsetDateTime> {
    if v.len() < 17 || v[8] != b'-' || v[11] != b':' || v[14] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let mut n = 0u32;
        for &b in v.get(r)? {
            let d = b.wrapping_sub(b'0');
            if d > 9 {
                return None;
            }
            n = n * 10 + d as u32;
        }
        Some(n)
    };
    let year = num(0..4)? as i32;
    let month = Month::try_from(num(4..6)? as u8).ok()?;
    let day = num(6..8)? as u8;
    let hour = num(9..11)? as u8;
    let minute = num(12..14)? as u8;
    // 60 is a leap second; fold it into 59 rather than refusing the message.
    let second = (num(15..17)? as u8).min(59);
    let mut nanos = 0u32;
    if v.len() > 17 {
        if v[17] != b'.' || v.len() == 18 || v.len() > 27 {
            return None;
        }
        let frac = &v[18..];
        nanos = num(18..v.len())?;
        for _ in frac.len()..9 {
            nanos *= 10;
        }
    }
    let date = Date::from_calendar_date(year, month, day).ok()?;
    let time = Time::from_hms_nano(hour, minute, second, nanos).ok()?;
    Some(date.with_time(time).assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn round_trip_and_precisions() {
        let t = datetime!(2026-11-22 09:30:10.846123 UTC);
        assert_eq!(utc_timestamp_string(t), "20261122-09:30:10.846");
        assert_eq!(parse_utc_timestamp(b"20261122-09:30:10.846123"), Some(t));
        assert_eq!(
            parse_utc_timestamp(b"20261122-09:30:10"),
            Some(datetime!(2026-11-22 09:30:10 UTC))
        );
        for bad in [
            &b"20261322-09:30:10"[..],
            b"20261122 09:30:10",
            b"20261122-09:30:1x",
            b"20261122-09:30:10.",
            b"20261122-25:30:10",
            b"2026",
        ] {
            assert_eq!(
                parse_utc_timestamp(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
