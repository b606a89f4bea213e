//! Timestamps as nanoseconds since the Unix epoch, and the text forms docker
//! uses for them: Go's `RFC3339Nano` (trailing zeros of the fraction
//! dropped, as in json-file logs), a fixed nine-digit form (exit times), and
//! the local-time forms of the syslog formats.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Nanoseconds since the epoch, now.
pub fn now_nanos() -> i64 {
    to_nanos(SystemTime::now())
}

pub fn to_nanos(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos().min(i64::MAX as u128) as i64,
        Err(e) => -(e.duration().as_nanos().min(i64::MAX as u128) as i64),
    }
}

pub fn from_nanos(n: i64) -> SystemTime {
    if n >= 0 {
        UNIX_EPOCH + Duration::from_nanos(n as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(n.unsigned_abs())
    }
}

/// Days since 1970-01-01 to (year, month, day) (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

struct Parts {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    min: u32,
    sec: u32,
    nanos: u32,
}

fn split(secs: i64, nanos: u32) -> Parts {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400) as u32;
    let (year, month, day) = civil_from_days(days);
    Parts { year, month, day, hour: rem / 3600, min: rem / 60 % 60, sec: rem % 60, nanos }
}

fn date_time(p: &Parts) -> String {
    format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", p.year, p.month, p.day, p.hour, p.min, p.sec)
}

fn parts_utc(n: i64) -> Parts {
    split(n.div_euclid(1_000_000_000), n.rem_euclid(1_000_000_000) as u32)
}

/// Go's `time.RFC3339Nano` in UTC: `2024-01-01T00:00:00.1234Z` (the fraction
/// without trailing zeros, none at all on a whole second). docker's json-file
/// `time` field and `logs -t` use it.
pub fn rfc3339_nano(n: i64) -> String {
    let p = parts_utc(n);
    let mut s = date_time(&p);
    if p.nanos != 0 {
        let frac = format!("{:09}", p.nanos);
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// RFC 3339 in UTC with all nine fraction digits: `2024-01-01T00:00:00.120000000Z`.
pub fn rfc3339_fixed(n: i64) -> String {
    let p = parts_utc(n);
    format!("{}.{:09}Z", date_time(&p), p.nanos)
}

/// Parses RFC 3339 (`Z` or a `±hh:mm` offset, 0 to 9 fraction digits).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let t = s.get(r)?;
        if t.bytes().all(|c| c.is_ascii_digit()) { t.parse().ok() } else { None }
    };
    let (year, month, day) = (num(0..4)? as i64, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos: u32 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &s[start..i];
        if digits.is_empty() || digits.len() > 9 {
            return None;
        }
        nanos = digits.parse::<u32>().ok()? * 10u32.pow(9 - digits.len() as u32);
    }
    let offset: i64 = match &s[i..] {
        "Z" | "z" => 0,
        rest if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) && &rest[3..4] == ":" => {
            let h = num(i + 1..i + 3)? as i64;
            let m = num(i + 4..i + 6)? as i64;
            let v = h * 3600 + m * 60;
            if rest.starts_with('-') { -v } else { v }
        }
        _ => return None,
    };
    let secs = days_from_civil(year, month, day) * 86_400 + (hour * 3600 + min * 60 + sec) as i64 - offset;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos as i64)
}

/// Local time of `n`: the parts and the offset east of UTC in seconds.
fn local(n: i64) -> (Parts, i64) {
    let secs = n.div_euclid(1_000_000_000);
    let nanos = n.rem_euclid(1_000_000_000) as u32;
    let t = secs as libc::time_t;
    // SAFETY: localtime_r writes into the tm we pass; both pointers are valid.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    let offset = if ok { tm.tm_gmtoff } else { 0 };
    (split(secs + offset, nanos), offset)
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// Go's `time.Stamp` in local time: `Jan  2 15:04:05` (syslog's RFC 3164 form).
pub fn stamp_local(n: i64) -> String {
    let (p, _) = local(n);
    format!("{} {:>2} {:02}:{:02}:{:02}", MONTHS[p.month as usize - 1], p.day, p.hour, p.min, p.sec)
}

fn zone(offset: i64) -> String {
    if offset == 0 {
        return "Z".to_owned();
    }
    let sign = if offset < 0 { '-' } else { '+' };
    let o = offset.unsigned_abs();
    format!("{sign}{:02}:{:02}", o / 3600, o / 60 % 60)
}

/// RFC 3339 in local time, whole seconds (`2006-01-02T15:04:05+01:00`), or
/// with microseconds: syslog's rfc5424 and rfc5424micro formats.
pub fn rfc3339_local(n: i64, micros: bool) -> String {
    let (p, offset) = local(n);
    let mut s = date_time(&p);
    if micros {
        s.push_str(&format!(".{:06}", p.nanos / 1000));
    }
    s.push_str(&zone(offset));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_rfc3339nano_trims_fraction_zeros() {
        assert_eq!(rfc3339_nano(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_nano(1_704_067_200_123_456_789), "2024-01-01T00:00:00.123456789Z");
        assert_eq!(rfc3339_nano(1_704_067_200_120_000_000), "2024-01-01T00:00:00.12Z");
        assert_eq!(rfc3339_nano(951_782_400_000_000_001), "2000-02-29T00:00:00.000000001Z");
        assert_eq!(rfc3339_fixed(1_704_067_200_120_000_000), "2024-01-01T00:00:00.120000000Z");
    }

    #[test]
    fn parse_round_trips_and_takes_offsets() {
        for n in [0, 1_704_067_200_123_456_789, 951_782_400_000_000_001, 4_102_444_799_999_999_999] {
            assert_eq!(parse_rfc3339(&rfc3339_nano(n)), Some(n));
            assert_eq!(parse_rfc3339(&rfc3339_fixed(n)), Some(n));
        }
        assert_eq!(parse_rfc3339("2024-01-01T01:00:00+01:00"), Some(1_704_067_200_000_000_000));
        assert_eq!(parse_rfc3339("2023-12-31T23:30:00.5-00:30"), Some(1_704_067_200_500_000_000));
        for bad in ["2024-01-01", "2024-13-01T00:00:00Z", "2024-01-01T00:00:00", "2024-01-01T00:00:00.Z", "x024-01-01T00:00:00Z"] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn stamp_pads_the_day_with_a_space() {
        // Whatever the local zone, the shape is fixed.
        let s = stamp_local(1_704_153_600_000_000_000);
        assert_eq!(s.len(), 15, "{s}");
        assert_eq!(&s[3..4], " ");
        let r = rfc3339_local(1_704_153_600_000_000_000, true);
        assert!(r.contains('.') && (r.ends_with('Z') || r.len() == 32), "{r}");
    }
}
