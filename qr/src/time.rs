//! Validation clock and RFC 3339 times (the library never reads the system clock: callers pass
//! [`Clock`]s in).

/// A validation clock: the time to validate at, and the allowed skew in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// Seconds since the Unix epoch (UTC).
    pub now: i64,
    /// Tolerance in seconds for the sender's and receiver's clocks disagreeing.
    pub skew: u32,
}

impl Clock {
    /// A clock at `now` (Unix seconds) with `skew` seconds of tolerance.
    #[must_use]
    pub fn new(now: i64, skew: u32) -> Self {
        Clock { now, skew }
    }
}

/// A time that is not in the accepted RFC 3339 form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("time {got:?} is not RFC 3339 (expected e.g. 2026-11-23T10:00:00Z or +02:00): {why}")]
pub struct TimeParseError {
    /// The text given.
    pub got: String,
    /// What is wrong.
    pub why: &'static str,
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `(year, month 1..=12, day 1..=31)` of a day count since 1970-01-01, proleptic
/// Gregorian (H. Hinnant's `civil_from_days`, the inverse of `days_from_civil`). Total: every
/// `i64` day count in the range of real times maps to a date; used by every date the product prints.
#[must_use]
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Formats Unix seconds as RFC 3339 UTC (`2026-11-23T10:00:00Z`).
#[must_use]
pub fn format_rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM|±HHMM)` (also with a space for `T`) into Unix
/// seconds; the fraction is dropped. A bare integer is taken as Unix seconds.
pub fn parse_rfc3339(text: &str) -> Result<i64, TimeParseError> {
    let err = |why| TimeParseError { got: text.to_owned(), why };
    let t = text.trim();
    if !t.is_empty() && t.bytes().enumerate().all(|(i, b)| b.is_ascii_digit() || (i == 0 && b == b'-')) {
        return t.parse::<i64>().map_err(|_| err("integer out of range"));
    }
    let b = t.as_bytes();
    let num = |from: usize, len: usize| -> Result<i64, TimeParseError> {
        let s = b.get(from..from + len).ok_or_else(|| err("too short"))?;
        if !s.iter().all(u8::is_ascii_digit) {
            return Err(err("expected digits"));
        }
        std::str::from_utf8(s).ok().and_then(|s| s.parse().ok()).ok_or_else(|| err("expected digits"))
    };
    let sep = |at: usize, want: &[u8]| -> Result<(), TimeParseError> {
        match b.get(at) {
            Some(c) if want.contains(c) => Ok(()),
            _ => Err(err("unexpected separator")),
        }
    };
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    sep(4, b"-")?;
    sep(7, b"-")?;
    sep(10, b"Tt ")?;
    let (h, mi, s) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    sep(13, b":")?;
    sep(16, b":")?;
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return Err(err("field out of range"));
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return Err(err("empty fraction"));
        }
    }
    let offset = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&c @ (b'+' | b'-')) => {
            let oh = num(i + 1, 2)?;
            let om = match b.len() - i {
                6 => {
                    sep(i + 3, b":")?;
                    num(i + 4, 2)?
                }
                5 => num(i + 3, 2)?,
                _ => return Err(err("bad offset")),
            };
            if oh > 23 || om > 59 {
                return Err(err("offset out of range"));
            }
            let o = oh * 3600 + om * 60;
            if c == b'+' { o } else { -o }
        }
        _ => return Err(err("missing time zone (Z or ±HH:MM)")),
    };
    Ok(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_zulu_offsets_and_fractions() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_rfc3339("2021-05-03T18:00:00Z"), Ok(1_620_064_800));
        assert_eq!(parse_rfc3339("2021-05-03T20:00:00+02:00"), Ok(1_620_064_800));
        assert_eq!(parse_rfc3339("2021-05-03T20:00:00+0200"), Ok(1_620_064_800));
        assert_eq!(parse_rfc3339("2021-05-03T18:00:00.999Z"), Ok(1_620_064_800));
        assert_eq!(parse_rfc3339("1620064800"), Ok(1_620_064_800));
    }

    #[test]
    fn refuses_times_without_zone_or_with_bad_fields() {
        for bad in ["2021-05-03T18:00:00", "2021-13-03T18:00:00Z", "2021-05-03", "", "2021-05-03T18:00:00+2", "x"] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn format_is_inverse_of_parse() {
        for t in [0i64, 1_620_064_800, 4_102_444_799, -86_401] {
            assert_eq!(parse_rfc3339(&format_rfc3339(t)), Ok(t));
        }
    }
}
