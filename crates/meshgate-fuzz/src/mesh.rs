//! The demo mesh (testdata/mesh.yaml) loaded once per fuzz process, as `meshgate
//! serve` loads it, and the real gRPC service over it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use arrow_flight::sql::{
    ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult, Any, CommandStatementQuery,
    ProstMessageExt, TicketStatementQuery,
};
use arrow_flight::{Action, FlightDescriptor, FlightInfo};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use futures::future::BoxFuture;
use meshgate_catalog::{MeshSnapshot, load_mesh};
use meshgate_engine::{Engine, RuntimeOptions, runtime, session_config};
use meshgate_flight::auth::Authenticator;
use meshgate_flight::proto::{
    SessionOptionValue, SessionState, SetSessionOptionsRequest, StatementPayload, session_option_value,
};
use meshgate_flight::{
    Current, MeshFlightSqlService, ServerOptions, ServiceOptions, Serving, TicketSigner, grpc_service,
};
use meshgate_policy::{Principal, configured_users, load_policies};
use prost::Message;
use tonic::body::Body;
use tower_service::Service;

use crate::grpc::{Call, Outcome, read};

/// The secret the harness signs tickets with, so targets can seal payloads of their own.
pub const SECRET: &[u8] = b"meshgate fuzz harness secret, never used by a server";

/// The principal the Flight targets call as: the demo's contractor, whose rows are
/// filtered and columns masked.
pub const CALLER: &str = "carl";

/// A bearer token is minted again after this (tokens expire; fuzz runs last hours).
const TOKEN_REUSE: Duration = Duration::from_secs(300);

type CallFn = dyn Fn(http::Request<Body>) -> BoxFuture<'static, http::Response<Body>> + Send + Sync;

/// The loaded mesh and the service over it.
pub struct Harness {
    pub runtime: tokio::runtime::Runtime,
    pub engine: Arc<Engine>,
    pub auth: Arc<Authenticator>,
    pub signer: TicketSigner,
    /// The demo's users by name.
    pub principals: BTreeMap<String, Arc<Principal>>,
    call: Box<CallFn>,
    bearer: Mutex<Option<(String, Instant)>>,
    /// What a real ticket for `SELECT 1` carries, for targets to vary.
    pub ticket: StatementPayload,
    /// A real prepared-statement handle's payload (`... WHERE o_orderkey = $1`).
    pub handle: StatementPayload,
    /// The real handle itself.
    pub handle_bytes: Vec<u8>,
    /// A real session cookie's state.
    pub session: SessionState,
}

static HARNESS: OnceLock<Harness> = OnceLock::new();

/// The process's harness, loaded on first use.
pub fn harness() -> &'static Harness {
    HARNESS.get_or_init(Harness::load)
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

impl Harness {
    fn load() -> Self {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime");
        let (engine, auth) = runtime.block_on(load_demo());
        let users = configured_users(engine.snapshot().config(), engine.policy().attributes());
        let principals = users.into_iter().map(|(name, principal)| (name, Arc::new(principal))).collect();
        let signer = TicketSigner::new(SECRET, Duration::from_secs(3600));
        let current = Current::new(Serving { engine: Arc::clone(&engine), auth: Arc::clone(&auth) });
        let service = MeshFlightSqlService::new(current, signer.clone(), ServiceOptions::default()).expect("service");
        let grpc = grpc_service(service, &ServerOptions::default());
        let call: Box<CallFn> = Box::new(move |request| {
            let mut grpc = grpc.clone();
            Box::pin(async move {
                match grpc.call(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                }
            })
        });
        let mut harness = Self {
            runtime,
            engine,
            auth,
            signer,
            principals,
            call,
            bearer: Mutex::new(None),
            ticket: StatementPayload::default(),
            handle: StatementPayload::default(),
            handle_bytes: Vec::new(),
            session: SessionState::default(),
        };
        harness.ticket = harness.real_ticket();
        (harness.handle_bytes, harness.handle) = harness.real_handle();
        harness.session = harness.real_session();
        harness
    }

    /// Runs `call` as [`CALLER`] (a bearer token in `authorization`, unless the call
    /// sets its own).
    pub fn call(&self, call: &Call) -> Option<Outcome> {
        let mut call = call.clone();
        if !call.headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("authorization")) {
            call = call.header("authorization", format!("Bearer {}", self.bearer()));
        }
        let request = call.request()?;
        Some(self.runtime.block_on(async { read((self.call)(request).await).await }))
    }

    fn bearer(&self) -> String {
        let mut slot = self.bearer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((token, minted)) = slot.as_ref()
            && minted.elapsed() < TOKEN_REUSE
        {
            return token.clone();
        }
        let mut metadata = tonic::metadata::MetadataMap::new();
        let basic = STANDARD.encode(format!("{CALLER}:{CALLER}-demo"));
        metadata.insert("authorization", format!("Basic {basic}").parse().expect("header"));
        let authenticated = self.auth.authenticate(&metadata).expect("the demo user logs in");
        let token = self.auth.issue_token(&authenticated);
        *slot = Some((token.clone(), Instant::now()));
        token
    }

    /// The payload of a real statement ticket.
    fn real_ticket(&self) -> StatementPayload {
        let command = CommandStatementQuery { query: "SELECT 1".into(), transaction_id: None };
        let descriptor = FlightDescriptor::new_cmd(command.as_any().encode_to_vec());
        let outcome = self.call(&Call::unary("GetFlightInfo", &descriptor.encode_to_vec())).expect("call");
        assert!(outcome.ok(), "GetFlightInfo: {outcome:?}");
        let info = FlightInfo::decode(outcome.messages[0].clone()).expect("FlightInfo");
        let ticket = info.endpoint[0].ticket.as_ref().expect("ticket");
        let any = Any::decode(ticket.ticket.clone()).expect("Any");
        let handle =
            any.unpack::<TicketStatementQuery>().expect("unpack").expect("a statement ticket").statement_handle;
        self.open_payload(&handle)
    }

    /// A real prepared-statement handle and its payload.
    fn real_handle(&self) -> (Vec<u8>, StatementPayload) {
        let request = ActionCreatePreparedStatementRequest {
            query: "SELECT o_orderkey, o_totalprice FROM sales.orders WHERE o_orderkey = $1".into(),
            transaction_id: None,
        };
        let action = Action { r#type: "CreatePreparedStatement".into(), body: request.as_any().encode_to_vec().into() };
        let outcome = self.call(&Call::unary("DoAction", &action.encode_to_vec())).expect("call");
        assert!(outcome.ok(), "CreatePreparedStatement: {outcome:?}");
        let result = arrow_flight::Result::decode(outcome.messages[0].clone()).expect("Result");
        let any = Any::decode(result.body).expect("Any");
        let created = any.unpack::<ActionCreatePreparedStatementResult>().expect("unpack").expect("result");
        let handle = created.prepared_statement_handle.to_vec();
        let payload = self.open_payload(&handle);
        (handle, payload)
    }

    /// The state a real session cookie carries.
    fn real_session(&self) -> SessionState {
        let value =
            SessionOptionValue { option_value: Some(session_option_value::OptionValue::StringValue("sales".into())) };
        let request = SetSessionOptionsRequest { session_options: [("schema".to_owned(), value)].into() };
        let action = Action { r#type: "SetSessionOptions".into(), body: request.encode_to_vec().into() };
        let outcome = self.call(&Call::unary("DoAction", &action.encode_to_vec())).expect("call");
        assert!(outcome.ok(), "SetSessionOptions: {outcome:?}");
        let cookie = outcome.headers.get("set-cookie").and_then(|value| value.to_str().ok()).expect("set-cookie");
        let value = cookie.split(';').next().and_then(|pair| pair.split_once('=')).expect("cookie pair").1;
        let sealed = URL_SAFE_NO_PAD.decode(value).expect("base64");
        let payload = self.signer.open(&sealed).expect("signed by the harness's secret");
        SessionState::decode(payload.as_slice()).expect("session state")
    }

    fn open_payload(&self, sealed: &[u8]) -> StatementPayload {
        let payload = self.signer.open(sealed).expect("signed by the harness's secret");
        StatementPayload::decode(payload.as_slice()).expect("payload")
    }

    /// A cookie header carrying `state`, signed as the server signs them.
    pub fn cookie(&self, state: &SessionState) -> String {
        let sealed = self.signer.envelope(state.encode_to_vec());
        format!("arrow_flight_session_id={}", URL_SAFE_NO_PAD.encode(sealed))
    }
}

async fn load_demo() -> (Arc<Engine>, Arc<Authenticator>) {
    let config = load_mesh(&repo_root().join("testdata/mesh.yaml")).expect("the demo mesh loads");
    // A memory limit of its own: a query that needs more is refused, not the process.
    let options = RuntimeOptions { memory_limit: Some(512 * 1024 * 1024), ..RuntimeOptions::default() };
    let env = runtime(&options).expect("runtime");
    let session = session_config(&config.catalog);
    let snapshot = MeshSnapshot::load(config, session, env).await.expect("the demo's products open");
    let policy = load_policies(snapshot.config(), &snapshot).expect("the demo's policies load");
    let auth = Authenticator::from_config(snapshot.config(), policy.attributes(), SECRET).expect("the demo's users");
    let engine = Engine::new(Arc::new(snapshot), Arc::new(policy)).with_query_timeout(Some(Duration::from_secs(2)));
    (Arc::new(engine), Arc::new(auth))
}
