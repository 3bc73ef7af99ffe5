//! Loading a mesh: configuration, then snapshot, then engine.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::execution::runtime_env::RuntimeEnv;
use meshgate_catalog::{ConfigErrors, MeshSnapshot, load_mesh};
use meshgate_engine::{Engine, session_config};
use meshgate_policy::load_policies;

/// The demo mesh's file, for `serve` without `--config`: `testdata/mesh.yaml` in the
/// working directory or one above it, else in the source tree meshgate was built from.
pub fn demo_config() -> Option<PathBuf> {
    let relative = Path::new("testdata").join("mesh.yaml");
    let cwd = std::env::current_dir().ok();
    let from_cwd = cwd.iter().flat_map(|dir| dir.ancestors()).map(|dir| dir.join(&relative));
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(&relative);
    from_cwd.chain(std::iter::once(built_from)).find(|path| path.is_file())
}

/// Loads and validates the mesh file, opens every product, then loads the policies
/// and checks them against the products' schemas.
pub async fn load_engine(path: &Path, runtime: Arc<RuntimeEnv>, tuning: &Tuning) -> Result<Engine, ConfigErrors> {
    let config = load_mesh(path)?;
    let mut session = session_config(&config.catalog);
    if let Some(partitions) = tuning.target_partitions {
        session = session.with_target_partitions(partitions);
    }
    session.options_mut().execution.parquet.pushdown_filters = tuning.parquet_pushdown_filters;
    if let Some(zone) = &tuning.time_zone {
        session.options_mut().execution.time_zone = Some(zone.clone());
    }
    if tuning.view_types {
        session.options_mut().execution.parquet.schema_force_view_types = true;
        session.options_mut().sql_parser.map_string_types_to_utf8view = true;
    }
    let snapshot = MeshSnapshot::load(config, session, runtime).await?;
    // Every quality check must plan against its product's schema.
    meshgate_catalog::quality::plan_contracts(&snapshot).await?;
    let policy = load_policies(snapshot.config(), &snapshot)?;
    Ok(Engine::new(Arc::new(snapshot), Arc::new(policy)).with_query_timeout(tuning.query_timeout))
}

/// Execution settings that change plans, not results.
#[derive(Debug, Clone, Default)]
pub struct Tuning {
    pub target_partitions: Option<usize>,
    pub parquet_pushdown_filters: bool,
    pub query_timeout: Option<std::time::Duration>,
    /// Strings as Utf8View/BinaryView (see `serve --view-types`).
    pub view_types: bool,
    /// The time zone sessions start in (UTC when `None`).
    pub time_zone: Option<String>,
}
