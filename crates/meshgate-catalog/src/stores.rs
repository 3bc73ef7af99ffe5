//! Object stores for product locations, built from the `stores` settings and the
//! environment, and registered with DataFusion's runtime.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use datafusion::common::DataFusionError;
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::execution::SessionState;
use datafusion::execution::runtime_env::RuntimeEnv;
use futures::StreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::http::HttpBuilder;
use object_store::{BackoffConfig, ClientConfigKey, ObjectStore, ObjectStoreExt, RetryConfig};
use url::Url;

use crate::config::{MeshConfig, StoreSettings};
use crate::error::{ConfigError, ConfigErrors};

/// Options meshgate reads itself rather than passing to the store.
const MAX_RETRIES: &str = "max_retries";
const RETRY_TIMEOUT_SECS: &str = "retry_timeout_secs";
const PATH_STYLE: &str = "path_style";

/// Registers one object store per bucket/container/host that a product reads from.
pub fn register_stores(config: &MeshConfig, runtime: &RuntimeEnv) -> Result<(), ConfigErrors> {
    let mut errors = Vec::new();
    let mut done = std::collections::BTreeSet::new();
    for product in config.products() {
        let location = &product.location;
        if location.scheme() == "file" {
            continue;
        }
        let root = store_root(location);
        if !done.insert(root.to_string()) {
            continue;
        }
        let settings = settings_for(&config.stores, location);
        match build_store(&root, settings) {
            Ok(store) => {
                runtime.register_object_store(&root, store);
            }
            Err(error) => errors.push(error),
        }
    }
    // Settings no product uses yet are still checked, so mistakes surface early.
    for settings in &config.stores {
        let root = store_root(&settings.prefix);
        if !done.contains(root.as_str())
            && let Err(error) = build_store(&root, Some(settings))
        {
            errors.push(error);
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(ConfigErrors(errors)) }
}

/// Whether a product's location exists: the local file or directory, or on an object
/// store (which has no directories) the object itself, or some object under the
/// prefix. An existing location without data files is not missing. Failures to reach
/// the store are errors, classified like any other read failure.
pub(crate) async fn location_exists(
    state: &SessionState,
    location: &Url,
    url: &ListingTableUrl,
) -> Result<bool, DataFusionError> {
    if location.scheme() == "file" {
        let path = location
            .to_file_path()
            .map_err(|()| DataFusionError::Plan(format!("location {location} is not a local path")))?;
        return Ok(path.try_exists()?);
    }
    let store = state.runtime_env().object_store(url)?;
    if url.is_collection() {
        return match store.list(Some(url.prefix())).next().await {
            None => Ok(false),
            Some(Ok(_)) => Ok(true),
            Some(Err(error)) => Err(error.into()),
        };
    }
    match store.head(url.prefix()).await {
        Ok(_) => Ok(true),
        Err(object_store::Error::NotFound { .. }) => Ok(false),
        Err(error) => Err(error.into()),
    }
}

/// `scheme://bucket` of a location: the unit an object store serves.
fn store_root(location: &Url) -> Url {
    let mut root = location.clone();
    root.set_path("");
    root.set_query(None);
    root.set_fragment(None);
    root
}

/// The settings whose prefix is the longest match for `location`.
fn settings_for<'a>(stores: &'a [StoreSettings], location: &Url) -> Option<&'a StoreSettings> {
    stores
        .iter()
        .filter(|store| {
            store.prefix.scheme() == location.scheme()
                && store.prefix.host_str() == location.host_str()
                && location.path().starts_with(store.prefix.path().trim_end_matches('/'))
        })
        .max_by_key(|store| store.prefix.path().len())
}

fn build_store(root: &Url, settings: Option<&StoreSettings>) -> Result<Arc<dyn ObjectStore>, ConfigError> {
    let path = settings.map_or_else(|| format!("stores.{root}"), |s| s.path.clone());
    let options: &[(String, String)] = settings.map_or(&[], |s| &s.options);
    let bucket = root.host_str().unwrap_or_default().to_owned();
    let mut retry =
        RetryConfig { backoff: BackoffConfig::default(), max_retries: 3, retry_timeout: Duration::from_secs(15) };
    let mut passthrough = Vec::new();
    for (name, value) in options {
        let option_path = format!("{path}.{name}");
        match name.as_str() {
            MAX_RETRIES => retry.max_retries = parse_number(&option_path, value)?,
            RETRY_TIMEOUT_SECS => retry.retry_timeout = Duration::from_secs(parse_number(&option_path, value)? as u64),
            PATH_STYLE => {
                let path_style = parse_bool(&option_path, value)?;
                passthrough.push(("virtual_hosted_style_request".to_owned(), (!path_style).to_string(), option_path));
            }
            _ => passthrough.push((name.clone(), value.clone(), option_path)),
        }
    }
    // A store that is down should fail a query in seconds, not minutes.
    if !passthrough.iter().any(|(name, _, _)| name == "connect_timeout") {
        passthrough.insert(0, ("connect_timeout".to_owned(), "5s".to_owned(), format!("{path}.connect_timeout")));
    }
    let unknown = |option_path: &str, name: &str| {
        ConfigError::new(option_path, format!("unknown option '{name}' for {} stores", root.scheme()))
    };
    let built = match root.scheme() {
        "s3" => {
            let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket).with_retry(retry);
            for (name, value, option_path) in passthrough {
                let key = AmazonS3ConfigKey::from_str(&name).map_err(|_| unknown(&option_path, &name))?;
                builder = builder.with_config(key, value);
            }
            builder.build().map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
        }
        "gs" => {
            let mut builder = GoogleCloudStorageBuilder::from_env().with_bucket_name(bucket).with_retry(retry);
            for (name, value, option_path) in passthrough {
                let key = GoogleConfigKey::from_str(&name).map_err(|_| unknown(&option_path, &name))?;
                builder = builder.with_config(key, value);
            }
            builder.build().map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
        }
        "az" => {
            let mut builder = MicrosoftAzureBuilder::from_env().with_container_name(bucket).with_retry(retry);
            for (name, value, option_path) in passthrough {
                let key = AzureConfigKey::from_str(&name).map_err(|_| unknown(&option_path, &name))?;
                builder = builder.with_config(key, value);
            }
            builder.build().map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
        }
        _ => {
            let mut builder = HttpBuilder::new().with_url(root.as_str()).with_retry(retry);
            for (name, value, option_path) in passthrough {
                let key = ClientConfigKey::from_str(&name).map_err(|_| unknown(&option_path, &name))?;
                builder = builder.with_config(key, value);
            }
            builder.build().map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
        }
    };
    // The builder's message may quote option values; report only that it failed and why in general terms.
    built.map_err(|error| {
        ConfigError::new(
            path,
            format!("cannot configure the {} store: {}", root.scheme(), redact(&error.to_string(), options)),
        )
    })
}

/// Removes option values (which may be secrets) from a message.
pub(crate) fn redact(message: &str, options: &[(String, String)]) -> String {
    options
        .iter()
        .filter(|(_, value)| value.len() >= 4)
        .fold(message.to_owned(), |text, (_, value)| text.replace(value.as_str(), "***"))
}

fn parse_number(path: &str, value: &str) -> Result<usize, ConfigError> {
    value.trim().parse().map_err(|_| ConfigError::new(path, format!("'{value}' is not a whole number")))
}

fn parse_bool(path: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => Err(ConfigError::new(path, format!("'{value}' is not true or false"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins_and_secrets_are_redacted() {
        let store = |prefix: &str| StoreSettings {
            prefix: Url::parse(prefix).unwrap(),
            path: format!("stores.{prefix}"),
            options: vec![("secret_access_key".into(), "hunter22".into())],
        };
        let stores = vec![store("s3://lake"), store("s3://lake/sales")];
        let location = Url::parse("s3://lake/sales/orders/").unwrap();
        assert_eq!(settings_for(&stores, &location).map(|s| s.path.as_str()), Some("stores.s3://lake/sales"));
        assert_eq!(redact("bad key hunter22", &stores[0].options), "bad key ***");
    }

    #[test]
    fn unknown_option_is_named() {
        let settings = StoreSettings {
            prefix: Url::parse("s3://lake").unwrap(),
            path: "stores.s3://lake".into(),
            options: vec![("endpoit".into(), "http://x".into())],
        };
        let root = Url::parse("s3://lake").unwrap();
        let error = build_store(&root, Some(&settings)).err().map(|e| e.to_string());
        assert_eq!(error.as_deref(), Some("stores.s3://lake.endpoit: unknown option 'endpoit' for s3 stores"));
    }
}
