//! Validation of a product's contract: quality checks, freshness, schedule and
//! upstream sources, every mistake reported with its path.

use std::collections::BTreeSet;

use serde_norway::Value;

use super::contract::{Check, Condition, Contract, Expectation, Freshness, Rule, parse_duration};
use super::model::{CheckType, FreshnessSpec, OnFailure, QualitySpec};
use super::sql_check::{Scope, check_expression, check_query};
use crate::error::ConfigError;

/// The contract parts of a descriptor, as written.
pub(crate) struct ContractSpec<'a> {
    pub quality: &'a [QualitySpec],
    /// Checks from an ODCS contract file, each with the path of its entry there.
    pub contract_quality: &'a [(String, QualitySpec)],
    pub freshness: Option<&'a FreshnessSpec>,
    pub schedule: Option<&'a str>,
    pub on_failure: OnFailure,
    pub upstream: &'a [String],
}

pub(crate) struct ContractValidator<'a, 'b> {
    pub errors: &'a mut Vec<ConfigError>,
    /// Config path of the product.
    pub path: &'a str,
    pub scope: Scope<'b>,
    /// Declared columns (schema and partitions), when the descriptor declares them.
    pub columns: Option<&'a BTreeSet<String>>,
}

impl ContractValidator<'_, '_> {
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError::new(path, message));
    }

    pub fn contract(&mut self, spec: &ContractSpec<'_>) -> Contract {
        let mut checks: Vec<Check> = Vec::new();
        let mut names = BTreeSet::new();
        // Derived names step aside for written ones, wherever those appear.
        let all = spec.quality.iter().enumerate().map(|(index, quality)| {
            let path = match &quality.name {
                Some(name) => format!("{}.quality.{name}", self.path),
                None => format!("{}.quality.[{index}]", self.path),
            };
            (path, quality)
        });
        let all: Vec<(String, &QualitySpec)> =
            all.chain(spec.contract_quality.iter().map(|(path, quality)| (path.clone(), quality))).collect();
        let written: BTreeSet<&str> = all.iter().filter_map(|(_, q)| q.name.as_deref()).collect();
        for (path, quality) in &all {
            let Some(mut check) = self.check(path, quality) else { continue };
            if quality.name.is_some() {
                if !names.insert(check.name.clone()) {
                    self.error(path, format!("check name '{}' is used twice", check.name));
                    continue;
                }
            } else {
                let base = check.name.clone();
                let mut n = 2;
                while names.contains(&check.name) || written.contains(check.name.as_str()) {
                    check.name = format!("{base}_{n}");
                    n += 1;
                }
                names.insert(check.name.clone());
            }
            checks.push(check);
        }
        let freshness = spec.freshness.and_then(|freshness| self.freshness(freshness));
        let schedule = spec.schedule.and_then(|text| match parse_duration(text) {
            Ok(duration) => Some(duration),
            Err(message) => {
                self.error(format!("{}.schedule", self.path), message);
                None
            }
        });
        for (index, source) in spec.upstream.iter().enumerate() {
            if source.trim().is_empty() {
                self.error(format!("{}.upstream.[{index}]", self.path), "must not be empty");
            }
        }
        Contract { checks, freshness, schedule, on_failure: spec.on_failure, upstream: spec.upstream.to_vec() }
    }

    fn freshness(&mut self, spec: &FreshnessSpec) -> Option<Freshness> {
        let path = format!("{}.freshness", self.path);
        let max_age = match parse_duration(&spec.max_age) {
            Ok(duration) => Some(duration),
            Err(message) => {
                self.error(format!("{path}.max_age"), message);
                None
            }
        };
        if let Some(column) = &spec.column {
            self.known_column(&format!("{path}.column"), column);
        }
        Some(Freshness { column: spec.column.clone(), max_age: max_age?, severity: spec.severity })
    }

    fn check(&mut self, path: &str, spec: &QualitySpec) -> Option<Check> {
        let before = self.errors.len();
        if spec.name.as_deref() == Some(crate::quality::FRESHNESS_CHECK) {
            self.error(format!("{path}.name"), "'freshness' names the freshness SLA's result; choose another name");
        }
        if let Some(name) = &spec.name {
            let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !valid {
                self.error(
                    format!("{path}.name"),
                    format!("'{name}' is not a valid check name (letters, digits, _ and -)"),
                );
            }
        }
        self.inapplicable(path, spec);
        let mut expect = Expectation(self.conditions(path, spec));
        let (rule, default_name) = match spec.kind {
            CheckType::RowCount => {
                if let Some(min) = self.count(&format!("{path}.min"), spec.min.as_ref()) {
                    expect.0.push(Condition::Ge(min));
                }
                if let Some(max) = self.count(&format!("{path}.max"), spec.max.as_ref()) {
                    expect.0.push(Condition::Le(max));
                }
                if expect.0.is_empty() {
                    self.error(path, "a row_count check needs min, max or a must_be comparison");
                }
                (Rule::RowCount, "row_count".to_owned())
            }
            CheckType::NotNull => {
                let column = self.column(path, spec)?;
                (Rule::NotNull { column: column.clone() }, format!("not_null_{column}"))
            }
            CheckType::Unique => {
                let columns = match (&spec.column, &spec.columns) {
                    (Some(column), None) => vec![column.clone()],
                    (None, Some(columns)) if !columns.is_empty() => columns.clone(),
                    (Some(_), Some(_)) => {
                        self.error(path, "give column or columns, not both");
                        return None;
                    }
                    _ => {
                        self.error(path, "a unique check needs column (or columns, for a composite key)");
                        return None;
                    }
                };
                for (index, column) in columns.iter().enumerate() {
                    let column_path = match &spec.columns {
                        Some(_) => format!("{path}.columns.[{index}]"),
                        None => format!("{path}.column"),
                    };
                    self.known_column(&column_path, column);
                }
                let name = format!("unique_{}", columns.join("_"));
                (Rule::Unique { columns }, name)
            }
            CheckType::AllowedValues => {
                let column = self.column(path, spec)?;
                let values = match &spec.values {
                    Some(values) if !values.is_empty() => values
                        .iter()
                        .enumerate()
                        .filter_map(|(index, value)| self.literal(&format!("{path}.values.[{index}]"), value))
                        .collect(),
                    _ => {
                        self.error(path, "an allowed_values check needs a non-empty list of values");
                        Vec::new()
                    }
                };
                (Rule::AllowedValues { column: column.clone(), values }, format!("allowed_values_{column}"))
            }
            CheckType::Range => {
                let column = self.column(path, spec)?;
                let min = spec.min.as_ref().and_then(|value| self.literal(&format!("{path}.min"), value));
                let max = spec.max.as_ref().and_then(|value| self.literal(&format!("{path}.max"), value));
                if spec.min.is_none() && spec.max.is_none() {
                    self.error(path, "a range check needs min, max or both");
                }
                (Rule::Range { column: column.clone(), min, max }, format!("range_{column}"))
            }
            CheckType::Regex => {
                let column = self.column(path, spec)?;
                let pattern = match &spec.pattern {
                    Some(pattern) => match regex::Regex::new(pattern) {
                        Ok(_) => pattern.clone(),
                        Err(error) => {
                            self.error(format!("{path}.pattern"), format!("invalid regular expression: {error}"));
                            return None;
                        }
                    },
                    None => {
                        self.error(path, "a regex check needs a pattern");
                        return None;
                    }
                };
                (Rule::Regex { column: column.clone(), pattern }, format!("regex_{column}"))
            }
            CheckType::Sql => match (&spec.expression, &spec.query) {
                (Some(expression), None) => {
                    if let Err(message) = check_expression(expression) {
                        self.error(format!("{path}.expression"), message);
                    }
                    (Rule::SqlExpression { expression: expression.clone() }, "sql".to_owned())
                }
                (None, Some(query)) => match check_query(query, &self.scope) {
                    Ok(query) => (Rule::SqlQuery { query }, "sql".to_owned()),
                    Err(message) => {
                        self.error(format!("{path}.query"), message);
                        return None;
                    }
                },
                (Some(_), Some(_)) => {
                    self.error(path, "give expression or query, not both");
                    return None;
                }
                (None, None) => {
                    self.error(path, "a sql check needs expression (true for every row) or query (over the product)");
                    return None;
                }
            },
        };
        let is_query = matches!(rule, Rule::SqlQuery { .. });
        if expect.0.is_empty() && !is_query && !matches!(rule, Rule::RowCount) {
            expect = Expectation::no_violations();
        }
        if self.errors.len() != before {
            return None;
        }
        Some(Check {
            name: spec.name.clone().unwrap_or(default_name),
            path: path.to_owned(),
            severity: spec.severity,
            description: spec.description.clone(),
            rule,
            expect,
        })
    }

    /// Fields that do not apply to the check's type are mistakes, not ignored.
    fn inapplicable(&mut self, path: &str, spec: &QualitySpec) {
        let present = [
            ("column", spec.column.is_some()),
            ("columns", spec.columns.is_some()),
            ("min", spec.min.is_some()),
            ("max", spec.max.is_some()),
            ("values", spec.values.is_some()),
            ("pattern", spec.pattern.is_some()),
            ("expression", spec.expression.is_some()),
            ("query", spec.query.is_some()),
        ];
        let applies: &[&str] = match spec.kind {
            CheckType::RowCount => &["min", "max"],
            CheckType::NotNull => &["column"],
            CheckType::Unique => &["column", "columns"],
            CheckType::AllowedValues => &["column", "values"],
            CheckType::Range => &["column", "min", "max"],
            CheckType::Regex => &["column", "pattern"],
            CheckType::Sql => &["expression", "query"],
        };
        for (field, set) in present {
            if set && !applies.contains(&field) {
                self.error(format!("{path}.{field}"), format!("does not apply to a {} check", kind_name(spec.kind)));
            }
        }
    }

    /// The ODCS comparisons given (`must_be`, `must_be_greater_than`, …).
    fn conditions(&mut self, path: &str, spec: &QualitySpec) -> Vec<Condition> {
        let mut conditions = Vec::new();
        type Single<'s> = (&'static str, &'s Option<Value>, fn(f64) -> Condition);
        type Pair<'s> = (&'static str, &'s Option<Vec<Value>>, fn(f64, f64) -> Condition);
        let singles: [Single<'_>; 6] = [
            ("must_be", &spec.must_be, Condition::Eq),
            ("must_not_be", &spec.must_not_be, Condition::Ne),
            ("must_be_greater_than", &spec.must_be_greater_than, Condition::Gt),
            ("must_be_greater_or_equal_to", &spec.must_be_greater_or_equal_to, Condition::Ge),
            ("must_be_less_than", &spec.must_be_less_than, Condition::Lt),
            ("must_be_less_or_equal_to", &spec.must_be_less_or_equal_to, Condition::Le),
        ];
        for (field, value, make) in singles {
            if let Some(value) = value
                && let Some(number) = self.number(&format!("{path}.{field}"), value)
            {
                conditions.push(make(number));
            }
        }
        let pairs: [Pair<'_>; 2] = [
            ("must_be_between", &spec.must_be_between, Condition::Between),
            ("must_not_be_between", &spec.must_not_be_between, Condition::NotBetween),
        ];
        for (field, values, make) in pairs {
            let Some(values) = values else { continue };
            let field_path = format!("{path}.{field}");
            let numbers: Vec<f64> = values.iter().filter_map(|value| self.number(&field_path, value)).collect();
            match numbers.as_slice() {
                [low, high] if low <= high => conditions.push(make(*low, *high)),
                [_, _] => self.error(field_path, "the first bound must not be above the second"),
                _ if numbers.len() == values.len() => self.error(field_path, "takes two numbers: [low, high]"),
                _ => {}
            }
        }
        conditions
    }

    fn number(&mut self, path: &str, value: &Value) -> Option<f64> {
        match value {
            Value::Number(number) => number.as_f64(),
            Value::Bool(flag) => Some(if *flag { 1.0 } else { 0.0 }),
            _ => {
                self.error(path, format!("must be a number, not {}", describe(value)));
                None
            }
        }
    }

    fn count(&mut self, path: &str, value: Option<&Value>) -> Option<f64> {
        match value? {
            Value::Number(number) if number.as_u64().is_some() => number.as_f64(),
            other => {
                self.error(path, format!("must be a whole number of rows, not {}", describe(other)));
                None
            }
        }
    }

    /// A value as a SQL literal: numbers as written, strings quoted, booleans.
    fn literal(&mut self, path: &str, value: &Value) -> Option<String> {
        match value {
            Value::Number(number) => Some(number.to_string()),
            Value::String(text) => Some(format!("'{}'", text.replace('\'', "''"))),
            Value::Bool(flag) => Some(if *flag { "TRUE" } else { "FALSE" }.to_owned()),
            other => {
                self.error(path, format!("must be a number, string or boolean, not {}", describe(other)));
                None
            }
        }
    }

    /// The check's `column`, which must be given and known.
    fn column(&mut self, path: &str, spec: &QualitySpec) -> Option<String> {
        match &spec.column {
            Some(column) => {
                self.known_column(&format!("{path}.column"), column);
                Some(column.clone())
            }
            None => {
                self.error(path, format!("a {} check needs a column", kind_name(spec.kind)));
                None
            }
        }
    }

    /// Reports a column the declared schema does not have. Without a declared schema
    /// the check is planned against the files' schema when the mesh loads.
    fn known_column(&mut self, path: &str, column: &str) {
        if let Some(columns) = self.columns
            && !columns.contains(column)
        {
            let known: Vec<&str> = columns.iter().map(String::as_str).collect();
            self.error(path, format!("unknown column '{column}' (the product has {})", known.join(", ")));
        }
    }
}

fn kind_name(kind: CheckType) -> &'static str {
    match kind {
        CheckType::RowCount => "row_count",
        CheckType::NotNull => "not_null",
        CheckType::Unique => "unique",
        CheckType::AllowedValues => "allowed_values",
        CheckType::Range => "range",
        CheckType::Regex => "regex",
        CheckType::Sql => "sql",
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Sequence(_) => "a list".to_owned(),
        Value::Mapping(_) => "a mapping".to_owned(),
        Value::String(text) => format!("'{text}'"),
        other => format!("{other:?}"),
    }
}
