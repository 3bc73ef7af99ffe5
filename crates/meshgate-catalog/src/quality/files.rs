//! The files a check runs on, listed from the product's object store: how many,
//! how large, and the newest modification time (the file-based freshness).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use datafusion::common::ScalarValue;
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::execution::context::SessionContext;
use futures::TryStreamExt;

use super::result::FileSnapshot;
use crate::config::Product;
use crate::snapshot::file_extension;

/// Lists the product's data files now.
pub(crate) async fn file_snapshot(ctx: &SessionContext, product: &Product) -> Result<FileSnapshot, String> {
    let listed = async {
        let url = ListingTableUrl::parse(product.location.as_str())?;
        let store = ctx.runtime_env().object_store(url.object_store())?;
        let state = ctx.state();
        let extension = file_extension(product);
        let files: Vec<_> = url.list_all_files(&state, store.as_ref(), extension).await?.try_collect().await?;
        // A Delta table's log is not data (its checkpoints are Parquet files too).
        let files: Vec<_> = files.into_iter().filter(|meta| !meta.location.as_ref().contains("_delta_log/")).collect();
        Ok::<_, datafusion::error::DataFusionError>(files)
    };
    let files = listed.await.map_err(|error| super::checks::message(&error))?;
    Ok(FileSnapshot {
        files: files.len(),
        bytes: files.iter().map(|meta| meta.size).sum(),
        newest: files.iter().map(|meta| SystemTime::from(meta.last_modified)).max(),
    })
}

/// Seconds since the epoch of a date or timestamp value (timestamps without a zone
/// are read as UTC); `None` for NULL or another type.
pub(crate) fn epoch_seconds(value: &ScalarValue) -> Option<f64> {
    let seconds = match value {
        ScalarValue::Date32(Some(days)) => f64::from(*days) * 86_400.0,
        ScalarValue::Date64(Some(ms)) => *ms as f64 / 1e3,
        ScalarValue::TimestampSecond(Some(s), _) => *s as f64,
        ScalarValue::TimestampMillisecond(Some(ms), _) => *ms as f64 / 1e3,
        ScalarValue::TimestampMicrosecond(Some(us), _) => *us as f64 / 1e6,
        ScalarValue::TimestampNanosecond(Some(ns), _) => *ns as f64 / 1e9,
        _ => return None,
    };
    Some(seconds)
}

/// Seconds from `then` to `now` (negative when `then` is in the future).
pub(crate) fn age_seconds(then: f64, now: SystemTime) -> f64 {
    let now = now.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs_f64();
    now - then
}

/// A system time as seconds since the epoch.
pub(crate) fn system_seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs_f64()
}
