//! `meshgate worker`: a process that runs the stages of distributed queries for a
//! gateway. It plans nothing and serves no user: each request must carry a stage token
//! signed with the gateway's secret ([`super::token`]). It reads products' files with
//! the store credentials of the same mesh file, and masks with its own copy of the
//! gateway's `MESHGATE_MASK_KEY_<DOMAIN>` keys.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::execution::SessionState;
use datafusion::execution::registry::FunctionRegistry;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use datafusion_distributed::{DistributedExt, Worker, WorkerQueryContext};
use http::HeaderMap;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Status};

use super::codec::MeshCodec;
use super::token::{StageTokens, WORKER_TOKEN_HEADER};

/// What a worker needs from the mesh file and its environment.
pub struct WorkerOptions {
    /// `MESHGATE_TICKET_SECRET`, shared with the gateway.
    pub secret: Vec<u8>,
    /// The stores of the mesh file registered, and the worker's memory limit and spill directory.
    pub runtime: Arc<RuntimeEnv>,
    /// The mesh's domains, whose mask keys the worker looks up.
    pub domains: Vec<String>,
    /// The mesh's catalog name (`current_database()`).
    pub catalog: String,
}

/// Serves stages on `listener` until `shutdown` resolves.
pub async fn serve_worker(
    listener: TcpListener,
    options: WorkerOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let tokens = StageTokens::new(&options.secret);
    let worker = worker(options);
    let check = move |request: Request<()>| -> Result<Request<()>, Status> {
        let token = request.metadata().get(WORKER_TOKEN_HEADER).and_then(|value| value.to_str().ok());
        match tokens.verify(token) {
            Ok(()) => Ok(request),
            Err(refusal) => {
                tracing::warn!(%refusal, "refused a stage request");
                Err(Status::unauthenticated(refusal.to_string()))
            }
        }
    };
    tonic::transport::Server::builder()
        .layer(tonic::service::InterceptorLayer::new(check))
        .add_service(worker.into_worker_server())
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await
}

fn worker(options: WorkerOptions) -> Worker {
    let mut keys = BTreeMap::new();
    let mut missing = Vec::new();
    for domain in &options.domains {
        match meshgate_policy::keyed_hash_from_env(domain) {
            Some(udf) => {
                keys.insert(domain.clone(), udf);
            }
            None => missing.push(meshgate_policy::mask_key_variable(domain)),
        }
    }
    if !missing.is_empty() {
        tracing::warn!(
            "no keyed_hash key in {}: stages masking those domains' products with keyed_hash will fail here",
            missing.join(", ")
        );
    }
    let codec = Arc::new(MeshCodec::with_keys(keys));
    let catalog: Arc<str> = options.catalog.into();
    let build = move |ctx: WorkerQueryContext| {
        let codec = Arc::clone(&codec);
        let catalog = Arc::clone(&catalog);
        async move { stage_session(ctx, codec, &catalog) }
    };
    Worker::from_session_builder(build).with_runtime_env(options.runtime)
}

/// The session one stage runs in: meshgate's functions, its codec, and the caller's
/// token passed on to the workers this stage reads from.
fn stage_session(ctx: WorkerQueryContext, codec: Arc<MeshCodec>, catalog: &str) -> Result<SessionState> {
    let mut passthrough = HeaderMap::new();
    if let Some(token) = ctx.headers.get(WORKER_TOKEN_HEADER) {
        passthrough.insert(WORKER_TOKEN_HEADER, token.clone());
    }
    let mut state =
        ctx.builder.with_distributed_user_codec_arc(codec).with_distributed_passthrough_headers(passthrough)?.build();
    crate::functions::register_dialect(&mut state, catalog)?;
    state.register_udf(Arc::new(ScalarUDF::new_from_impl(UnboundKeyedHash::default())))?;
    Ok(state)
}

/// `keyed_hash` as a worker decodes it before [`MeshCodec`] binds it to its
/// barrier's domain; evaluating it unbound is an error, never a hash.
#[derive(Debug, PartialEq, Eq, Hash)]
struct UnboundKeyedHash {
    signature: Signature,
}

impl Default for UnboundKeyedHash {
    fn default() -> Self {
        Self { signature: Signature::exact(vec![DataType::Utf8], Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for UnboundKeyedHash {
    fn name(&self) -> &str {
        "keyed_hash"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        datafusion::common::exec_err!("keyed_hash outside a governed scan is not bound to a domain's key")
    }
}
