//! A real `meshgate worker`, called straight over gRPC as no gateway would: it refuses
//! every request that does not carry a stage token signed with its secret.

#![allow(clippy::expect_used, reason = "test set-up: a failed start should stop the test")]

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use meshgate_engine::distributed::{StageTokens, WORKER_TOKEN_HEADER};
use support::demo_config;
use tonic::Code;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;

const SECRET: &str = "worker-test-secret-0123456789";

struct TestWorker {
    child: Child,
    uri: String,
}

impl TestWorker {
    fn start() -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_meshgate"))
            .args(["worker", "--bind", "127.0.0.1:0", "--config"])
            .arg(demo_config())
            .env("MESHGATE_TICKET_SECRET", SECRET)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn meshgate worker");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("ready line");
        let uri = line
            .trim()
            .strip_prefix("meshgate worker listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Self { child, uri }
    }
}

impl Drop for TestWorker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GetWorkerInfo, with `token` in the stage token header when given.
async fn worker_info(channel: Channel, token: Option<&str>) -> Result<(), tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|error| tonic::Status::unavailable(error.to_string()))?;
    let mut request = tonic::Request::new(());
    if let Some(token) = token {
        request.metadata_mut().insert(WORKER_TOKEN_HEADER, token.parse().expect("ascii token"));
    }
    let path = PathAndQuery::from_static("/worker.WorkerService/GetWorkerInfo");
    grpc.unary::<(), (), _>(request, path, tonic_prost::ProstCodec::default()).await.map(|_| ())
}

#[tokio::test]
async fn a_worker_refuses_stage_requests_it_cannot_trust_and_keeps_serving() {
    let worker = TestWorker::start();
    let channel = Channel::from_shared(worker.uri.clone()).expect("uri").connect().await.expect("connect");
    let forged = StageTokens::new(b"not the secret").mint(Duration::from_secs(60));
    let garbage = "mgw1.99999999999.00.zz";
    for (token, says) in
        [(None, "no meshgate worker token"), (Some(forged.as_str()), "not signed"), (Some(garbage), "malformed")]
    {
        let status = worker_info(channel.clone(), token).await.expect_err("a forged request was served");
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        assert!(status.message().contains(says), "{}", status.message());
    }
    // A token signed with the worker's secret is accepted: the refusals above were about the token.
    let signed = StageTokens::new(SECRET.as_bytes()).mint(Duration::from_secs(60));
    worker_info(channel.clone(), Some(&signed)).await.expect("a signed request");
}
