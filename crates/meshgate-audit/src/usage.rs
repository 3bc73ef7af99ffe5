//! Who uses each product: per product and window, the queries that read it, the
//! rows they returned and how many distinct principals, groups and consuming
//! domains asked (the reuse rate a mesh is judged by).
//!
//! Kept incrementally and bounded: each product holds one tally since the start,
//! a tally per minute for the last hour and a tally per hour for the last week.
//! `1h` is counted by the minute and `24h`/`7d` by the hour: a window takes every
//! bucket that starts at or after its start rounded down to the bucket, so it may
//! reach back up to one bucket further. Distinct counts union the buckets' sets.

use std::collections::{BTreeMap, HashSet, VecDeque};

use crate::record::AuditRecord;

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;
const MINUTES_KEPT: i64 = 60;
const HOURS_KEPT: i64 = 7 * 24;

/// A usage window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    Hour,
    Day,
    Week,
    /// Since the server started, with what its retained audit files held.
    All,
}

impl Window {
    pub const ALL: [Window; 4] = [Window::Hour, Window::Day, Window::Week, Window::All];

    pub fn name(self) -> &'static str {
        match self {
            Self::Hour => "1h",
            Self::Day => "24h",
            Self::Week => "7d",
            Self::All => "all",
        }
    }
}

/// One product's usage in one window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRow {
    pub domain: String,
    pub product: String,
    pub window: Window,
    pub queries: u64,
    /// Rows returned by the queries that read the product.
    pub rows: u64,
    pub principals: u64,
    pub groups: u64,
    /// Distinct `domain` attributes of the principals (those without one are not counted).
    pub consuming_domains: u64,
}

#[derive(Debug, Default, Clone)]
struct Tally {
    queries: u64,
    rows: u64,
    principals: HashSet<String>,
    groups: HashSet<String>,
    domains: HashSet<String>,
}

impl Tally {
    fn add(&mut self, record: &AuditRecord) {
        self.queries += 1;
        self.rows += record.rows;
        if !self.principals.contains(&record.principal) {
            self.principals.insert(record.principal.clone());
        }
        for group in &record.groups {
            if !self.groups.contains(group) {
                self.groups.insert(group.clone());
            }
        }
        if let Some(domain) = &record.principal_domain
            && !self.domains.contains(domain)
        {
            self.domains.insert(domain.clone());
        }
    }
}

/// Tallies per bucket (minute or hour number), oldest first.
#[derive(Debug, Default)]
struct Buckets(VecDeque<(i64, Tally)>);

impl Buckets {
    fn tally(&mut self, bucket: i64) -> &mut Tally {
        // Records come nearly in order: look from the newest.
        let position = self.0.iter().rposition(|(b, _)| *b <= bucket);
        let index = match position {
            Some(index) if self.0[index].0 == bucket => index,
            Some(index) => {
                self.0.insert(index + 1, (bucket, Tally::default()));
                index + 1
            }
            None => {
                self.0.push_front((bucket, Tally::default()));
                0
            }
        };
        &mut self.0[index].1
    }

    /// Drops buckets before `first`.
    fn prune(&mut self, first: i64) {
        while self.0.front().is_some_and(|(b, _)| *b < first) {
            self.0.pop_front();
        }
    }

    fn since<'a>(&'a self, first: i64) -> impl Iterator<Item = &'a Tally> + 'a {
        self.0.iter().filter(move |(b, _)| *b >= first).map(|(_, tally)| tally)
    }
}

#[derive(Debug, Default)]
struct ProductUsage {
    all: Tally,
    minutes: Buckets,
    hours: Buckets,
}

/// Usage of every product read so far.
#[derive(Debug, Default)]
pub struct Usage {
    products: BTreeMap<(String, String), ProductUsage>,
    /// The newest record time seen, for pruning.
    newest_ms: i64,
}

impl Usage {
    /// Counts `record`, made at `time_ms`, for every product it read.
    pub fn add(&mut self, record: &AuditRecord, time_ms: i64) {
        if record.products.is_empty() {
            return;
        }
        self.newest_ms = self.newest_ms.max(time_ms);
        let (minute, hour) = (time_ms.div_euclid(MINUTE_MS), time_ms.div_euclid(HOUR_MS));
        let (oldest_minute, oldest_hour) =
            (self.newest_ms.div_euclid(MINUTE_MS) - MINUTES_KEPT, self.newest_ms.div_euclid(HOUR_MS) - HOURS_KEPT);
        let mut seen = HashSet::new();
        for read in &record.products {
            // A product read twice in one query (a self-join) counts once.
            if !seen.insert((&read.domain, &read.product)) {
                continue;
            }
            let usage = self.products.entry((read.domain.clone(), read.product.clone())).or_default();
            usage.all.add(record);
            if minute >= oldest_minute {
                usage.minutes.tally(minute).add(record);
            }
            if hour >= oldest_hour {
                usage.hours.tally(hour).add(record);
            }
            usage.minutes.prune(oldest_minute);
            usage.hours.prune(oldest_hour);
        }
    }

    /// One row per product and window at `now_ms`.
    pub fn rows(&self, now_ms: i64) -> Vec<UsageRow> {
        let mut rows = Vec::with_capacity(self.products.len() * Window::ALL.len());
        for ((domain, product), usage) in &self.products {
            for window in Window::ALL {
                let tallies: Vec<&Tally> = match window {
                    Window::Hour => usage.minutes.since((now_ms - HOUR_MS).div_euclid(MINUTE_MS)).collect(),
                    Window::Day => usage.hours.since((now_ms - 24 * HOUR_MS).div_euclid(HOUR_MS)).collect(),
                    Window::Week => usage.hours.since((now_ms - HOURS_KEPT * HOUR_MS).div_euclid(HOUR_MS)).collect(),
                    Window::All => vec![&usage.all],
                };
                rows.push(row(domain, product, window, &tallies));
            }
        }
        rows
    }
}

fn row(domain: &str, product: &str, window: Window, tallies: &[&Tally]) -> UsageRow {
    let distinct = |set: fn(&Tally) -> &HashSet<String>| {
        let mut union: HashSet<&str> = HashSet::new();
        for tally in tallies {
            union.extend(set(tally).iter().map(String::as_str));
        }
        union.len() as u64
    };
    UsageRow {
        domain: domain.to_owned(),
        product: product.to_owned(),
        window,
        queries: tallies.iter().map(|t| t.queries).sum(),
        rows: tallies.iter().map(|t| t.rows).sum(),
        principals: distinct(|t| &t.principals),
        groups: distinct(|t| &t.groups),
        consuming_domains: distinct(|t| &t.domains),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Outcome, ProductRead, QueryKind};

    fn record(
        principal: &str,
        groups: &[&str],
        domain: Option<&str>,
        products: &[(&str, &str)],
        rows: u64,
    ) -> AuditRecord {
        AuditRecord {
            training_set: None,
            time: String::new(),
            query_id: String::new(),
            principal: principal.into(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            principal_domain: domain.map(str::to_owned),
            purpose: None,
            kind: QueryKind::Statement,
            sql: String::new(),
            fingerprint: String::new(),
            products: products
                .iter()
                .map(|(d, p)| ProductRead { domain: (*d).into(), product: (*p).into(), ..Default::default() })
                .collect(),
            rows,
            bytes: 0,
            duration_ms: 0,
            outcome: Outcome::Ok,
            error_code: None,
            error: None,
        }
    }

    fn find(rows: &[UsageRow], product: &str, window: Window) -> UsageRow {
        rows.iter().find(|r| r.product == product && r.window == window).cloned().unwrap()
    }

    #[test]
    fn windows_count_queries_rows_and_distinct_consumers() {
        let now = 1_000 * HOUR_MS;
        let mut usage = Usage::default();
        // Ten days ago, two days ago, three hours ago, ten minutes ago.
        usage.add(&record("ana", &["analyst"], Some("marketing"), &[("sales", "orders")], 5), now - 240 * HOUR_MS);
        usage.add(&record("sam", &["analyst", "ds"], Some("risk"), &[("sales", "orders")], 7), now - 48 * HOUR_MS);
        usage.add(&record("ana", &["analyst"], Some("marketing"), &[("sales", "orders")], 1), now - 3 * HOUR_MS);
        usage.add(
            &record(
                "carl",
                &["contractor"],
                None,
                &[("sales", "orders"), ("sales", "orders"), ("customers", "nation")],
                2,
            ),
            now - 10 * MINUTE_MS,
        );
        let rows = usage.rows(now);
        assert_eq!(rows.len(), 8);

        let hour = find(&rows, "orders", Window::Hour);
        assert_eq!((hour.queries, hour.rows, hour.principals, hour.groups, hour.consuming_domains), (1, 2, 1, 1, 0));
        let day = find(&rows, "orders", Window::Day);
        assert_eq!((day.queries, day.rows, day.principals, day.groups, day.consuming_domains), (2, 3, 2, 2, 1));
        let week = find(&rows, "orders", Window::Week);
        assert_eq!((week.queries, week.rows, week.principals, week.groups, week.consuming_domains), (3, 10, 3, 3, 2));
        let all = find(&rows, "orders", Window::All);
        assert_eq!((all.queries, all.rows, all.principals, all.groups, all.consuming_domains), (4, 15, 3, 3, 2));
        let nation = find(&rows, "nation", Window::Hour);
        assert_eq!((nation.domain.as_str(), nation.queries, nation.principals), ("customers", 1, 1));

        // An hour later the ten-minute-old query has left the 1h window.
        assert_eq!(find(&usage.rows(now + HOUR_MS), "orders", Window::Hour).queries, 0);
    }

    #[test]
    fn buckets_stay_bounded_and_accept_late_records() {
        let mut usage = Usage::default();
        for minute in 0..3 * 24 * 60 * 4 {
            usage.add(&record("ana", &[], None, &[("sales", "orders")], 1), minute * MINUTE_MS * 4);
        }
        let product = &usage.products[&("sales".to_owned(), "orders".to_owned())];
        assert!(product.minutes.0.len() <= (MINUTES_KEPT + 1) as usize, "{}", product.minutes.0.len());
        assert!(product.hours.0.len() <= (HOURS_KEPT + 1) as usize, "{}", product.hours.0.len());
        assert_eq!(product.all.queries, 3 * 24 * 60 * 4);

        // A query that started before the newest one but ended after it lands in its own minute.
        let newest = usage.newest_ms;
        usage.add(&record("late", &[], None, &[("sales", "orders")], 1), newest - 2 * MINUTE_MS - 1);
        let hour = find(&usage.rows(newest), "orders", Window::Hour);
        assert_eq!(hour.principals, 2);
        let minutes: Vec<i64> =
            usage.products[&("sales".to_owned(), "orders".to_owned())].minutes.0.iter().map(|(b, _)| *b).collect();
        assert!(minutes.windows(2).all(|w| w[0] < w[1]), "{minutes:?}");
    }

    #[test]
    fn queries_that_read_nothing_count_nowhere() {
        let mut usage = Usage::default();
        usage.add(&record("ana", &[], None, &[], 1), 0);
        assert!(usage.rows(0).is_empty());
    }
}
