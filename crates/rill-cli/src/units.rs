//! Human-friendly durations (`7d`, `100ms`, `2s`) and sizes (`1GiB`,
//! `16KiB`, `500KB`), for flags, and their rendering in tables.

use std::time::Duration;

/// A duration of at least a millisecond (timeouts: `0` or `1ns` would
/// give up at once).
pub fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        d if d.is_zero() => Err("must be longer than 0".into()),
        d if d < Duration::from_millis(1) => Err(format!(
            "{:?} is less than a millisecond; write e.g. 100ms or 5s",
            text.trim()
        )),
        d => Ok(d),
    }
}

/// A topic's retention time in milliseconds (`retention.ms`): a duration
/// of whole milliseconds, at least 1ms, or `unlimited` (-1: records are
/// kept until the size limit, if any, removes them).
pub fn parse_retention(text: &str) -> Result<i64, String> {
    if matches!(
        text.trim().to_ascii_lowercase().as_str(),
        "unlimited" | "forever" | "infinite" | "-1"
    ) {
        return Ok(-1);
    }
    let d = parse_duration(text)?;
    if d.is_zero() {
        return Err("a retention of 0 would delete every record at once; \
             write a duration such as 7d, or `unlimited` to keep records"
            .into());
    }
    if d.subsec_nanos() % 1_000_000 != 0 {
        return Err(format!(
            "{:?} is not a whole number of milliseconds; retention is counted in ms",
            text.trim()
        ));
    }
    i64::try_from(d.as_millis()).map_err(|_| format!("{:?} is too long", text.trim()))
}

/// A size, or `unlimited` (-1).
pub fn parse_size_or_unlimited(text: &str) -> Result<i64, String> {
    if matches!(
        text.trim().to_ascii_lowercase().as_str(),
        "unlimited" | "-1"
    ) {
        return Ok(-1);
    }
    let n = parse_size(text)?;
    i64::try_from(n).map_err(|_| format!("{:?} is too large", text.trim()))
}

/// Parses `<integer><unit>` with unit `ns`, `us`, `ms`, `s`, `m`, `h`, `d`
/// or `w`. A bare `0` is allowed; any other bare number is refused, because
/// `--linger 10` is ambiguous between seconds and milliseconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = split_duration(text)?;
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration; write e.g. 100ms, 2s, 7d"))?;
    let per_unit = match unit.to_ascii_lowercase().as_str() {
        "" if n == 0 => Duration::ZERO,
        "" => {
            return Err(format!(
                "{text:?} needs a unit: ms, s, m, h, d (e.g. {n}ms)"
            ))
        }
        "ns" => Duration::from_nanos(1),
        "us" | "µs" => Duration::from_micros(1),
        "ms" => Duration::from_millis(1),
        "s" | "sec" | "secs" => Duration::from_secs(1),
        // `1M` reads as a month as easily as a minute.
        _ if unit == "M" => {
            return Err(format!(
            "{text:?} is ambiguous: write {n}min (or {n}m) for minutes, or days for months (30d)"
        ))
        }
        "mo" | "mon" | "month" | "months" => {
            return Err(format!(
                "{text:?}: months differ in length; write days instead (30d)"
            ))
        }
        "m" | "min" | "mins" => Duration::from_secs(60),
        "h" | "hr" | "hrs" => Duration::from_secs(3600),
        "d" | "day" | "days" => Duration::from_secs(86_400),
        "w" | "week" | "weeks" => Duration::from_secs(7 * 86_400),
        other => return Err(format!("unknown duration unit {other:?} in {text:?}")),
    };
    let n = u32::try_from(n).map_err(|_| format!("{text:?} is too long"))?;
    per_unit
        .checked_mul(n)
        .ok_or_else(|| format!("{text:?} is too long"))
}

/// Parses `<integer>[unit]`: no unit or `B` is bytes; `KB`, `MB`, `GB`,
/// `TB` are powers of 1000; `KiB`, `MiB`, `GiB`, `TiB` (and `K`, `M`, `G`,
/// `T`) powers of 1024, as Kafka and Fluvio users expect of memory sizes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (number, unit) = split_number(text)?;
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size; write e.g. 16KiB, 1GiB, 500KB"))?;
    let per_unit: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "mb" => 1000_u64.pow(2),
        "gb" => 1000_u64.pow(3),
        "tb" => 1000_u64.pow(4),
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        other => return Err(format!("unknown size unit {other:?} in {text:?}")),
    };
    n.checked_mul(per_unit)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// A size as a `usize` (buffer and batch sizes).
pub fn parse_usize_size(text: &str) -> Result<usize, String> {
    let n = parse_size(text)?;
    usize::try_from(n).map_err(|_| format!("{text:?} is too large"))
}

/// A size of at least one byte (batch and request sizes).
pub fn parse_nonzero_size(text: &str) -> Result<usize, String> {
    match parse_usize_size(text)? {
        0 => Err("must be at least 1B".into()),
        n => Ok(n),
    }
}

/// A count of at least one.
pub fn parse_positive_usize(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// `("90", "m")` from `"90m"`; a fraction is refused with the same
/// duration in the next smaller unit (`1.5h`: write `90m`).
fn split_duration(text: &str) -> Result<(&str, &str), String> {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(end);
    if let Some(rest) = unit.strip_prefix(['.', ',']) {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = rest[digits..].trim();
        let value: Option<f64> = format!("{number}.{}", &rest[..digits]).parse().ok();
        let smaller = match unit.to_ascii_lowercase().as_str() {
            "w" | "week" | "weeks" => Some((7.0, "d")),
            "d" | "day" | "days" => Some((24.0, "h")),
            "h" | "hr" | "hrs" => Some((60.0, "m")),
            "m" | "min" | "mins" => Some((60.0, "s")),
            "s" | "sec" | "secs" => Some((1000.0, "ms")),
            "ms" => Some((1000.0, "us")),
            _ => None,
        };
        let hint = match (value, smaller) {
            (Some(v), Some((factor, smaller))) if (v * factor).fract() == 0.0 => {
                format!(" (write {}{smaller})", v * factor)
            }
            _ => " (use a smaller unit: 90m, not 1.5h)".into(),
        };
        return Err(format!("{text:?} is not a whole number{hint}"));
    }
    Ok((number, unit.trim()))
}

/// `("12", "KiB")` from `"12KiB"`; fractions are refused with a hint.
fn split_number(text: &str) -> Result<(&str, &str), String> {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(end);
    if unit.starts_with(['.', ',']) {
        return Err(format!(
            "{text:?} is not a whole number; use a smaller unit (1536B, not 1.5KiB)"
        ));
    }
    Ok((number, unit.trim()))
}

/// kcat's escapes in separators and templates: `\t`, `\n`, `\r`, `\0`
/// and `\\`; any other backslash stays as it is.
pub fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// An RFC 3339 time as milliseconds since the epoch:
/// `2026-12-01T13:45:00Z`, `2026-12-01T13:45:00.250+01:00` (`t`, `z` and a
/// space for `T` too), or a date alone (`2026-12-01`, midnight UTC). A time
/// without `Z` or an offset is refused rather than read in some time zone.
pub fn parse_rfc3339(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let bad = |why: &str| {
        format!("{text:?} is not an RFC 3339 time ({why}); write e.g. 2026-12-01T13:45:00Z")
    };
    let number = |s: &str, what: &str| -> Result<i64, String> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(&format!("bad {what}")));
        }
        s.parse().map_err(|_| bad(&format!("bad {what}")))
    };
    let (date, time) = match text.find(['T', 't', ' ']) {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    };
    let mut parts = date.splitn(3, '-');
    let (Some(y), Some(mo), Some(d)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad("the date is YYYY-MM-DD"));
    };
    if y.len() != 4 || mo.len() != 2 || d.len() != 2 {
        return Err(bad("the date is YYYY-MM-DD"));
    }
    let (year, month, day) = (number(y, "year")?, number(mo, "month")?, number(d, "day")?);
    if !(1..=12).contains(&month) {
        return Err(bad("no such month"));
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if !(1..=month_days).contains(&day) {
        return Err(bad("no such day in that month"));
    }
    // Days since 1970-01-01 (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let Some(time) = time else {
        return Ok(days * 86_400_000);
    };
    // The zone: Z, or +HH:MM / -HH:MM at the end.
    let (clock, offset_ms) = if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        (clock, 0)
    } else {
        let Some(at) = time.rfind(['+', '-']) else {
            return Err(bad(
                "no time zone: end with Z for UTC or an offset such as +01:00",
            ));
        };
        let (clock, zone) = time.split_at(at);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let Some((zh, zm)) = zone[1..].split_once(':') else {
            return Err(bad("the offset is +HH:MM"));
        };
        if zh.len() != 2 || zm.len() != 2 {
            return Err(bad("the offset is +HH:MM"));
        }
        let (zh, zm) = (number(zh, "offset")?, number(zm, "offset")?);
        if zh > 23 || zm > 59 {
            return Err(bad("bad offset"));
        }
        (clock, sign * (zh * 3600 + zm * 60) * 1000)
    };
    let (hms, fraction) = match clock.split_once(['.', ',']) {
        Some((hms, f)) => (hms, Some(f)),
        None => (clock, None),
    };
    let mut fields = hms.split(':');
    let (Some(h), Some(mi), Some(sec), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(bad("the time is HH:MM:SS"));
    };
    if h.len() != 2 || mi.len() != 2 || sec.len() != 2 {
        return Err(bad("the time is HH:MM:SS"));
    }
    let (h, mi, sec) = (
        number(h, "hour")?,
        number(mi, "minute")?,
        number(sec, "second")?,
    );
    // 60 is a leap second, read as the next second's start.
    if h > 23 || mi > 59 || sec > 60 {
        return Err(bad("no such time of day"));
    }
    let millis = match fraction {
        None => 0,
        Some(f) => {
            number(f, "fraction of a second")?;
            // Milliseconds: the first three digits (more are truncated).
            let digits: String = f.chars().chain("000".chars()).take(3).collect();
            number(&digits, "fraction of a second")?
        }
    };
    Ok(days * 86_400_000 + ((h * 60 + mi) * 60 + sec) * 1000 + millis - offset_ms)
}

/// `604800000` ms as `7d`: the largest unit that divides it exactly.
pub fn format_millis(ms: i64) -> String {
    if ms < 0 {
        return "forever".into();
    }
    // Days rather than weeks: people write retention as 7d.
    const UNITS: [(i64, &str); 5] = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1000, "s"),
        (1, "ms"),
    ];
    if ms == 0 {
        return "0ms".into();
    }
    for (size, unit) in UNITS {
        if ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// `1073741824` as `1GiB`: the largest binary unit that divides it exactly.
pub fn format_bytes(bytes: i64) -> String {
    if bytes < 0 {
        return "unlimited".into();
    }
    const UNITS: [(i64, &str); 4] = [
        (1 << 40, "TiB"),
        (1 << 30, "GiB"),
        (1 << 20, "MiB"),
        (1 << 10, "KiB"),
    ];
    for (size, unit) in UNITS {
        if bytes >= size && bytes % size == 0 {
            return format!("{}{unit}", bytes / size);
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("3 h"), Ok(Duration::from_secs(3 * 3600)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert!(parse_duration("10").unwrap_err().contains("needs a unit"));
        assert!(parse_duration("5 fortnights").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("ms").is_err());
        assert!(parse_duration("99999999999d").is_err());
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1min"), Ok(Duration::from_secs(60)));
    }

    #[test]
    fn durations_say_what_is_wrong_in_durations() {
        let e = parse_duration("1.5h").unwrap_err();
        assert_eq!(e, "\"1.5h\" is not a whole number (write 90m)");
        assert!(!e.contains("B"), "not about sizes: {e}");
        assert!(parse_duration("2.5s").unwrap_err().contains("write 2500ms"));
        assert!(parse_duration("0.3333h")
            .unwrap_err()
            .contains("smaller unit"));
        let e = parse_duration("1M").unwrap_err();
        assert!(
            e.contains("ambiguous") && e.contains("1min") && e.contains("30d"),
            "{e}"
        );
        assert!(parse_duration("2months").unwrap_err().contains("30d"));
    }

    #[test]
    fn retention_refuses_what_means_nothing_and_knows_unlimited() {
        assert_eq!(parse_retention("7d"), Ok(7 * 86_400_000));
        assert_eq!(parse_retention("unlimited"), Ok(-1));
        assert_eq!(parse_retention("-1"), Ok(-1));
        assert!(parse_retention("0").unwrap_err().contains("unlimited"));
        assert!(parse_retention("1ns").unwrap_err().contains("milliseconds"));
        assert!(parse_retention("1500us").is_err());
        assert!(parse_positive_duration("0").is_err());
        assert!(parse_positive_duration("1ns").is_err());
        assert_eq!(parse_size_or_unlimited("unlimited"), Ok(-1));
        assert_eq!(parse_size_or_unlimited("1KiB"), Ok(1024));
    }

    #[test]
    fn rfc3339_times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_rfc3339("2000-02-29T00:00:00.123Z"),
            Ok(951_782_400_123)
        );
        assert_eq!(
            parse_rfc3339("2026-11-27T12:53:45.999Z"),
            Ok(1_795_784_025_999)
        );
        assert_eq!(
            parse_rfc3339("2026-11-27 13:53:45.9999+01:00"),
            Ok(1_795_784_025_999)
        );
        assert_eq!(
            parse_rfc3339("2026-11-27t07:23:45.999-05:30"),
            Ok(1_795_784_025_999)
        );
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59.999Z"), Ok(-1));
        assert_eq!(parse_rfc3339("2026-11-27"), Ok(1_795_737_600_000));
        for (bad, says) in [
            ("2026-11-27T12:53:45", "time zone"),
            ("2026-13-01T00:00:00Z", "month"),
            ("2026-02-29T00:00:00Z", "day"),
            ("2026-11-27T24:00:00Z", "time of day"),
            ("2026-11-27T12:53Z", "HH:MM:SS"),
            ("27/11/2026", "YYYY-MM-DD"),
            ("1h", "YYYY-MM-DD"),
            ("2026-11-27T12:53:45+0100", "+HH:MM"),
            ("2026-11-27T12:53:45.x1Z", "fraction"),
        ] {
            let e = parse_rfc3339(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn escapes_as_kcat() {
        assert_eq!(unescape("\\t"), "\t");
        assert_eq!(unescape("a\\nb\\\\c\\q\\"), "a\nb\\c\\q\\");
        assert_eq!(unescape("::"), "::");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16KiB"), Ok(16 * 1024));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1gib"), Ok(1 << 30));
        assert_eq!(parse_size("500KB"), Ok(500_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("2M"), Ok(2 << 20));
        assert!(parse_size("1.5GiB").unwrap_err().contains("whole number"));
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("99999999999TiB").is_err());
    }

    #[test]
    fn rendering_round_trips() {
        assert_eq!(format_millis(604_800_000), "7d");
        assert_eq!(format_millis(86_400_000), "1d");
        assert_eq!(format_millis(90_000), "90s");
        assert_eq!(format_millis(1500), "1500ms");
        assert_eq!(format_millis(-1), "forever");
        assert_eq!(format_bytes(1 << 30), "1GiB");
        assert_eq!(format_bytes(16 * 1024), "16KiB");
        assert_eq!(format_bytes(1000), "1000B");
        assert_eq!(format_bytes(-1), "unlimited");
        for ms in [1_i64, 1000, 60_000, 3_600_000, 86_400_000, 123_456] {
            let d = parse_duration(&format_millis(ms)).unwrap();
            assert_eq!(d.as_millis() as i64, ms);
        }
    }
}
