//! Sizes and durations the way docker reads and prints them (docker's
//! `go-units` and Go's `time.ParseDuration` / `%g`).

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitsError {
    #[error("invalid size: '{0}'")]
    Size(String),
    #[error("invalid suffix: '{0}'")]
    Suffix(String),
    #[error("strconv.ParseFloat: parsing \"{0}\": invalid syntax")]
    Float(String),
    #[error("time: invalid duration \"{0}\"")]
    Duration(String),
    #[error("time: unknown unit \"{unit}\" in duration \"{input}\"")]
    DurationUnit { unit: String, input: String },
    #[error("time: missing unit in duration \"{0}\"")]
    DurationMissingUnit(String),
    #[error("failed to parse {0} as a rational number")]
    Rational(String),
    #[error("value is too precise")]
    TooPrecise,
}

const DECIMAL: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
const BINARY: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

/// `-m 512m`, `1g`, `1024`, `1.5GB`: binary multiples, as docker's `RAMInBytes`.
pub fn ram_in_bytes(s: &str) -> Result<i64, UnitsError> {
    parse_size(s, 1024)
}

/// Decimal multiples (`FromHumanSize`).
pub fn from_human_size(s: &str) -> Result<i64, UnitsError> {
    parse_size(s, 1000)
}

fn parse_size(s: &str, base: i64) -> Result<i64, UnitsError> {
    let Some(sep) = s.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ') else {
        return Err(UnitsError::Size(s.to_owned()));
    };
    let (num, sfx) = if s.as_bytes()[sep] == b' ' { (&s[..sep], &s[sep + 1..]) } else { (&s[..=sep], &s[sep + 1..]) };
    let size = parse_go_float(num).ok_or_else(|| UnitsError::Float(num.to_owned()))?;
    if size < 0.0 {
        return Err(UnitsError::Size(s.to_owned()));
    }
    if sfx.is_empty() {
        return Ok(size as i64);
    }
    let bad = || UnitsError::Suffix(sfx.to_lowercase());
    if sfx.len() > 3 {
        return Err(UnitsError::Suffix(sfx.to_owned()));
    }
    let l = sfx.to_lowercase();
    let b = l.as_bytes();
    if b[0] == b'b' {
        return if b.len() > 1 { Err(bad()) } else { Ok(size as i64) };
    }
    let pow = match b[0] {
        b'k' => 1,
        b'm' => 2,
        b'g' => 3,
        b't' => 4,
        b'p' => 5,
        _ => return Err(bad()),
    };
    if (b.len() == 2 && b[1] != b'b') || (b.len() == 3 && &l[1..] != "ib") {
        return Err(bad());
    }
    Ok((size * (base as f64).powi(pow)) as i64)
}

/// Go's `strconv.ParseFloat` for the plain decimal forms docker users type.
fn parse_go_float(s: &str) -> Option<f64> {
    if s.is_empty() || s.contains(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E')) {
        return None;
    }
    s.parse().ok()
}

/// `HumanSizeWithPrecision`: decimal units, `%.{precision}g` ("5.02MB", "1.2kB", "0B").
pub fn human_size_precision(size: f64, precision: usize) -> String {
    let (v, unit) = scale(size, 1000.0, &DECIMAL);
    format!("{}{unit}", go_g(v, precision))
}

/// `HumanSize`: four significant digits.
pub fn human_size(size: f64) -> String {
    human_size_precision(size, 4)
}

/// `BytesSize`: binary units ("1.5GiB").
pub fn bytes_size(size: f64) -> String {
    let (v, unit) = scale(size, 1024.0, &BINARY);
    format!("{}{unit}", go_g(v, 4))
}

fn scale(mut size: f64, base: f64, units: &[&'static str]) -> (f64, &'static str) {
    let mut i = 0;
    while size >= base && i < units.len() - 1 {
        size /= base;
        i += 1;
    }
    (size, units[i])
}

/// Go's `%.{prec}g`: shortest of %e and %f at `prec` significant digits,
/// trailing zeros removed.
pub fn go_g(v: f64, prec: usize) -> String {
    let prec = prec.max(1);
    if v == 0.0 {
        return "0".into();
    }
    if !v.is_finite() {
        return if v.is_nan() { "NaN".into() } else if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    let e = format!("{:.*e}", prec - 1, v);
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= prec as i32 {
        let mant = trim_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        trim_zeros(&format!("{v:.decimals$}")).to_owned()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.') } else { s }
}

/// docker's `HumanDuration` ("Less than a second", "About a minute", "3 days").
pub fn human_duration(d: Duration) -> String {
    let seconds = d.as_secs();
    if seconds < 1 {
        return "Less than a second".into();
    }
    if seconds == 1 {
        return "1 second".into();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = seconds / 60;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    // Go rounds half away from zero to the hour here.
    let hours = (d.as_secs_f64() / 3600.0).round() as u64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", d.as_secs() / 3600 / 24 / 365)
}

/// Go's `time.ParseDuration`, in nanoseconds (may be negative).
pub fn parse_go_duration(s: &str) -> Result<i64, UnitsError> {
    let invalid = || UnitsError::Duration(s.to_owned());
    let mut rest = s;
    let mut neg = false;
    if let Some(r) = rest.strip_prefix('-') {
        neg = true;
        rest = r;
    } else if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    }
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let num = &rest[..num_end];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(invalid());
        }
        let v: f64 = num.parse().map_err(|_| invalid())?;
        rest = &rest[num_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        if unit.is_empty() {
            return Err(UnitsError::DurationMissingUnit(s.to_owned()));
        }
        let mult = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(UnitsError::DurationUnit { unit: unit.to_owned(), input: s.to_owned() }),
        };
        total += v * mult;
        rest = &rest[unit_end..];
    }
    let n = total.round() as i64;
    Ok(if neg { -n } else { n })
}

/// Go's `Duration.String()` ("1m30s", "500ms", "0s").
pub fn go_duration_string(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        let (v, unit) = if u < 1_000 {
            (u as f64, "ns")
        } else if u < 1_000_000 {
            (u as f64 / 1e3, "µs")
        } else {
            (u as f64 / 1e6, "ms")
        };
        out.push_str(trim_zeros(&format!("{v:.6}")));
        out.push_str(unit);
    } else {
        let h = u / 3_600_000_000_000;
        let m = (u / 60_000_000_000) % 60;
        let s = u % 60_000_000_000;
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if h > 0 || m > 0 {
            out.push_str(&format!("{m}m"));
        }
        let secs = s as f64 / 1e9;
        out.push_str(trim_zeros(&format!("{secs:.9}")));
        out.push('s');
    }
    if neg { format!("-{out}") } else { out }
}

/// `--cpus 1.5` → NanoCpus, exact (docker uses big.Rat).
pub fn parse_cpus(s: &str) -> Result<i64, UnitsError> {
    let bad = || UnitsError::Rational(s.to_owned());
    if let Some((n, d)) = s.split_once('/') {
        let n: i128 = n.parse().map_err(|_| bad())?;
        let d: i128 = d.parse().map_err(|_| bad())?;
        if d == 0 {
            return Err(bad());
        }
        let nano = n * 1_000_000_000;
        if nano % d != 0 {
            return Err(UnitsError::TooPrecise);
        }
        return Ok((nano / d) as i64);
    }
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if (int.is_empty() && frac.is_empty()) || !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let frac_trim = frac.trim_end_matches('0');
    if frac_trim.len() > 9 {
        return Err(UnitsError::TooPrecise);
    }
    let int_v: i64 = if int.is_empty() { 0 } else { int.parse().map_err(|_| bad())? };
    let mut frac_v: i64 = 0;
    for (i, b) in frac_trim.bytes().enumerate() {
        frac_v += i64::from(b - b'0') * 10i64.pow(8 - i as u32);
    }
    let v = int_v.checked_mul(1_000_000_000).and_then(|v| v.checked_add(frac_v)).ok_or_else(bad)?;
    Ok(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ram_sizes_parse_like_docker() {
        assert_eq!(ram_in_bytes("512m"), Ok(512 * 1024 * 1024));
        assert_eq!(ram_in_bytes("1g"), Ok(1 << 30));
        assert_eq!(ram_in_bytes("1GB"), Ok(1 << 30));
        assert_eq!(ram_in_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(ram_in_bytes("1024"), Ok(1024));
        assert_eq!(ram_in_bytes("10b"), Ok(10));
        assert_eq!(ram_in_bytes("1.5k"), Ok(1536));
        assert_eq!(ram_in_bytes("32 kb"), Ok(32 * 1024));
        assert_eq!(ram_in_bytes("12x").unwrap_err().to_string(), "invalid suffix: 'x'");
        assert_eq!(ram_in_bytes("x").unwrap_err().to_string(), "invalid size: 'x'");
        assert_eq!(ram_in_bytes("").unwrap_err().to_string(), "invalid size: ''");
        assert_eq!(ram_in_bytes("1kbb").unwrap_err().to_string(), "invalid suffix: 'kbb'");
        assert_eq!(ram_in_bytes("-1").unwrap_err().to_string(), "invalid size: '-1'");
        assert_eq!(ram_in_bytes("1.2.3m").unwrap_err().to_string(), "strconv.ParseFloat: parsing \"1.2.3\": invalid syntax");
        assert_eq!(from_human_size("1kb"), Ok(1000));
    }

    #[test]
    fn human_sizes_print_like_docker() {
        assert_eq!(human_size(0.0), "0B");
        assert_eq!(human_size(1000.0), "1kB");
        assert_eq!(human_size(1024.0), "1.024kB");
        assert_eq!(human_size(5_020_000.0), "5.02MB");
        assert_eq!(human_size(4_256_768.0), "4.257MB");
        assert_eq!(human_size_precision(4_256_768.0, 3), "4.26MB");
        assert_eq!(human_size(999.0), "999B");
        assert_eq!(human_size(123_456_789_000.0), "123.5GB");
        assert_eq!(bytes_size(1536.0 * 1024.0 * 1024.0), "1.5GiB");
        assert_eq!(bytes_size(7.629e6), "7.276MiB");
        assert_eq!(go_g(123456.0, 4), "1.235e+05");
        assert_eq!(go_g(0.0001234, 3), "0.000123");
        assert_eq!(go_g(0.00001234, 3), "1.23e-05");
    }

    #[test]
    fn human_durations_read_like_docker() {
        let s = Duration::from_secs;
        assert_eq!(human_duration(Duration::from_millis(300)), "Less than a second");
        assert_eq!(human_duration(s(1)), "1 second");
        assert_eq!(human_duration(s(3)), "3 seconds");
        assert_eq!(human_duration(s(60)), "About a minute");
        assert_eq!(human_duration(s(119)), "About a minute");
        assert_eq!(human_duration(s(120)), "2 minutes");
        assert_eq!(human_duration(s(3600)), "About an hour");
        assert_eq!(human_duration(s(5399)), "About an hour");
        assert_eq!(human_duration(s(5400)), "2 hours");
        assert_eq!(human_duration(s(47 * 3600)), "47 hours");
        assert_eq!(human_duration(s(48 * 3600)), "2 days");
        assert_eq!(human_duration(s(14 * 86400)), "2 weeks");
        assert_eq!(human_duration(s(60 * 86400)), "2 months");
        assert_eq!(human_duration(s(730 * 86400)), "2 years");
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("30s"), Ok(30_000_000_000));
        assert_eq!(parse_go_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_go_duration("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(parse_go_duration("500ms"), Ok(500_000_000));
        assert_eq!(parse_go_duration("-2s"), Ok(-2_000_000_000));
        assert_eq!(parse_go_duration("0"), Ok(0));
        assert_eq!(parse_go_duration("10").unwrap_err().to_string(), "time: missing unit in duration \"10\"");
        assert_eq!(parse_go_duration("x").unwrap_err().to_string(), "time: invalid duration \"x\"");
        assert_eq!(parse_go_duration("3d").unwrap_err().to_string(), "time: unknown unit \"d\" in duration \"3d\"");
        assert_eq!(go_duration_string(90_000_000_000), "1m30s");
        assert_eq!(go_duration_string(500_000_000), "500ms");
        assert_eq!(go_duration_string(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration_string(1_500_000_000), "1.5s");
    }

    #[test]
    fn cpus_are_exact_nanos() {
        assert_eq!(parse_cpus("1.5"), Ok(1_500_000_000));
        assert_eq!(parse_cpus("2"), Ok(2_000_000_000));
        assert_eq!(parse_cpus(".5"), Ok(500_000_000));
        assert_eq!(parse_cpus("0.000000001"), Ok(1));
        assert_eq!(parse_cpus("3/2"), Ok(1_500_000_000));
        assert_eq!(parse_cpus("0.0000000001"), Err(UnitsError::TooPrecise));
        assert_eq!(parse_cpus("abc").unwrap_err().to_string(), "failed to parse abc as a rational number");
    }
}
