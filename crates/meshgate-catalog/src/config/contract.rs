//! A product's data contract, validated: its quality checks, freshness SLA, check
//! schedule, what failing does, and where the product comes from.

use std::time::Duration;

pub use super::model::{OnFailure, Role, Severity};

/// The contract of one product (empty when its descriptor declares none).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Contract {
    pub checks: Vec<Check>,
    pub freshness: Option<Freshness>,
    /// How often the checks run again; `None`: at load and reload only.
    pub schedule: Option<Duration>,
    pub on_failure: OnFailure,
    /// Sources the product is derived from, as written (`domain.product` or free-form).
    pub upstream: Vec<String>,
}

impl Contract {
    /// Whether there is anything to run.
    pub fn has_checks(&self) -> bool {
        !self.checks.is_empty() || self.freshness.is_some()
    }
}

/// One quality check.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// Unique within the product.
    pub name: String,
    /// Config path of the check, for error messages.
    pub path: String,
    pub severity: Severity,
    pub description: String,
    pub rule: Rule,
    /// What the measured value must satisfy.
    pub expect: Expectation,
}

impl Check {
    pub fn kind(&self) -> &'static str {
        self.rule.kind()
    }

    /// The columns the check reads by name (none for SQL checks and row counts).
    pub fn columns(&self) -> Vec<String> {
        match &self.rule {
            Rule::RowCount => Vec::new(),
            Rule::NotNull { column }
            | Rule::AllowedValues { column, .. }
            | Rule::Range { column, .. }
            | Rule::Regex { column, .. } => vec![column.clone()],
            Rule::Unique { columns } => columns.clone(),
            Rule::SqlExpression { .. } | Rule::SqlQuery { .. } => Vec::new(),
        }
    }

    /// What the check asserts, in words: `o_orderkey is not null`, `rows >= 1`.
    pub fn expectation_text(&self) -> String {
        let expect = self.expect.text();
        match &self.rule {
            Rule::RowCount => format!("row count {expect}"),
            Rule::NotNull { column } => with_tolerance(format!("{column} is not null"), &self.expect),
            Rule::Unique { columns } => {
                let key = match columns.as_slice() {
                    [column] => column.clone(),
                    columns => format!("({})", columns.join(", ")),
                };
                with_tolerance(format!("{key} is unique"), &self.expect)
            }
            Rule::AllowedValues { column, values } => {
                with_tolerance(format!("{column} in ({})", values.join(", ")), &self.expect)
            }
            Rule::Range { column, min, max } => {
                let bounds = match (min, max) {
                    (Some(min), Some(max)) => format!("{column} between {min} and {max}"),
                    (Some(min), None) => format!("{column} >= {min}"),
                    (None, Some(max)) => format!("{column} <= {max}"),
                    (None, None) => format!("{column} in range"),
                };
                with_tolerance(bounds, &self.expect)
            }
            Rule::Regex { column, pattern } => with_tolerance(format!("{column} matches '{pattern}'"), &self.expect),
            Rule::SqlExpression { expression } => with_tolerance(format!("{expression} for every row"), &self.expect),
            Rule::SqlQuery { query } => match self.expect.0.is_empty() {
                true => format!("({}) is true", query.trim()),
                false => format!("({}) {expect}", query.trim()),
            },
        }
    }
}

/// `text`, or with how many violating rows are tolerated when that is not zero.
fn with_tolerance(text: String, expect: &Expectation) -> String {
    if expect.0 == [Condition::Eq(0.0)] { text } else { format!("{text} (violating rows {})", expect.text()) }
}

/// What a check measures. Row-level rules count the rows that violate them.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// Rows in the product.
    RowCount,
    NotNull {
        column: String,
    },
    /// Rows whose key (all columns non-null) is shared with another row.
    Unique {
        columns: Vec<String>,
    },
    /// `values` are SQL literals.
    AllowedValues {
        column: String,
        values: Vec<String>,
    },
    /// `min` and `max` are SQL literals, inclusive.
    Range {
        column: String,
        min: Option<String>,
        max: Option<String>,
    },
    Regex {
        column: String,
        pattern: String,
    },
    /// A boolean over one row; rows where it is not true violate it.
    SqlExpression {
        expression: String,
    },
    /// A query over the product returning one boolean or number.
    SqlQuery {
        query: String,
    },
}

impl Rule {
    pub fn kind(&self) -> &'static str {
        match self {
            Rule::RowCount => "row_count",
            Rule::NotNull { .. } => "not_null",
            Rule::Unique { .. } => "unique",
            Rule::AllowedValues { .. } => "allowed_values",
            Rule::Range { .. } => "range",
            Rule::Regex { .. } => "regex",
            Rule::SqlExpression { .. } | Rule::SqlQuery { .. } => "sql",
        }
    }
}

/// Conditions the measured value must all meet; none: a boolean that must be true.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expectation(pub Vec<Condition>);

impl Expectation {
    /// Row-level rules: no violating row.
    pub fn no_violations() -> Self {
        Self(vec![Condition::Eq(0.0)])
    }

    pub fn holds(&self, value: f64) -> bool {
        self.0.iter().all(|condition| condition.holds(value))
    }

    pub fn text(&self) -> String {
        let parts: Vec<String> = self.0.iter().map(Condition::text).collect();
        if parts.is_empty() { "is true".to_owned() } else { parts.join(" and ") }
    }
}

/// One comparison (ODCS `mustBe`, `mustBeGreaterThan`, …).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Condition {
    Eq(f64),
    Ne(f64),
    Gt(f64),
    Ge(f64),
    Lt(f64),
    Le(f64),
    Between(f64, f64),
    NotBetween(f64, f64),
}

impl Condition {
    pub fn holds(self, value: f64) -> bool {
        match self {
            Condition::Eq(x) => value == x,
            Condition::Ne(x) => value != x,
            Condition::Gt(x) => value > x,
            Condition::Ge(x) => value >= x,
            Condition::Lt(x) => value < x,
            Condition::Le(x) => value <= x,
            Condition::Between(a, b) => a <= value && value <= b,
            Condition::NotBetween(a, b) => value < a || b < value,
        }
    }

    pub fn text(&self) -> String {
        match self {
            Condition::Eq(x) => format!("= {}", number(*x)),
            Condition::Ne(x) => format!("<> {}", number(*x)),
            Condition::Gt(x) => format!("> {}", number(*x)),
            Condition::Ge(x) => format!(">= {}", number(*x)),
            Condition::Lt(x) => format!("< {}", number(*x)),
            Condition::Le(x) => format!("<= {}", number(*x)),
            Condition::Between(a, b) => format!("between {} and {}", number(*a), number(*b)),
            Condition::NotBetween(a, b) => format!("not between {} and {}", number(*a), number(*b)),
        }
    }
}

/// A number as people write it: `12`, not `12.0`.
pub fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 { format!("{}", value as i64) } else { format!("{value}") }
}

/// A freshness SLA.
#[derive(Debug, Clone, PartialEq)]
pub struct Freshness {
    /// Event-time column; `None`: the newest file's modification time.
    pub column: Option<String>,
    pub max_age: Duration,
    pub severity: Severity,
}

/// Parses `90s`, `15m`, `36h`, `2d`, `1w` (a whole number and a unit).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let bad = || format!("'{text}' is not a duration (a whole number and s, m, h, d or w: 15m, 36h, 2d)");
    let amount: u64 = digits.parse().map_err(|_| bad())?;
    let seconds = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(bad()),
    };
    if amount == 0 {
        return Err(format!("'{text}' must be longer than zero"));
    }
    amount.checked_mul(seconds).map(Duration::from_secs).ok_or_else(bad)
}

/// A duration as [`parse_duration`] reads it, in its largest whole unit.
pub fn format_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    for (unit, size) in [("w", 604_800), ("d", 86_400), ("h", 3600), ("m", 60)] {
        if secs >= size && secs.is_multiple_of(size) {
            return format!("{}{unit}", secs / size);
        }
    }
    format!("{secs}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("36h"), Ok(Duration::from_secs(36 * 3600)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert!(parse_duration("2 days").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("0m").is_err());
        assert_eq!(format_duration(Duration::from_secs(129_600)), "36h");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
    }

    #[test]
    fn conditions() {
        let expect = Expectation(vec![Condition::Ge(1.0), Condition::Lt(10.0)]);
        assert!(expect.holds(1.0) && expect.holds(9.5) && !expect.holds(10.0) && !expect.holds(0.0));
        assert_eq!(expect.text(), ">= 1 and < 10");
        assert!(Condition::NotBetween(1.0, 2.0).holds(3.0));
        assert!(!Condition::Between(1.0, 2.0).holds(3.0));
    }
}
