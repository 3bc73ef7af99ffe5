//! A real meshgate process on a free port, and a Flight SQL client for it.

#![allow(
    dead_code,
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test support: a failed set-up should stop the test"
)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use arrow::array::RecordBatch;
use arrow_flight::sql::client::FlightSqlServiceClient;
use futures::TryStreamExt;
use tonic::transport::Channel;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repo root")
}

pub fn demo_config() -> PathBuf {
    repo_root().join("testdata/mesh.yaml")
}

/// Governance for meshes tests write themselves: anonymous callers read everything.
pub const OPEN_GOVERNANCE: &str = r#"
auth:
  anonymous: { name: tester, groups: [tester] }
governance:
  policies:
    - grants: [{ id: everyone, effect: permit }]
      row_filters: [{ id: all-rows, mode: permissive, filter: "true" }]
      columns: [{ id: all-columns, select: "*", action: allow }]
"#;

/// A `meshgate serve` child process; killed on drop.
pub struct TestServer {
    child: Child,
    pub uri: String,
    /// The demo mesh has no anonymous access: clients log in as its steward.
    login: Option<(&'static str, &'static str)>,
}

impl TestServer {
    /// Starts meshgate on `config` and waits for its ready line.
    pub fn start(config: &Path) -> Self {
        Self::start_with(config, &[])
    }

    /// Starts meshgate on `config` with extra `serve` flags.
    pub fn start_with(config: &Path, flags: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_meshgate"))
            .args(["serve", "--bind", "127.0.0.1:0", "--config"])
            .arg(config)
            .args(flags)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn meshgate");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("ready line");
        let uri = line
            .trim()
            .strip_prefix("meshgate listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .replace("grpc://", "http://");
        let login = (config == demo_config()).then_some(("stella", "stella-demo"));
        Self { child, uri, login }
    }

    /// A client, logged in as the demo steward on the demo mesh.
    pub async fn client(&self) -> FlightSqlServiceClient<Channel> {
        let mut client = self.anonymous_client().await;
        if let Some((user, password)) = self.login {
            client.handshake(user, password).await.expect("log in");
        }
        client
    }

    /// A client that has not logged in.
    pub async fn anonymous_client(&self) -> FlightSqlServiceClient<Channel> {
        let channel = Channel::from_shared(self.uri.clone()).expect("uri").connect().await.expect("connect");
        FlightSqlServiceClient::new(channel)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `sql` through GetFlightInfo + DoGet on every endpoint.
pub async fn query(client: &mut FlightSqlServiceClient<Channel>, sql: &str) -> Result<Vec<RecordBatch>, tonic::Status> {
    let info = client.execute(sql.to_owned(), None).await.map_err(to_status)?;
    let mut batches = Vec::new();
    for endpoint in info.endpoint {
        let ticket = endpoint.ticket.expect("ticket");
        let stream = client.do_get(ticket).await.map_err(to_status)?;
        let mut got: Vec<RecordBatch> = stream.try_collect().await.map_err(to_status)?;
        batches.append(&mut got);
    }
    Ok(batches)
}

pub fn to_status(error: arrow_flight::error::FlightError) -> tonic::Status {
    match error {
        arrow_flight::error::FlightError::Tonic(status) => *status,
        other => tonic::Status::unknown(other.to_string()),
    }
}

pub fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

/// Writes a fixture file, creating its directories.
pub fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("a file path")).expect("create dirs");
    std::fs::write(path, text).expect("write fixture");
}
