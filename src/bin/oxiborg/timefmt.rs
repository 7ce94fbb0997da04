//! Times and sizes rendered exactly as borg renders them.

use chrono::{DateTime, Local, NaiveDateTime, TimeZone, Utc};

/// Largest item time borg shows (2038-01-17 03:14:07 UTC), in ns.
const MAX_NS: i64 = (i32::MAX as i64 - 48 * 3600) * 1_000_000_000;

/// A stored UTC archive timestamp in local time, microseconds dropped (borg's rule).
pub fn archive_time(utc: &NaiveDateTime) -> DateTime<Local> {
    let secs = utc.and_utc().timestamp();
    local(secs, 0)
}

fn local(secs: i64, nanos: u32) -> DateTime<Local> {
    let utc = Utc
        .timestamp_opt(secs, nanos)
        .single()
        .unwrap_or_else(|| Utc.timestamp_opt(0, 0).single().expect("epoch"));
    utc.with_timezone(&Local)
}

/// An item timestamp (ns) as borg shows it: clamped to [0, 2038], rounded to microseconds the
/// way CPython's `datetime.fromtimestamp` rounds a float.
pub fn item_time(ns: i64) -> DateTime<Local> {
    let ns = ns.clamp(0, MAX_NS);
    let f = ns as f64 / 1e9;
    let mut ip = f.trunc();
    let frac = f - ip;
    let mut us = round_half_even(frac * 1e6);
    if us >= 1_000_000.0 {
        us -= 1_000_000.0;
        ip += 1.0;
    }
    local(ip as i64, (us as u32) * 1000)
}

fn round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
        r - x.signum()
    } else {
        r
    }
}

/// An item timestamp (ns) as borg 2 shows it: clamped to [0, year 2262], truncated to
/// microseconds.
pub fn item_time_borg2(ns: i64) -> DateTime<Local> {
    const MAX: i64 = (i64::MAX - 48 * 3600 * 1_000_000_000) / 1_000_000_000 * 1_000_000_000;
    let ns = ns.clamp(0, MAX);
    let us = ns / 1000;
    local(us / 1_000_000, ((us % 1_000_000) * 1000) as u32)
}

/// A stored UTC archive timestamp in local time, microseconds kept (borg 2).
pub fn archive_time_borg2(utc: &NaiveDateTime) -> DateTime<Local> {
    let t = utc.and_utc();
    local(t.timestamp(), t.timestamp_subsec_micros() * 1000)
}

/// `%Y-%m-%dT%H:%M:%S.%f%:z` (borg 2's JSON and `iso*` placeholders: with the UTC offset).
pub fn iso_tz(t: &DateTime<Local>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f%:z").to_string()
}

/// `%Y-%m-%dT%H:%M:%S.%f` (borg's JSON and `iso*` placeholders).
pub fn iso(t: &DateTime<Local>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

/// `%a, %Y-%m-%d %H:%M:%S` (borg's `format_time`).
pub fn human(t: &DateTime<Local>) -> String {
    t.format(super::format::DEFAULT_TIME).to_string()
}

/// Python's `round(x, 2)` via correctly rounded formatting.
fn round2(x: f64) -> f64 {
    format!("{x:.2}").parse().unwrap_or(x)
}

/// borg's `format_file_size`: `507 B`, `1.23 MB` (decimal) or `1.18 MiB` (IEC).
pub fn file_size(v: i64, iec: bool) -> String {
    let (units, power): (&[&str], f64) = if iec {
        (
            &["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"],
            1024.0,
        )
    } else {
        (&["", "k", "M", "G", "T", "P", "E", "Z", "Y"], 1000.0)
    };
    let mut num = v as f64;
    let mut prec = 0;
    let mut unit = units[units.len() - 1];
    for (i, u) in units[..units.len() - 1].iter().enumerate() {
        let shown = if i == 0 { num } else { round2(num) };
        if shown.abs() < power {
            unit = u;
            break;
        }
        num /= power;
        prec = 2;
    }
    format!("{num:.prec$} {unit}B")
}

/// borg's `format_timedelta`: `1 hours 1 minutes 1.25 seconds`.
pub fn timedelta(total: f64) -> String {
    let s = total.rem_euclid(60.0);
    let m = ((total / 60.0) as i64).rem_euclid(60);
    let h = ((total / 3600.0) as i64).rem_euclid(24);
    let days = (total / 86400.0).floor() as i64;
    let mut txt = format!("{s:.2} seconds");
    if m != 0 {
        txt = format!("{m} minutes {txt}");
    }
    if h != 0 {
        txt = format!("{h} hours {txt}");
    }
    if days != 0 {
        txt = format!("{days} days {txt}");
    }
    txt
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_borg() {
        assert_eq!(file_size(0, false), "0 B");
        assert_eq!(file_size(507, false), "507 B");
        assert_eq!(file_size(1000, false), "1.00 kB");
        assert_eq!(file_size(999_995, false), "1.00 MB");
        assert_eq!(file_size(999_994, false), "999.99 kB");
        assert_eq!(file_size(1234567, false), "1.23 MB");
        assert_eq!(file_size(1234567, true), "1.18 MiB");
        assert_eq!(file_size(1023, true), "1023 B");
        assert_eq!(file_size(-1234, false), "-1.23 kB");
    }

    #[test]
    fn durations_like_borg() {
        assert_eq!(timedelta(0.039154), "0.04 seconds");
        assert_eq!(timedelta(60.0), "1 minutes 0.00 seconds");
        assert_eq!(timedelta(3661.25), "1 hours 1 minutes 1.25 seconds");
        assert_eq!(timedelta(3.0 * 86400.0 + 5.0), "3 days 5.00 seconds");
    }

    #[test]
    fn item_time_rounds_to_microseconds() {
        let t = item_time(1_577_934_245_123_456_789);
        assert_eq!(
            t.with_timezone(&Utc).format("%S%.6f").to_string(),
            "05.123457"
        );
        assert_eq!(item_time(-5).with_timezone(&Utc).timestamp(), 0);
        assert_eq!(
            item_time(i64::MAX)
                .with_timezone(&Utc)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string(),
            "2038-01-17 03:14:07"
        );
    }
}
