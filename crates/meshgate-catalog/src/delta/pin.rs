//! Time travel in a table name: `events@v=42` reads Delta version 42 of `events`,
//! `events@ts=2026-11-30T12:00:00Z` the version that was current then. The pin is the
//! last `@` part of the name, after any descriptor version pin (`events@2@v=42`).

use chrono::{DateTime, Utc};

/// A pinned Delta version, as written after `@`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeltaPin {
    /// `v=42`: exactly this version.
    Version(u64),
    /// `ts=<RFC 3339>`: the newest version committed at or before this time.
    Timestamp(DateTime<Utc>),
}

impl DeltaPin {
    /// Splits a table name into the name it pins and its Delta pin, when its last `@`
    /// part is one (`v=…` or `ts=…`); `None` for any other name. A pin that does not
    /// parse is `Some((name, Err(message)))`, the message naming what is wrong.
    pub fn split(table: &str) -> Option<(&str, Result<DeltaPin, String>)> {
        let (name, pin) = table.rsplit_once('@')?;
        if let Some(number) = pin.strip_prefix("v=") {
            let parsed = number.parse::<u64>().ok().filter(|_| number.bytes().all(|b| b.is_ascii_digit()));
            return Some((
                name,
                parsed.map(DeltaPin::Version).ok_or_else(|| {
                    format!("'{number}' is not a Delta version: write @v= with a whole number, for example {name}@v=3")
                }),
            ));
        }
        if let Some(time) = pin.strip_prefix("ts=") {
            return Some((
                name,
                DateTime::parse_from_rfc3339(time).map(|time| DeltaPin::Timestamp(time.with_timezone(&Utc))).map_err(
                    |_| {
                        format!(
                            "'{time}' is not an RFC 3339 timestamp: write @ts= with a date, time and zone, \
                             for example {name}@ts=2026-11-30T12:00:00Z"
                        )
                    },
                ),
            ));
        }
        None
    }
}

impl std::fmt::Display for DeltaPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeltaPin::Version(version) => write!(f, "v={version}"),
            DeltaPin::Timestamp(time) => write!(f, "ts={}", time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn versions_and_timestamps_pin() {
        assert_eq!(DeltaPin::split("events@v=42"), Some(("events", Ok(DeltaPin::Version(42)))));
        assert_eq!(DeltaPin::split("events@v=0"), Some(("events", Ok(DeltaPin::Version(0)))));
        let noon = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).single().unwrap();
        assert_eq!(DeltaPin::split("events@ts=2026-11-30T12:00:00Z"), Some(("events", Ok(DeltaPin::Timestamp(noon)))));
        // Any zone; the pin is the instant.
        assert_eq!(
            DeltaPin::split("events@ts=2026-11-30T13:00:00+01:00"),
            Some(("events", Ok(DeltaPin::Timestamp(noon))))
        );
        // After a descriptor version pin.
        assert_eq!(DeltaPin::split("events@2@v=7"), Some(("events@2", Ok(DeltaPin::Version(7)))));
        assert_eq!(DeltaPin::Timestamp(noon).to_string(), "ts=2026-11-30T12:00:00Z");
        assert_eq!(DeltaPin::Version(3).to_string(), "v=3");
    }

    #[test]
    fn other_names_are_not_delta_pins() {
        assert_eq!(DeltaPin::split("events"), None);
        assert_eq!(DeltaPin::split("events@2"), None);
        assert_eq!(DeltaPin::split("events@2.1.0"), None);
        assert_eq!(DeltaPin::split("events@version=3"), None);
    }

    #[test]
    fn malformed_pins_say_what_to_write() {
        for bad in ["events@v=abc", "events@v=", "events@v=-1", "events@v=+3", "events@v=1.5"] {
            let (name, pin) = DeltaPin::split(bad).unwrap();
            assert_eq!(name, "events");
            let message = pin.unwrap_err();
            assert!(message.contains("is not a Delta version") && message.contains("events@v=3"), "{message}");
        }
        for bad in ["events@ts=2026-11-30", "events@ts=2026-11-30T12:00:00", "events@ts=yesterday"] {
            let message = DeltaPin::split(bad).unwrap().1.unwrap_err();
            assert!(message.contains("is not an RFC 3339 timestamp"), "{message}");
        }
    }
}
