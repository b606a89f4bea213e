//! Times as docker reads and prints them: Go's `Time.String()`, "2 minutes
//! ago", and `--since`/`--until` values (durations, RFC 3339, dates, unix
//! timestamps) turned into the `secs.nanos` the API takes.

use chrono::{DateTime, FixedOffset, Local, NaiveDate, NaiveDateTime, TimeZone, Utc};

use crate::units;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("failed to parse value as time or duration: {0:?}")]
    Unparsable(String),
    #[error("parsing time {0:?}: cannot parse")]
    Rfc3339(String),
}

/// Go's `time.Unix(secs, 0).String()` in the local zone:
/// `2024-01-02 15:04:05 +0000 UTC`.
pub fn go_time_string(secs: i64) -> String {
    let Some(t) = Local.timestamp_opt(secs, 0).single() else { return String::new() };
    let (offset, abbrev) = zone_of(secs);
    let sign = if offset < 0 { '-' } else { '+' };
    let o = offset.abs();
    format!("{} {sign}{:02}{:02} {abbrev}", t.format("%Y-%m-%d %H:%M:%S"), o / 3600, (o % 3600) / 60)
}

/// The local zone's offset (seconds) and abbreviation at a time.
fn zone_of(secs: i64) -> (i64, String) {
    let t = secs as libc::time_t;
    // SAFETY: localtime_r fills the zeroed `tm` we own; tm_zone then points
    // at a static string in libc's tz tables (or is null).
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return (0, "UTC".into());
        }
        let abbrev = if tm.tm_zone.is_null() {
            String::new()
        } else {
            std::ffi::CStr::from_ptr(tm.tm_zone).to_string_lossy().into_owned()
        };
        let abbrev = if abbrev.is_empty() || (abbrev == "GMT" && tm.tm_gmtoff == 0) { "UTC".into() } else { abbrev };
        (tm.tm_gmtoff, abbrev)
    }
}

/// "3 seconds ago" from a unix time.
pub fn ago(secs: i64) -> String {
    ago_from(secs, Utc::now().timestamp())
}

pub fn ago_from(secs: i64, now: i64) -> String {
    format!("{} ago", units::human_duration(std::time::Duration::from_secs((now - secs).max(0) as u64)))
}

/// An RFC 3339 time from the API as unix seconds (and nanos).
pub fn parse_rfc3339(s: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(s).ok()
}

/// docker's `GetTimestamp`: `--since 10m`, `--until 2024-01-02T15:04:05Z`,
/// `--since 2024-01-02`, `--since 1700000000.5`.
pub fn api_timestamp(value: &str) -> Result<String, TimeError> {
    api_timestamp_at(value, Utc::now())
}

pub fn api_timestamp_at(value: &str, now: DateTime<Utc>) -> Result<String, TimeError> {
    if value != "0"
        && let Ok(ns) = units::parse_go_duration(value)
    {
        let t = now.timestamp_nanos_opt().unwrap_or(0) - ns;
        return Ok(t.div_euclid(1_000_000_000).to_string());
    }
    let in_location = !value.contains(['z', 'Z', '+']) && value.matches('-').count() != 3;
    let parsed: Option<DateTime<FixedOffset>> = if in_location {
        let local = |n: NaiveDateTime| Local.from_local_datetime(&n).single().map(|d| d.fixed_offset());
        ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H"]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(value, f).ok())
            .or_else(|| {
                NaiveDateTime::parse_from_str(&format!("{value}:00"), "%Y-%m-%dT%H:%M").ok().filter(|_| value.len() == 13)
            })
            .or_else(|| NaiveDate::parse_from_str(value, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)))
            .and_then(local)
    } else {
        let v = value.replace('z', "Z");
        DateTime::parse_from_rfc3339(&v)
            .ok()
            .or_else(|| DateTime::parse_from_str(&v, "%Y-%m-%dT%H:%M%#z").ok())
            .or_else(|| DateTime::parse_from_str(&v.replace('Z', "+00:00"), "%Y-%m-%dT%H:%M%:z").ok())
            .or_else(|| {
                let (d, z) = v.split_at(v.len().min(10));
                let z = if z == "Z" { "+00:00" } else { z };
                DateTime::parse_from_rfc3339(&format!("{d}T00:00:00{z}")).ok()
            })
    };
    match parsed {
        Some(t) => Ok(format!("{}.{:09}", t.timestamp(), t.timestamp_subsec_nanos())),
        None if value.contains('-') => Err(TimeError::Rfc3339(value.to_owned())),
        None => {
            let (s, n) = value.split_once('.').unwrap_or((value, "0"));
            if s.parse::<i64>().is_ok() && n.parse::<u64>().is_ok() {
                Ok(value.to_owned())
            } else {
                Err(TimeError::Unparsable(value.to_owned()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times() {
        assert_eq!(ago_from(100, 103), "3 seconds ago");
        assert_eq!(ago_from(0, 120), "2 minutes ago");
        assert_eq!(ago_from(10, 5), "Less than a second ago");
    }

    #[test]
    fn api_timestamps() {
        let now = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        assert_eq!(api_timestamp_at("10m", now).unwrap(), "1699999400");
        assert_eq!(api_timestamp_at("1700000000", now).unwrap(), "1700000000");
        assert_eq!(api_timestamp_at("1700000000.5", now).unwrap(), "1700000000.5");
        assert_eq!(api_timestamp_at("2023-11-14T22:13:20Z", now).unwrap(), "1700000000.000000000");
        assert_eq!(api_timestamp_at("2023-11-14T22:13:20.25+00:00", now).unwrap(), "1700000000.250000000");
        assert_eq!(api_timestamp_at("2023-11-14Z", now).unwrap(), "1699920000.000000000");
        assert!(api_timestamp_at("2023-13-45", now).is_err());
        assert_eq!(api_timestamp_at("abc", now).unwrap_err().to_string(), "failed to parse value as time or duration: \"abc\"");
    }

    #[test]
    fn go_time_strings_have_zone_and_offset() {
        let s = go_time_string(1_700_000_000);
        assert_eq!(s.len(), "2023-11-14 22:13:20 +0000 UTC".len() - 3 + s.rsplit(' ').next().unwrap().len());
        assert!(s.contains(" +") || s.contains(" -"), "{s}");
    }
}
