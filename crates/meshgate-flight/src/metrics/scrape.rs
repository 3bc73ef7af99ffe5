//! The metrics read when `/metrics` is scraped, from what the server serves now:
//! reloads, the memory pool, spill files, and each product's health and freshness.

use datafusion::execution::memory_pool::MemoryLimit;
use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};

use super::products::product_states;
use crate::serving::Current;

const PRODUCT_LABELS: [&str; 3] = ["domain", "product", "version"];

pub(super) fn families(current: &Current) -> Vec<MetricFamily> {
    let serving = current.get();
    let runtime = serving.engine.snapshot().runtime();
    let mut families = vec![
        counter(
            "meshgate_reloads_total",
            "Reloads that replaced the configuration (the first load is not one).",
            current.reloads(),
        ),
        counter(
            "meshgate_reload_failures_total",
            "Reloads refused for an error; the previous configuration kept serving.",
            current.reload_failures(),
        ),
        gauge(
            "meshgate_memory_pool_reserved_bytes",
            "Memory the running queries hold in the query memory pool now.",
            runtime.memory_pool.reserved() as f64,
        ),
        gauge(
            "meshgate_spill_bytes",
            "Bytes of spill files on disk now (sorts, aggregations and joins beyond the memory limit).",
            meshgate_engine::spill_bytes(runtime).unwrap_or_else(|| runtime.disk_manager.used_disk_space()) as f64,
        ),
    ];
    if let Some(peak) = meshgate_engine::memory_peak(runtime) {
        families.push(gauge(
            "meshgate_memory_pool_peak_bytes",
            "The most memory the queries held at once in the pool since the server started.",
            peak as f64,
        ));
    }
    if let MemoryLimit::Finite(limit) = runtime.memory_pool.memory_limit() {
        families.push(gauge("meshgate_memory_pool_limit_bytes", "The query memory pool's limit.", limit as f64));
    }
    if let Some(secs) = current.last_reload_unix_secs() {
        families.push(gauge(
            "meshgate_last_reload_timestamp_seconds",
            "When the last successful reload happened (Unix time).",
            secs as f64,
        ));
    }

    let snapshot = serving.engine.snapshot();
    let accelerated: Vec<_> = snapshot
        .all_versions()
        .filter(|entry| entry.product.acceleration.is_some())
        .map(|entry| {
            let product = &entry.product;
            let labels = [product.domain.clone(), product.name.clone(), product.version.clone()];
            (labels, entry.table.accelerated(), entry.acceleration.state(entry.table.accelerated().is_some()))
        })
        .collect();
    if !accelerated.is_empty() {
        families.push(gauge(
            "meshgate_acceleration_budget_bytes",
            "Memory the accelerated products' copies may hold together (acceleration.budget).",
            snapshot.config().acceleration_budget as f64,
        ));
        families.extend(labelled(
            "meshgate_product_accelerated_bytes",
            "Memory the product's accelerated copy holds (0 while it is served from its files).",
            accelerated
                .iter()
                .map(|(labels, copy, _)| (labels.clone(), copy.as_ref().map_or(0.0, |c| c.bytes() as f64))),
        ));
        if let Some(spill) = &snapshot.config().acceleration_spill {
            families.push(gauge(
                "meshgate_acceleration_spill_budget_bytes",
                "Local disk the spilled accelerated copies may take together (acceleration.spill.budget).",
                spill.budget as f64,
            ));
        }
        families.extend(labelled(
            "meshgate_product_accelerated_disk_bytes",
            "Local disk the product's accelerated copy takes when it did not fit in memory and was spilled (0 in memory).",
            accelerated
                .iter()
                .map(|(labels, copy, _)| (labels.clone(), copy.as_ref().map_or(0.0, |c| c.disk_bytes() as f64))),
        ));
        families.extend(labelled(
            "meshgate_product_acceleration_ready",
            "1 when the accelerated product is served from a copy of its files as they are; 0 when loading, \
             refused, failed, or stale after a failed refresh.",
            accelerated.iter().map(|(labels, _, state)| {
                (
                    labels.clone(),
                    f64::from(u8::from(*state == meshgate_catalog::acceleration::AccelerationState::Ready)),
                )
            }),
        ));
    }
    let products = product_states(&serving);
    let labels = |state: &super::ProductState| [state.domain.clone(), state.product.clone(), state.version.clone()];
    families.extend(labelled(
        "meshgate_product_healthy",
        "1 when queries on the product version are served (its data loaded, its contract does not block it), else 0.",
        products.iter().map(|state| (labels(state), f64::from(u8::from(state.servable)))),
    ));
    families.extend(labelled(
        "meshgate_product_freshness_age_seconds",
        "Age of the product's newest data: the age its latest freshness check measured plus the time since.",
        products.iter().filter_map(|state| Some((labels(state), state.freshness_age_seconds?))),
    ));
    families.extend(labelled(
        "meshgate_product_fresh",
        "1 when the product's latest freshness check met its SLA, 0 when it did not (products with an SLA).",
        products.iter().filter_map(|state| {
            let fresh = match state.freshness {
                meshgate_catalog::quality::FreshnessStatus::Fresh => 1.0,
                meshgate_catalog::quality::FreshnessStatus::Stale => 0.0,
                meshgate_catalog::quality::FreshnessStatus::Unknown => return None,
            };
            Some((labels(state), fresh))
        }),
    ));
    families.extend(labelled(
        "meshgate_product_failing_checks",
        "Quality checks of the product's contract whose latest result failed (products with a contract).",
        products
            .iter()
            .filter(|state| state.quality.is_some())
            .map(|state| (labels(state), state.failing_checks.len() as f64)),
    ));
    families
}

fn family(name: &str, help: &str, kind: MetricType, metrics: Vec<Metric>) -> MetricFamily {
    let mut family = MetricFamily::default();
    family.set_name(name.to_owned());
    family.set_help(help.to_owned());
    family.set_field_type(kind);
    family.set_metric(metrics);
    family
}

fn counter(name: &str, help: &str, value: u64) -> MetricFamily {
    let mut counter = Counter::default();
    counter.set_value(value as f64);
    let mut metric = Metric::default();
    metric.set_counter(counter);
    family(name, help, MetricType::COUNTER, vec![metric])
}

fn gauge(name: &str, help: &str, value: f64) -> MetricFamily {
    let mut gauge = Gauge::default();
    gauge.set_value(value);
    family(name, help, MetricType::GAUGE, vec![Metric::from_gauge(gauge)])
}

/// A gauge with one series per product version; none when there are no values (the
/// text format has no empty families).
fn labelled(name: &str, help: &str, values: impl Iterator<Item = ([String; 3], f64)>) -> Option<MetricFamily> {
    let metrics: Vec<Metric> = values
        .map(|(labels, value)| {
            let mut gauge = Gauge::default();
            gauge.set_value(value);
            let mut metric = Metric::from_gauge(gauge);
            metric.set_label(
                PRODUCT_LABELS
                    .iter()
                    .zip(labels)
                    .map(|(name, value)| {
                        let mut pair = LabelPair::default();
                        pair.set_name((*name).to_owned());
                        pair.set_value(value);
                        pair
                    })
                    .collect(),
            );
            metric
        })
        .collect();
    (!metrics.is_empty()).then(|| family(name, help, MetricType::GAUGE, metrics))
}
