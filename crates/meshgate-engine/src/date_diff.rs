//! `date_diff(part, start, end)` (alias `datediff`), as DuckDB, SQL Server and
//! Snowflake define it: how many `part` boundaries lie between `start` and `end`
//! (`date_diff('month', DATE '2024-01-31', DATE '2024-02-01')` is 1). Negative when
//! `end` is before `start`; NULL when either is NULL.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int64Array, TimestampMicrosecondArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

const USAGE: &str = "date_diff takes (part, start, end), for example date_diff('day', o_orderdate, l_shipdate)";
const PARTS: &str = "year, quarter, month, week, day, hour, minute, second, millisecond, microsecond";

/// The unit whose boundaries are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Year,
    Quarter,
    Month,
    /// Weeks start on Monday (ISO).
    Week,
    Day,
    Hour,
    Minute,
    Second,
    Millisecond,
    Microsecond,
}

impl Part {
    fn parse(text: &str) -> Result<Self> {
        let lower = text.trim().to_ascii_lowercase();
        Ok(match lower.strip_suffix('s').unwrap_or(&lower) {
            "year" => Part::Year,
            "quarter" => Part::Quarter,
            "month" => Part::Month,
            "week" => Part::Week,
            "day" => Part::Day,
            "hour" => Part::Hour,
            "minute" => Part::Minute,
            "second" => Part::Second,
            "millisecond" => Part::Millisecond,
            "microsecond" => Part::Microsecond,
            _ => return exec_err!("date_diff: unknown part '{text}' (use {PARTS})"),
        })
    }

    /// The index of the `part` period holding `micros` (microseconds since the epoch,
    /// wall-clock time): the difference of two indexes counts boundaries.
    fn period(self, micros: i64) -> i64 {
        const DAY: i64 = 86_400_000_000;
        let days = micros.div_euclid(DAY);
        match self {
            Part::Year | Part::Quarter | Part::Month => {
                let (year, month) = year_month(days);
                match self {
                    Part::Year => year,
                    Part::Quarter => year * 4 + (month - 1) / 3,
                    _ => year * 12 + (month - 1),
                }
            }
            // 1970-01-01 was a Thursday: three days after a Monday.
            Part::Week => (days + 3).div_euclid(7),
            Part::Day => days,
            Part::Hour => micros.div_euclid(3_600_000_000),
            Part::Minute => micros.div_euclid(60_000_000),
            Part::Second => micros.div_euclid(1_000_000),
            Part::Millisecond => micros.div_euclid(1_000),
            Part::Microsecond => micros,
        }
    }
}

/// The proleptic Gregorian year and month (1–12) of a day counted from 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
fn year_month(days: i64) -> (i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month)
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct DateDiff {
    signature: Signature,
    aliases: Vec<String>,
}

impl DateDiff {
    pub(crate) fn udf() -> Arc<ScalarUDF> {
        Arc::new(ScalarUDF::new_from_impl(Self {
            signature: Signature::user_defined(Volatility::Immutable),
            aliases: vec!["datediff".to_owned()],
        }))
    }
}

/// Timestamps without a time zone, in microseconds: what `start` and `end` become.
const WALL_CLOCK: DataType = DataType::Timestamp(TimeUnit::Microsecond, None);

impl ScalarUDFImpl for DateDiff {
    fn name(&self) -> &str {
        "date_diff"
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let [part, start, end] = arg_types else { return plan_err!("{USAGE}") };
        if !matches!(part, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null) {
            return plan_err!("{USAGE}; the part is text, one of {PARTS}");
        }
        for value in [start, end] {
            let temporal = matches!(
                value,
                DataType::Date32
                    | DataType::Date64
                    | DataType::Timestamp(..)
                    | DataType::Utf8
                    | DataType::LargeUtf8
                    | DataType::Utf8View
                    | DataType::Null
            );
            if !temporal {
                return plan_err!("{USAGE}; start and end are dates or timestamps, not {value}");
            }
        }
        Ok(vec![DataType::Utf8, WALL_CLOCK, WALL_CLOCK])
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [part, start, end] = args.args.as_slice() else { return exec_err!("{USAGE}") };
        let part = match part {
            ColumnarValue::Scalar(ScalarValue::Utf8(Some(text))) => Part::parse(text)?,
            ColumnarValue::Scalar(value) if value.is_null() => {
                return Ok(ColumnarValue::Scalar(ScalarValue::Int64(None)));
            }
            _ => return exec_err!("date_diff: the part must be a constant, one of {PARTS}"),
        };
        let scalar = matches!((start, end), (ColumnarValue::Scalar(_), ColumnarValue::Scalar(_)));
        let rows = if scalar { 1 } else { args.number_rows };
        let start = micros(start, rows)?;
        let end = micros(end, rows)?;
        let counted: Int64Array = start
            .iter()
            .zip(end.iter())
            .map(|pair| match pair {
                (Some(start), Some(end)) => Some(part.period(end) - part.period(start)),
                _ => None,
            })
            .collect();
        if scalar {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&counted, 0)?));
        }
        Ok(ColumnarValue::Array(Arc::new(counted) as ArrayRef))
    }
}

fn micros(value: &ColumnarValue, rows: usize) -> Result<TimestampMicrosecondArray> {
    let array = cast(&value.to_array(rows)?, &WALL_CLOCK)?;
    match array.as_any().downcast_ref::<TimestampMicrosecondArray>() {
        Some(timestamps) => Ok(timestamps.clone()),
        None => exec_err!("date_diff: start and end must be dates or timestamps"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros_of(date: &str) -> i64 {
        let value = ScalarValue::Utf8(Some(date.to_owned())).cast_to(&WALL_CLOCK).unwrap();
        match value {
            ScalarValue::TimestampMicrosecond(Some(micros), _) => micros,
            other => panic!("not a timestamp: {other:?}"),
        }
    }

    fn diff(part: &str, start: &str, end: &str) -> i64 {
        let part = Part::parse(part).unwrap();
        part.period(micros_of(end)) - part.period(micros_of(start))
    }

    #[test]
    fn counts_boundaries_not_whole_periods() {
        assert_eq!(diff("month", "2024-01-31", "2024-02-01"), 1);
        assert_eq!(diff("year", "2023-12-31T23:59:59", "2024-01-01"), 1);
        assert_eq!(diff("day", "2024-03-01T23:00:00", "2024-03-02T01:00:00"), 1);
        assert_eq!(diff("days", "2024-03-02", "2024-03-01"), -1);
        assert_eq!(diff("quarter", "2024-03-31", "2024-04-01"), 1);
        // 2024-01-07 is a Sunday, 2024-01-08 a Monday.
        assert_eq!(diff("week", "2024-01-07", "2024-01-08"), 1);
        assert_eq!(diff("week", "2024-01-08", "2024-01-14"), 0);
        assert_eq!(diff("hour", "1969-12-31T23:30:00", "1970-01-01T00:10:00"), 1);
        assert_eq!(diff("month", "1900-02-28", "2000-02-29"), 1200);
    }

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(year_month(0), (1970, 1));
        assert_eq!(year_month(-1), (1969, 12));
        assert_eq!(year_month(19_782), (2024, 2)); // 2024-02-29
        assert_eq!(year_month(19_783), (2024, 3));
    }

    #[test]
    fn unknown_parts_are_named() {
        let error = Part::parse("fortnight").unwrap_err().to_string();
        assert!(error.contains("fortnight") && error.contains("quarter"), "{error}");
    }
}
