//! Human durations in settings: `"3000ms"`, `"30s"`, `"5m"`, `"24h"`, `"7d"`, or several
//! parts in decreasing order (`"1h30m"`, `"1d 12h"`). A bare number is refused: every
//! duration names its unit.

use std::time::Duration;

/// The units, largest first, with their length in milliseconds.
const UNITS: [(&str, u64); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// What a duration looks like, for error messages.
pub(crate) const EXPECTED: &str =
    "a duration with a unit, such as \"3000ms\", \"30s\", \"5m\", \"24h\", \"7d\" or \"1h30m\"";

/// Parse a human duration.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let refuse = || format!("{text:?} is not {EXPECTED}");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(refuse());
    }
    let mut total: u64 = 0;
    let mut last_unit = usize::MAX;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(refuse());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| refuse())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let index = UNITS
            .iter()
            .position(|(name, _)| *name == unit)
            .ok_or_else(refuse)?;
        // Each unit at most once, largest first: "1h30m", not "30m1h" or "1h1h".
        if last_unit != usize::MAX && index <= last_unit {
            return Err(refuse());
        }
        last_unit = index;
        total = number
            .checked_mul(UNITS[index].1)
            .and_then(|ms| total.checked_add(ms))
            .ok_or_else(refuse)?;
        rest = rest[unit_len..].trim_start();
    }
    Ok(Duration::from_millis(total))
}

/// Write a duration the way [`parse`] reads it, in the largest units that fit exactly
/// (sub-millisecond parts are dropped).
pub(crate) fn format(d: Duration) -> String {
    let mut ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (name, len) in UNITS {
        if ms >= len {
            out.push_str(&format!("{}{name}", ms / len));
            ms %= len;
        }
    }
    out
}

/// `#[serde(with = "duration")]` for a [`Duration`] written as a human duration string.
pub(crate) fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(*d))
}

/// See [`serialize`].
pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    struct Visitor;
    impl serde::de::Visitor<'_> for Visitor {
        type Value = Duration;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(EXPECTED)
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Duration, E> {
            parse(v).map_err(E::custom)
        }
    }
    d.deserialize_str(Visitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit_and_combinations() {
        assert_eq!(parse("3000ms"), Ok(Duration::from_millis(3000)));
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse(" 1d 12h "), Ok(Duration::from_secs(129_600)));
        assert_eq!(parse("1m500ms"), Ok(Duration::from_millis(60_500)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn refuses_what_is_not_a_duration() {
        for bad in [
            "",
            " ",
            "30",
            "s",
            "30x",
            "30 seconds",
            "-5s",
            "1.5h",
            "30m1h",
            "1h1h",
            "5ms3s",
            "h30",
            "99999999999999999999d",
            "9999999999999999d",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains("duration with a unit"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn format_round_trips() {
        for text in [
            "0s", "3ms", "30s", "5m", "23h", "7d", "1h30m", "1d12h", "1m500ms",
        ] {
            let d = parse(text).unwrap();
            assert_eq!(format(d), text);
            assert_eq!(parse(&format(d)), Ok(d));
        }
        assert_eq!(format(Duration::from_secs(3600)), "1h");
        assert_eq!(format(Duration::from_millis(3000)), "3s");
        assert_eq!(format(Duration::from_secs(86_400)), "1d");
    }
}
