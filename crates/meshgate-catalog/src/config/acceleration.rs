//! `acceleration:` in a descriptor and in the mesh file: which products meshgate holds
//! in memory, how it keeps them fresh, and how much memory they may take together.
//!
//! ```yaml
//! # mesh file
//! acceleration:
//!   budget: 2GiB            # all accelerated copies together (default 1GiB)
//!   spill:                  # optional: copies that do not fit in memory go to local files
//!     directory: /var/lib/meshgate/spill
//!     budget: 200GiB        # all spilled copies together (default 64GiB)
//!   default:                # every product, unless its descriptor says otherwise
//!     refresh: on_change
//! # descriptor
//! acceleration:
//!   engine: memory          # the only engine
//!   refresh: every 10m      # on_change (default) | every DURATION | manual
//!   max_bytes: 4GiB
//!   spill: false            # stay in memory or be refused (default: spill when the mesh can)
//! # or, to opt out of the mesh default:
//! acceleration: { enabled: false }
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::contract::{format_duration, parse_duration};
use crate::error::ConfigError;

/// Memory for accelerated copies when the mesh file sets no budget.
pub const DEFAULT_BUDGET: u64 = 1 << 30;

/// Local disk for spilled copies when `acceleration.spill` sets no budget.
pub const DEFAULT_SPILL_BUDGET: u64 = 64 << 30;

/// The section as written (descriptor, or the mesh file's `default`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccelerationSpec {
    pub enabled: Option<bool>,
    pub engine: Option<String>,
    /// `on_change`, `manual`, `every 10m`, or `{ every: 10m }`.
    pub refresh: Option<serde_norway::Value>,
    pub max_bytes: Option<String>,
    pub spill: Option<bool>,
}

/// The mesh file's section as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeshAccelerationSpec {
    pub budget: Option<String>,
    pub spill: Option<SpillSpec>,
    pub default: Option<AccelerationSpec>,
}

/// `acceleration.spill` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpillSpec {
    pub directory: String,
    pub budget: Option<String>,
}

/// Where copies too large for memory are written, and how much disk they may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpillConfig {
    /// Absolute (a relative one resolves against the mesh file's directory).
    pub directory: PathBuf,
    pub budget: u64,
}

/// A product held in memory: how it is refreshed and how large it may be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acceleration {
    pub refresh: Refresh,
    /// At most this many bytes in memory for this product.
    pub max_bytes: Option<u64>,
    /// Written to local files when it does not fit in memory (the mesh's
    /// `acceleration.spill` set, and the product does not say `spill: false`).
    pub spill: bool,
}

/// When an accelerated copy is built again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    /// When the product's files change (checked at every listing TTL).
    OnChange,
    /// When the product's files changed, checked at this interval.
    Every(Duration),
    /// Only when the configuration is reloaded.
    Manual,
}

impl std::fmt::Display for Refresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refresh::OnChange => f.write_str("on_change"),
            Refresh::Every(interval) => write!(f, "every {}", format_duration(*interval)),
            Refresh::Manual => f.write_str("manual"),
        }
    }
}

/// The mesh file's budget, checked; errors name `acceleration.budget`.
pub(crate) fn budget(spec: Option<&MeshAccelerationSpec>, errors: &mut Vec<ConfigError>) -> u64 {
    let Some(text) = spec.and_then(|spec| spec.budget.as_deref()) else { return DEFAULT_BUDGET };
    positive_size(text, |message| errors.push(ConfigError::new("acceleration.budget", message)))
        .unwrap_or(DEFAULT_BUDGET)
}

/// A size more than zero, or `None` with the mistake reported.
fn positive_size(text: &str, mut report: impl FnMut(String)) -> Option<u64> {
    match parse_byte_size(text) {
        Ok(0) => {
            report("must be more than zero".into());
            None
        }
        Ok(bytes) => Some(bytes),
        Err(message) => {
            report(message);
            None
        }
    }
}

/// The mesh file's `acceleration.spill`, checked; errors name its fields.
pub(crate) fn spill(
    spec: Option<&MeshAccelerationSpec>,
    base_dir: &Path,
    errors: &mut Vec<ConfigError>,
) -> Option<SpillConfig> {
    let spec = spec?.spill.as_ref()?;
    let before = errors.len();
    let written = spec.directory.trim();
    if written.is_empty() {
        errors.push(ConfigError::new("acceleration.spill.directory", "must name a local directory"));
    } else if written.contains("://") {
        errors.push(ConfigError::new(
            "acceleration.spill.directory",
            format!("'{written}' is a URL: write the path of a local directory (spilled copies go to local disk)"),
        ));
    }
    let budget = match spec.budget.as_deref() {
        None => Some(DEFAULT_SPILL_BUDGET),
        Some(text) => {
            positive_size(text, |message| errors.push(ConfigError::new("acceleration.spill.budget", message)))
        }
    };
    let joined = base_dir.join(written);
    let directory = super::validate::normalize(&std::path::absolute(&joined).unwrap_or(joined));
    budget.filter(|_| errors.len() == before).map(|budget| SpillConfig { directory, budget })
}

/// The mesh default, checked on its own (errors at `acceleration.default.*`), so a
/// mistake there is reported once rather than for every product.
pub(crate) fn check_default(spec: Option<&MeshAccelerationSpec>, spill: bool, errors: &mut Vec<ConfigError>) {
    if let Some(default) = spec.and_then(|spec| spec.default.as_ref()) {
        resolve("acceleration.default", Some(default), None, spill, errors);
    }
}

/// A product's acceleration: its own section over the mesh default, field by field.
/// `None` when neither asks for it, or its own says `enabled: false`. `spill_configured`:
/// the mesh file sets `acceleration.spill` (without it, `spill: true` is a mistake).
pub(crate) fn resolve(
    path: &str,
    own: Option<&AccelerationSpec>,
    default: Option<&AccelerationSpec>,
    spill_configured: bool,
    errors: &mut Vec<ConfigError>,
) -> Option<Acceleration> {
    if own.is_none() && default.is_none() {
        return None;
    }
    let enabled = own.and_then(|spec| spec.enabled).or(default.and_then(|spec| spec.enabled)).unwrap_or(true);
    // A field the product sets is checked at its path; one from the default was checked there.
    let field = |pick: fn(&AccelerationSpec) -> bool| match own {
        Some(spec) if pick(spec) => (own, path.to_owned()),
        _ => (default, String::new()),
    };
    let before = errors.len();
    let mut report = |at: &str, field: &str, message: String| {
        if !at.is_empty() {
            errors.push(ConfigError::new(format!("{at}.{field}"), message));
        }
    };
    let (from, at) = field(|spec| spec.engine.is_some());
    if let Some(engine) = from.and_then(|spec| spec.engine.as_deref())
        && engine != "memory"
    {
        report(&at, "engine", format!("unknown engine '{engine}' (the only engine is memory)"));
    }
    let (from, at) = field(|spec| spec.refresh.is_some());
    let refresh = match from.and_then(|spec| spec.refresh.as_ref()) {
        None => Refresh::OnChange,
        Some(value) => refresh(value).unwrap_or_else(|message| {
            report(&at, "refresh", message);
            Refresh::OnChange
        }),
    };
    let (from, at) = field(|spec| spec.max_bytes.is_some());
    let max_bytes = from
        .and_then(|spec| spec.max_bytes.as_deref())
        .and_then(|text| positive_size(text, |message| report(&at, "max_bytes", message)));
    let (from, at) = field(|spec| spec.spill.is_some());
    let spill = match from.and_then(|spec| spec.spill) {
        Some(true) if !spill_configured && enabled => {
            report(
                &at,
                "spill",
                "the mesh file sets no acceleration.spill directory to spill to (acceleration: { spill: { directory: PATH } })"
                    .into(),
            );
            false
        }
        Some(spill) => spill,
        None => spill_configured,
    };
    (enabled && errors.len() == before).then_some(Acceleration { refresh, max_bytes, spill })
}

fn refresh(value: &serde_norway::Value) -> Result<Refresh, String> {
    use serde_norway::Value;
    let every = |text: &str| parse_duration(text).map(Refresh::Every);
    match value {
        Value::String(text) => match text.trim() {
            "on_change" => Ok(Refresh::OnChange),
            "manual" => Ok(Refresh::Manual),
            other => match other.strip_prefix("every") {
                Some(interval) if interval.starts_with([' ', ':']) => every(interval.trim_start_matches(':').trim()),
                _ => {
                    Err(format!("'{other}' is not a refresh (on_change, manual, or every DURATION such as every 10m)"))
                }
            },
        },
        Value::Mapping(map) if map.len() == 1 => match map.get("every") {
            Some(Value::String(text)) => every(text),
            _ => Err("a refresh mapping is { every: DURATION }, such as { every: 10m }".into()),
        },
        _ => Err("must be on_change, manual, or every DURATION (such as every 10m)".into()),
    }
}

/// Parses `512MiB`, `2GiB`, `1.5GB`, `4096` (bytes). Units are powers of 1024.
pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| format!("'{text}' is not a size like 512MiB or 2GiB"))?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(format!("'{text}' has an unknown unit (use B, KiB, MiB, GiB or TiB)")),
    };
    let bytes = number * factor;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("'{text}' is too large"));
    }
    Ok(bytes as u64)
}

/// A byte count as people read it: `1.5 GiB`, `12.0 MiB`, `900 B`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> AccelerationSpec {
        serde_norway::from_str(yaml).unwrap()
    }

    #[test]
    fn own_fields_override_the_default_one_by_one() {
        let default = spec("{ refresh: every 10m, max_bytes: 1GiB }");
        let own = spec("{ max_bytes: 2GiB }");
        let mut errors = Vec::new();
        let resolved = resolve("p", Some(&own), Some(&default), false, &mut errors).unwrap();
        assert!(errors.is_empty());
        assert_eq!(resolved.refresh, Refresh::Every(Duration::from_secs(600)));
        assert_eq!(resolved.max_bytes, Some(2 << 30));
        assert!(!resolved.spill);
        assert_eq!(resolve("p", Some(&spec("{ enabled: false }")), Some(&default), false, &mut errors), None);
        assert_eq!(resolve("p", None, None, false, &mut errors), None);
        assert_eq!(resolve("p", None, Some(&default), false, &mut errors).unwrap().max_bytes, Some(1 << 30));
        // Where the mesh spills, every product does unless it says otherwise.
        assert!(resolve("p", None, Some(&default), true, &mut errors).unwrap().spill);
        assert!(!resolve("p", Some(&spec("{ spill: false }")), Some(&default), true, &mut errors).unwrap().spill);
        assert!(errors.is_empty());
    }

    #[test]
    fn mistakes_are_reported_at_their_paths() {
        let own = spec("{ engine: duckdb, refresh: sometimes, max_bytes: lots }");
        let mut errors = Vec::new();
        assert_eq!(resolve("domains.sales.products[0].acceleration", Some(&own), None, false, &mut errors), None);
        let paths: Vec<&str> = errors.iter().map(|error| error.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "domains.sales.products[0].acceleration.engine",
                "domains.sales.products[0].acceleration.refresh",
                "domains.sales.products[0].acceleration.max_bytes"
            ]
        );
        // A mistake in the default is the default's (reported once, by check_default),
        // not each product's.
        let mut errors = Vec::new();
        resolve("p", None, Some(&own), false, &mut errors);
        assert!(errors.is_empty());
        let mesh = MeshAccelerationSpec { budget: None, spill: None, default: Some(own) };
        check_default(Some(&mesh), false, &mut errors);
        assert_eq!(errors.len(), 3);
        assert!(errors.iter().all(|error| error.path.starts_with("acceleration.default.")));
    }

    #[test]
    fn spilling_needs_a_directory_and_says_where_it_is() {
        let mut errors = Vec::new();
        assert_eq!(resolve("p.acceleration", Some(&spec("{ spill: true }")), None, false, &mut errors), None);
        assert_eq!(errors[0].path, "p.acceleration.spill");
        assert!(errors[0].message.contains("acceleration.spill directory"), "{}", errors[0].message);
        // Nothing to spill when not accelerated.
        let off = spec("{ enabled: false, spill: true }");
        assert_eq!(resolve("q.acceleration", Some(&off), None, false, &mut errors), None);
        assert_eq!(errors.len(), 1);

        let mesh = |yaml: &str| -> MeshAccelerationSpec { serde_norway::from_str(yaml).unwrap() };
        let mut errors = Vec::new();
        let base = Path::new("/srv/mesh");
        let spilled = spill(Some(&mesh("{ spill: { directory: ../spill/./copies } }")), base, &mut errors).unwrap();
        assert_eq!(spilled, SpillConfig { directory: "/srv/spill/copies".into(), budget: DEFAULT_SPILL_BUDGET });
        // Next to a mesh file named without a directory: absolute all the same.
        let here = spill(Some(&mesh("{ spill: { directory: spill } }")), Path::new(""), &mut errors).unwrap();
        assert_eq!(here.directory, std::env::current_dir().unwrap().join("spill"));
        assert_eq!(spill(Some(&mesh("{ spill: { directory: s3://b/x, budget: 0 } }")), base, &mut errors), None);
        let paths: Vec<&str> = errors.iter().map(|error| error.path.as_str()).collect();
        assert_eq!(paths, ["acceleration.spill.directory", "acceleration.spill.budget"]);
    }

    #[test]
    fn refresh_forms() {
        let parse = |yaml: &str| refresh(&serde_norway::from_str(yaml).unwrap());
        assert_eq!(parse("on_change"), Ok(Refresh::OnChange));
        assert_eq!(parse("manual"), Ok(Refresh::Manual));
        assert_eq!(parse("every 90s"), Ok(Refresh::Every(Duration::from_secs(90))));
        assert_eq!(parse("'every: 2h'"), Ok(Refresh::Every(Duration::from_secs(7200))));
        assert_eq!(parse("{ every: 5m }"), Ok(Refresh::Every(Duration::from_secs(300))));
        assert!(parse("everyday").is_err());
        assert!(parse("every 0s").is_err());
        assert!(parse("{ each: 5m }").is_err());
        assert_eq!(Refresh::Every(Duration::from_secs(600)).to_string(), "every 10m");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_byte_size("4GiB"), Ok(4 << 30));
        assert_eq!(parse_byte_size("1.5 KiB"), Ok(1536));
        assert!(parse_byte_size("4 parsecs").is_err());
        assert!(parse_byte_size("1e30TiB").is_err());
        assert_eq!(format_bytes(1536), "1.5 KiB");
        assert_eq!(format_bytes(900), "900 B");
    }
}
