//! Command-line interface.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "meshgate", version, about = "A federated Arrow Flight SQL gateway for a data mesh")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the mesh over Arrow Flight SQL (the built-in demo mesh without --config).
    Serve(Box<ServeArgs>),
    /// Run the stages of distributed queries for gateways started with --workers.
    Worker(WorkerArgs),
    /// Validate a mesh configuration, its policies and its data; print a report; exit 1 on any error.
    Check(CheckArgs),
    /// Test and explain policies.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Read a password on stdin and print its argon2id hash, for auth.users[].password_hash.
    HashPassword,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Run every `tests:` case of the policies through the real planner; exit 1 on a failure.
    Test(PolicyTestArgs),
    /// Show what a principal may see of a query: grants, row filter, columns, governed plan.
    Explain(PolicyExplainArgs),
}

#[derive(Debug, Args)]
pub struct PolicyTestArgs {
    /// Mesh file (the demo mesh when unset).
    #[arg(long, env = "MESHGATE_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PolicyExplainArgs {
    /// Mesh file (the demo mesh when unset).
    #[arg(long, env = "MESHGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// A configured user's name, or a principal as YAML: "{name: x, groups: [a], attributes: {k: v}}".
    #[arg(long = "as")]
    pub principal: String,
    /// The query.
    pub sql: String,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Mesh file; without it, the demo mesh in testdata/ is served.
    #[arg(long, env = "MESHGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "MESHGATE_BIND", default_value = "127.0.0.1:50051")]
    pub bind: SocketAddr,
    /// PEM certificate chain (server certificate first): serve TLS, grpc+tls://.
    /// Re-read on every reload (SIGHUP); connections already open are kept.
    #[arg(long, env = "MESHGATE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "MESHGATE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates: every client must present a certificate they sign
    /// (mutual TLS); auth.client_certificates can make it the caller's principal.
    #[arg(long, env = "MESHGATE_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Seconds after which a client connection is closed gracefully (HTTP/2 GOAWAY:
    /// calls under way finish, the client reconnects for the next); 0: never.
    #[arg(long, env = "MESHGATE_MAX_CONNECTION_AGE_SECS", default_value_t = 3600)]
    pub max_connection_age_secs: u64,
    /// Address of the HTTP side: /healthz, /readyz, /metrics and the catalog web page
    /// (port 0 picks a free port). Off when unset.
    #[arg(long, env = "MESHGATE_HTTP_BIND")]
    pub http_bind: Option<SocketAddr>,
    /// Put /metrics behind the same credentials as the rest of the HTTP side (open by
    /// default, like /healthz and /readyz).
    #[arg(long, env = "MESHGATE_HTTP_METRICS_AUTH")]
    pub http_metrics_auth: bool,
    /// Seconds in-flight streams get to finish after SIGTERM/Ctrl-C before they are cancelled.
    #[arg(long, default_value_t = 10)]
    pub shutdown_grace_secs: u64,
    /// Lifetime of tickets and prepared-statement handles, in seconds.
    #[arg(long, default_value_t = 3600)]
    pub ticket_ttl_secs: u64,
    /// Memory all running queries may hold together (e.g. 1GiB); large sorts,
    /// aggregations and joins spill to disk beyond it. Unlimited when unset.
    #[arg(long, env = "MESHGATE_MEMORY_LIMIT", value_parser = meshgate_engine::parse_byte_size)]
    pub memory_limit: Option<usize>,
    /// Directory for spill files (the system temporary directory when unset).
    #[arg(long, env = "MESHGATE_SPILL_DIR")]
    pub spill_dir: Option<PathBuf>,
    /// Seconds a listing of a product's files is reused; files added to a product
    /// become visible within this time.
    #[arg(long, default_value_t = 30)]
    pub listing_ttl_secs: u64,
    /// Partitions each query is planned for (default: the number of cores).
    #[arg(long)]
    pub target_partitions: Option<usize>,
    /// Evaluate filters inside the Parquet decoder (late materialization).
    #[arg(long)]
    pub parquet_pushdown_filters: bool,
    /// Seconds a query may run, from planning to its last batch, before it is stopped
    /// with DEADLINE_EXCEEDED (no limit when unset).
    #[arg(long, env = "MESHGATE_QUERY_TIMEOUT_SECS")]
    pub query_timeout_secs: Option<f64>,
    /// Read Parquet strings as Utf8View/BinaryView and send them so. Off by default:
    /// older JDBC drivers and flightsql-dbapi cannot read view types.
    #[arg(long, env = "MESHGATE_VIEW_TYPES")]
    pub view_types: bool,
    /// The time zone sessions start in: TIMESTAMPTZ values, `now()` and
    /// `to_timestamp` take it (an IANA name such as Europe/Paris, UTC, or an offset
    /// such as +02:00). A session can set its own with the `time_zone` option.
    #[arg(long, env = "MESHGATE_TIME_ZONE", default_value = meshgate_engine::DEFAULT_TIME_ZONE, value_parser = parse_time_zone)]
    pub time_zone: String,
    /// When a client asks for partitioned endpoints, results estimated below this
    /// many rows still come back as one endpoint.
    #[arg(long, default_value_t = 100_000)]
    pub partition_min_rows: usize,
    /// Directory of the audit log: audit.jsonl, one JSON line per query (allowed,
    /// refused or failed), rotated by size. No audit file when unset.
    #[arg(long, env = "MESHGATE_AUDIT_DIR")]
    pub audit_dir: Option<PathBuf>,
    /// Size at which the audit log is rotated to audit-<timestamp>.jsonl (e.g. 64MiB).
    #[arg(long, env = "MESHGATE_AUDIT_MAX_BYTES", default_value = "64MiB", value_parser = meshgate_engine::parse_byte_size)]
    pub audit_max_bytes: usize,
    /// Rotated audit files kept; older ones are deleted.
    #[arg(long, env = "MESHGATE_AUDIT_KEEP", default_value_t = 10)]
    pub audit_keep: usize,
    /// File OpenLineage run events are appended to, one JSON line each.
    #[arg(long, env = "MESHGATE_LINEAGE_FILE")]
    pub lineage_file: Option<PathBuf>,
    /// HTTP endpoint each OpenLineage run event is POSTed to (Marquez:
    /// http://HOST:5000/api/v1/lineage). Events it cannot take are dropped and
    /// counted; queries never wait for it.
    #[arg(long, env = "MESHGATE_LINEAGE_URL", value_parser = parse_lineage_url)]
    pub lineage_url: Option<String>,
    /// Reload only on SIGHUP: do not watch the mesh file, descriptor folders, policy
    /// and contract files for changes (watched by default).
    #[arg(long, env = "MESHGATE_NO_WATCH")]
    pub no_watch: bool,
    /// Distributed workers (`meshgate worker`), as host:port or http://host:port,
    /// comma-separated: queries reading at least --distribute-min-bytes are spread
    /// over them. Needs MESHGATE_TICKET_SECRET, shared with the workers.
    #[arg(long, env = "MESHGATE_WORKERS", value_delimiter = ',')]
    pub workers: Vec<String>,
    /// Queries reading fewer bytes of files than this run on the gateway (e.g. 64MiB; 0: every query that can).
    #[arg(long, env = "MESHGATE_DISTRIBUTE_MIN_BYTES", default_value = "64MiB", value_parser = meshgate_engine::parse_byte_size)]
    pub distribute_min_bytes: usize,
    /// Bytes of files each partition of a distributed scan reads: a scan is spread over
    /// bytes / this / target partitions workers (at most all of them).
    #[arg(long, env = "MESHGATE_DISTRIBUTE_PARTITION_BYTES", default_value = "16MiB", value_parser = meshgate_engine::parse_byte_size)]
    pub distribute_partition_bytes: usize,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Mesh file: the worker reads products with its store credentials (the demo mesh when unset).
    #[arg(long, env = "MESHGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on for gateways (port 0 picks a free port).
    #[arg(long, env = "MESHGATE_WORKER_BIND", default_value = "127.0.0.1:50061")]
    pub bind: SocketAddr,
    /// Memory the stages running here may hold together (e.g. 1GiB); unlimited when unset.
    #[arg(long, env = "MESHGATE_MEMORY_LIMIT", value_parser = meshgate_engine::parse_byte_size)]
    pub memory_limit: Option<usize>,
    /// Directory for spill files (the system temporary directory when unset).
    #[arg(long, env = "MESHGATE_SPILL_DIR")]
    pub spill_dir: Option<PathBuf>,
}

impl ServeArgs {
    pub fn tuning(&self) -> crate::load::Tuning {
        crate::load::Tuning {
            target_partitions: self.target_partitions,
            parquet_pushdown_filters: self.parquet_pushdown_filters,
            query_timeout: self.query_timeout_secs.filter(|s| *s > 0.0).map(std::time::Duration::from_secs_f64),
            view_types: self.view_types,
            time_zone: Some(self.time_zone.clone()),
        }
    }

    pub fn service_options(
        &self,
        audit: meshgate_audit::Audit,
        metrics: std::sync::Arc<meshgate_flight::Metrics>,
    ) -> meshgate_flight::ServiceOptions {
        meshgate_flight::ServiceOptions {
            view_types: self.view_types,
            partition_min_rows: self.partition_min_rows,
            audit,
            metrics,
        }
    }

    /// The HTTP side's settings; `flight_uri` is the Flight address as announced.
    pub fn http_options(&self, flight_uri: String) -> meshgate_http::HttpOptions {
        meshgate_http::HttpOptions { metrics_auth: self.http_metrics_auth, flight_uri: Some(flight_uri) }
    }

    pub fn audit_options(&self) -> meshgate_audit::AuditOptions {
        meshgate_audit::AuditOptions {
            dir: self.audit_dir.clone(),
            rotation: Some(meshgate_audit::Rotation { max_bytes: self.audit_max_bytes as u64, keep: self.audit_keep }),
            lineage_file: self.lineage_file.clone(),
            lineage_url: self.lineage_url.clone(),
        }
    }

    /// The TLS files, when --tls-cert is given (clap requires --tls-key with it).
    pub fn tls_files(&self) -> Option<meshgate_flight::tls::TlsFiles> {
        Some(meshgate_flight::tls::TlsFiles {
            cert: self.tls_cert.clone()?,
            key: self.tls_key.clone()?,
            client_ca: self.tls_client_ca.clone(),
        })
    }

    pub fn connection_limits(&self) -> meshgate_flight::ConnectionLimits {
        let age = Some(std::time::Duration::from_secs(self.max_connection_age_secs)).filter(|age| !age.is_zero());
        meshgate_flight::ConnectionLimits { max_connection_age: age, ..Default::default() }
    }

    pub fn runtime_options(&self) -> meshgate_engine::RuntimeOptions {
        meshgate_engine::RuntimeOptions {
            memory_limit: self.memory_limit,
            spill_dir: self.spill_dir.clone(),
            listing_ttl: std::time::Duration::from_secs(self.listing_ttl_secs),
        }
    }
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Mesh file to check.
    #[arg(long, env = "MESHGATE_CONFIG")]
    pub config: PathBuf,
    /// Distributed workers to check too (host:port or http://host:port, comma-separated).
    #[arg(long, env = "MESHGATE_WORKERS", value_delimiter = ',')]
    pub workers: Vec<String>,
}

fn parse_lineage_url(url: &str) -> Result<String, String> {
    match meshgate_audit::lineage::http::parse_url(url) {
        Ok(_) => Ok(url.to_owned()),
        Err(meshgate_audit::AuditError::LineageUrl { reason, .. }) => Err(reason),
        Err(other) => Err(other.to_string()),
    }
}

fn parse_time_zone(zone: &str) -> Result<String, String> {
    meshgate_engine::check_time_zone(zone).map(|()| zone.to_owned())
}
