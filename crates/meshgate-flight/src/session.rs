//! Session options and the per-call settings they feed.
//!
//! A client sets options with Flight's SetSessionOptions action (ADBC:
//! `adbc.connection.db_schema` or `adbc.flight.sql.session.option.<name>`; JDBC:
//! `schema=` in the URL) and reads them back with GetSessionOptions. meshgate keeps no
//! session table: the options travel in the `arrow_flight_session_id` cookie, signed
//! and bound to the principal, so any replica serves them and a cookie is worthless to
//! anyone else. Clients without cookie support set the same settings per call with
//! `x-meshgate-<option>` headers (ADBC: `adbc.flight.sql.rpc.call_header.<header>`),
//! which win over the session.
//!
//! | option | value | effect |
//! | --- | --- | --- |
//! | `catalog` | the mesh's catalog name | accepted; there is one catalog |
//! | `schema` | a domain | unqualified product names resolve in it |
//! | `query_timeout_seconds` | number > 0 | stops a query after that long (never beyond the server's limit) |
//! | `endpoints` | `single` or `partitioned` | one endpoint, or one per independent partition |
//! | `time_zone` | an IANA name, `UTC` or an offset | the zone TIMESTAMPTZ values, `now()` and `to_timestamp` take |
//! | `purpose` | text | what the queries are for: `principal.purpose` in policies, recorded in the audit log |
//! | `shards` | 1 to 1024 | a result is described as that many shards (docs/ml.md) |
//! | `provenance` | boolean | products carry `_source_file` and `_source_row` columns |

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use prost::Message;
use tonic::Request;
use tonic::metadata::MetadataMap;

use meshgate_engine::{Engine, check_time_zone};
use meshgate_policy::Principal;

use crate::error::FlightError;
use crate::proto::session_option_value::OptionValue;
use crate::proto::set_session_options_result::{Error as OptionError, ErrorValue};
use crate::proto::{SessionOptionValue, SessionState};
use crate::revocations::Revocations;
use crate::tickets::{TicketSigner, fingerprint, now_ms};

/// The cookie the session travels in (the name Flight suggests).
pub const SESSION_COOKIE: &str = "arrow_flight_session_id";

/// How long a session lasts after its options were last set.
const SESSION_TTL: Duration = Duration::from_secs(24 * 3600);

/// The per-call header that sets endpoints (ADBC:
/// `adbc.flight.sql.rpc.call_header.x-meshgate-endpoints`).
pub const ENDPOINTS_HEADER: &str = "x-meshgate-endpoints";
const SCHEMA_HEADER: &str = "x-meshgate-schema";
const TIMEOUT_HEADER: &str = "x-meshgate-query-timeout-seconds";
const TIME_ZONE_HEADER: &str = "x-meshgate-time-zone";
const SHARDS_HEADER: &str = "x-meshgate-shards";
const PROVENANCE_HEADER: &str = "x-meshgate-provenance";

const CATALOG: &str = "catalog";
const SCHEMA: &str = "schema";
const QUERY_TIMEOUT: &str = "query_timeout_seconds";
const ENDPOINTS: &str = "endpoints";
const TIME_ZONE: &str = "time_zone";
const PURPOSE: &str = "purpose";
const SHARDS: &str = "shards";
const PROVENANCE: &str = "provenance";

/// The most shards a result may be read as.
pub const MAX_SHARDS: u32 = 1024;

/// How a result is split into endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Endpoints {
    #[default]
    Single,
    Partitioned,
}

impl Endpoints {
    fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_lowercase().as_str() {
            "single" => Some(Self::Single),
            "partitioned" => Some(Self::Partitioned),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Single => "single",
            Self::Partitioned => "partitioned",
        }
    }
}

/// What applies to one call: the session's options, overridden by call headers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallSettings {
    pub schema: Option<String>,
    pub query_timeout: Option<Duration>,
    pub endpoints: Endpoints,
    /// The time zone (the server's when `None`).
    pub time_zone: Option<String>,
    /// What the call is for (`principal.purpose`).
    pub purpose: Option<String>,
    /// Read the result as this many shards (`None`: endpoints decide).
    pub shards: Option<u32>,
    /// Products carry the provenance columns.
    pub provenance: bool,
}

/// Reads and writes sessions.
#[derive(Debug, Clone)]
pub struct Sessions {
    signer: TicketSigner,
    closed: Revocations,
}

impl Sessions {
    pub fn new(signer: TicketSigner) -> Self {
        Self { signer, closed: Revocations::default() }
    }

    /// The session the call's cookie carries (a fresh one without a cookie).
    /// A cookie that is forged, of another principal, expired or closed is an error:
    /// silently dropping the options would run queries in another schema.
    pub fn current<T>(&self, request: &Request<T>, principal: &Principal) -> Result<SessionState, FlightError> {
        let Some(cookie) = session_cookie(request.metadata()) else {
            return Ok(SessionState { id: rand::random::<[u8; 16]>().to_vec(), ..Default::default() });
        };
        let invalid = || FlightError::SessionNotFound("the session cookie is not valid".into());
        let bytes = URL_SAFE_NO_PAD.decode(cookie.as_bytes()).map_err(|_| invalid())?;
        let payload = self.signer.open(&bytes).ok_or_else(invalid)?;
        let state = SessionState::decode(payload.as_slice()).map_err(|_| invalid())?;
        if state.principal != fingerprint(principal) {
            return Err(FlightError::OtherPrincipal("the session cookie belongs to another principal".into()));
        }
        if state.expires_at_ms <= now_ms() || self.closed.contains(&state.id) {
            return Err(FlightError::SessionNotFound(
                "the session is closed or expired; drop the session cookie and set the options again".into(),
            ));
        }
        Ok(state)
    }

    /// The settings for one call: the session's, then the call headers'. A schema
    /// header must name a domain the principal can see (hidden reads as unknown).
    pub fn settings<T>(
        &self,
        request: &Request<T>,
        principal: &Principal,
        visible_domain: impl Fn(&str) -> bool,
    ) -> Result<CallSettings, FlightError> {
        let state = self.current(request, principal)?;
        let mut settings = CallSettings {
            schema: Some(state.schema).filter(|schema| !schema.is_empty()),
            query_timeout: Some(Duration::from_millis(state.query_timeout_ms)).filter(|t| !t.is_zero()),
            endpoints: Endpoints::parse(&state.endpoints).unwrap_or_default(),
            time_zone: Some(state.time_zone).filter(|zone| !zone.is_empty()),
            purpose: Some(state.purpose).filter(|purpose| !purpose.is_empty()),
            shards: Some(state.shards).filter(|shards| *shards > 0),
            provenance: state.provenance,
        };
        let metadata = request.metadata();
        if let Some(value) = header(metadata, SCHEMA_HEADER)? {
            settings.schema = Some(value.to_owned()).filter(|schema| !schema.is_empty());
            if let Some(schema) = &settings.schema
                && !visible_domain(schema)
            {
                return Err(FlightError::BadRequest(format!(
                    "call header {SCHEMA_HEADER} must be a domain name; there is no domain '{schema}'"
                )));
            }
        }
        if let Some(value) = header(metadata, TIMEOUT_HEADER)? {
            let seconds = value.trim().parse::<f64>().ok();
            settings.query_timeout = Some(timeout(seconds).ok_or_else(|| bad_header(TIMEOUT_HEADER))?);
        }
        if let Some(value) = header(metadata, TIME_ZONE_HEADER)? {
            let zone = value.trim();
            check_time_zone(zone)
                .map_err(|problem| FlightError::BadRequest(format!("call header {TIME_ZONE_HEADER}: {problem}")))?;
            settings.time_zone = Some(zone.to_owned());
        }
        if let Some(value) = header(metadata, ENDPOINTS_HEADER)? {
            settings.endpoints = Endpoints::parse(value.trim()).ok_or_else(|| bad_header(ENDPOINTS_HEADER))?;
        }
        if let Some(value) = header(metadata, crate::audit::PURPOSE_HEADER)? {
            settings.purpose = crate::audit::declared_purpose(Some(value));
        }
        if let Some(value) = header(metadata, SHARDS_HEADER)? {
            settings.shards = Some(parse_shards(value).ok_or_else(|| {
                FlightError::BadRequest(format!(
                    "call header {SHARDS_HEADER} must be a whole number from 1 to {MAX_SHARDS}, not '{value}'"
                ))
            })?);
        }
        if let Some(value) = header(metadata, PROVENANCE_HEADER)? {
            settings.provenance = parse_flag(value).ok_or_else(|| bad_header(PROVENANCE_HEADER))?;
        }
        Ok(settings)
    }

    /// Applies SetSessionOptions to `state`; returns the options that were refused.
    pub fn set(
        &self,
        state: &mut SessionState,
        options: HashMap<String, SessionOptionValue>,
        engine: &Engine,
        principal: &std::sync::Arc<Principal>,
    ) -> HashMap<String, OptionError> {
        let mut errors = HashMap::new();
        for (name, value) in options {
            let value = value.option_value;
            let outcome = match name.as_str() {
                CATALOG => match value {
                    Some(OptionValue::StringValue(catalog)) if catalog == engine.snapshot().catalog_name() => Ok(()),
                    None => Ok(()),
                    _ => Err(ErrorValue::InvalidValue),
                },
                SCHEMA => match value {
                    None => {
                        state.schema.clear();
                        Ok(())
                    }
                    // A hidden domain is refused exactly like a missing one.
                    Some(OptionValue::StringValue(schema))
                        if engine.view(std::sync::Arc::clone(principal)).domain_names().contains(&schema) =>
                    {
                        state.schema = schema;
                        Ok(())
                    }
                    Some(_) => Err(ErrorValue::InvalidValue),
                },
                QUERY_TIMEOUT => match value {
                    None => {
                        state.query_timeout_ms = 0;
                        Ok(())
                    }
                    Some(OptionValue::DoubleValue(seconds)) => set_timeout(state, Some(seconds)),
                    Some(OptionValue::Int64Value(seconds)) => set_timeout(state, Some(seconds as f64)),
                    Some(OptionValue::StringValue(seconds)) => set_timeout(state, seconds.trim().parse().ok()),
                    Some(_) => Err(ErrorValue::InvalidValue),
                },
                ENDPOINTS => match value {
                    None => {
                        state.endpoints.clear();
                        Ok(())
                    }
                    Some(OptionValue::StringValue(endpoints)) => match Endpoints::parse(&endpoints) {
                        Some(endpoints) => {
                            state.endpoints = endpoints.name().to_owned();
                            Ok(())
                        }
                        None => Err(ErrorValue::InvalidValue),
                    },
                    Some(_) => Err(ErrorValue::InvalidValue),
                },
                TIME_ZONE => match value {
                    None => {
                        state.time_zone.clear();
                        Ok(())
                    }
                    Some(OptionValue::StringValue(zone)) if check_time_zone(zone.trim()).is_ok() => {
                        state.time_zone = zone.trim().to_owned();
                        Ok(())
                    }
                    Some(_) => Err(ErrorValue::InvalidValue),
                },
                PURPOSE => match value {
                    None => {
                        state.purpose.clear();
                        Ok(())
                    }
                    Some(OptionValue::StringValue(purpose)) => {
                        state.purpose = crate::audit::declared_purpose(Some(&purpose)).unwrap_or_default();
                        Ok(())
                    }
                    Some(_) => Err(ErrorValue::InvalidValue),
                },
                SHARDS => match value {
                    None => {
                        state.shards = 0;
                        Ok(())
                    }
                    Some(OptionValue::Int64Value(shards)) => u32::try_from(shards)
                        .ok()
                        .filter(|shards| (1..=MAX_SHARDS).contains(shards))
                        .map(|shards| state.shards = shards)
                        .ok_or(ErrorValue::InvalidValue),
                    Some(OptionValue::StringValue(shards)) => {
                        parse_shards(&shards).map(|shards| state.shards = shards).ok_or(ErrorValue::InvalidValue)
                    }
                    Some(_) => Err(ErrorValue::InvalidValue),
                },
                PROVENANCE => match value {
                    None => {
                        state.provenance = false;
                        Ok(())
                    }
                    Some(OptionValue::BoolValue(flag)) => {
                        state.provenance = flag;
                        Ok(())
                    }
                    Some(OptionValue::StringValue(flag)) => {
                        parse_flag(&flag).map(|flag| state.provenance = flag).ok_or(ErrorValue::InvalidValue)
                    }
                    Some(_) => Err(ErrorValue::InvalidValue),
                },
                _ => Err(ErrorValue::InvalidName),
            };
            if let Err(error) = outcome {
                tracing::debug!(option = %name, ?error, "session option refused");
                errors.insert(name, OptionError { value: error as i32 });
            }
        }
        errors
    }

    /// The options of `state` as GetSessionOptions reports them.
    pub fn options(&self, state: &SessionState, engine: &Engine) -> HashMap<String, SessionOptionValue> {
        let string =
            |value: &str| SessionOptionValue { option_value: Some(OptionValue::StringValue(value.to_owned())) };
        let mut options = HashMap::from([(CATALOG.to_owned(), string(engine.snapshot().catalog_name()))]);
        if !state.schema.is_empty() {
            options.insert(SCHEMA.to_owned(), string(&state.schema));
        }
        if state.query_timeout_ms > 0 {
            let seconds = state.query_timeout_ms as f64 / 1000.0;
            options.insert(
                QUERY_TIMEOUT.to_owned(),
                SessionOptionValue { option_value: Some(OptionValue::DoubleValue(seconds)) },
            );
        }
        if !state.endpoints.is_empty() {
            options.insert(ENDPOINTS.to_owned(), string(&state.endpoints));
        }
        if !state.time_zone.is_empty() {
            options.insert(TIME_ZONE.to_owned(), string(&state.time_zone));
        }
        if !state.purpose.is_empty() {
            options.insert(PURPOSE.to_owned(), string(&state.purpose));
        }
        if state.shards > 0 {
            let shards = SessionOptionValue { option_value: Some(OptionValue::Int64Value(i64::from(state.shards))) };
            options.insert(SHARDS.to_owned(), shards);
        }
        if state.provenance {
            options
                .insert(PROVENANCE.to_owned(), SessionOptionValue { option_value: Some(OptionValue::BoolValue(true)) });
        }
        options
    }

    /// The `set-cookie` value carrying `state` for `principal`.
    pub fn cookie(&self, mut state: SessionState, principal: &Principal) -> String {
        state.principal = fingerprint(principal);
        state.expires_at_ms = now_ms().saturating_add(SESSION_TTL.as_millis() as u64);
        let sealed = self.signer.envelope(state.encode_to_vec());
        format!("{SESSION_COOKIE}={}; Max-Age={}", URL_SAFE_NO_PAD.encode(sealed), SESSION_TTL.as_secs())
    }

    /// Closes `state`: its cookie is refused from now on (by this server) and the
    /// returned `set-cookie` value tells the client to drop it.
    pub fn close(&self, state: &SessionState) -> String {
        if state.expires_at_ms > 0 {
            self.closed.insert(state.id.clone(), state.expires_at_ms);
        }
        format!("{SESSION_COOKIE}=; Max-Age=0")
    }
}

/// A shard count: a whole number from 1 to [`MAX_SHARDS`].
fn parse_shards(value: &str) -> Option<u32> {
    value.trim().parse::<u32>().ok().filter(|shards| (1..=MAX_SHARDS).contains(shards))
}

/// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
fn parse_flag(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn set_timeout(state: &mut SessionState, seconds: Option<f64>) -> Result<(), ErrorValue> {
    let limit = timeout(seconds).ok_or(ErrorValue::InvalidValue)?;
    state.query_timeout_ms = limit.as_millis().max(1) as u64;
    Ok(())
}

/// A timeout in seconds: finite, positive, at most a year.
fn timeout(seconds: Option<f64>) -> Option<Duration> {
    seconds.filter(|s| s.is_finite() && *s > 0.0 && *s <= 365.0 * 24.0 * 3600.0).map(Duration::from_secs_f64)
}

fn header<'a>(metadata: &'a MetadataMap, name: &'static str) -> Result<Option<&'a str>, FlightError> {
    match metadata.get(name) {
        None => Ok(None),
        Some(value) => value.to_str().map(Some).map_err(|_| bad_header(name)),
    }
}

fn bad_header(name: &str) -> FlightError {
    let expected = match name {
        ENDPOINTS_HEADER => "'single' or 'partitioned'",
        TIMEOUT_HEADER => "a number of seconds greater than 0",
        _ => "a domain name",
    };
    FlightError::BadRequest(format!("call header {name} must be {expected}"))
}

/// The session cookie's value among the call's `cookie` headers.
fn session_cookie(metadata: &MetadataMap) -> Option<String> {
    metadata
        .get_all("cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim_matches('"').to_owned())
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_with_cookie(cookie: &str) -> Request<()> {
        let mut request = Request::new(());
        request.metadata_mut().insert("cookie", cookie.parse().unwrap());
        request
    }

    #[test]
    fn cookie_round_trip_and_principal_binding() {
        let sessions = Sessions::new(TicketSigner::new(b"k".to_vec(), Duration::from_secs(60)));
        let ana = Principal::new("ana");
        let state = SessionState { id: vec![1; 16], schema: "sales".into(), ..Default::default() };
        let set_cookie = sessions.cookie(state, &ana);
        let value = set_cookie.split(';').next().unwrap();
        let request = request_with_cookie(&format!("other=1; {value}"));
        let settings = sessions.settings(&request, &ana, |_| true).unwrap();
        assert_eq!(settings.schema.as_deref(), Some("sales"));
        assert!(matches!(sessions.current(&request, &Principal::new("bob")), Err(FlightError::OtherPrincipal(_))));
        let state = sessions.current(&request, &ana).unwrap();
        sessions.close(&state);
        assert!(matches!(sessions.current(&request, &ana), Err(FlightError::SessionNotFound(_))));
        let forged = request_with_cookie(&format!("{SESSION_COOKIE}=AAAA"));
        assert!(matches!(sessions.current(&forged, &ana), Err(FlightError::SessionNotFound(_))));
    }

    #[test]
    fn headers_override_and_are_validated() {
        let sessions = Sessions::new(TicketSigner::new(b"k".to_vec(), Duration::from_secs(60)));
        let ana = Principal::new("ana");
        let mut request = Request::new(());
        request.metadata_mut().insert(TIMEOUT_HEADER, "2.5".parse().unwrap());
        request.metadata_mut().insert(ENDPOINTS_HEADER, "Partitioned".parse().unwrap());
        let settings = sessions.settings(&request, &ana, |_| true).unwrap();
        assert_eq!(settings.query_timeout, Some(Duration::from_millis(2500)));
        assert_eq!(settings.endpoints, Endpoints::Partitioned);
        request.metadata_mut().insert(TIMEOUT_HEADER, "-1".parse().unwrap());
        assert!(matches!(sessions.settings(&request, &ana, |_| true), Err(FlightError::BadRequest(_))));
    }
}
