//! Warnings for the client about a result it is served anyway (a degraded product,
//! a deprecated version): in FlightInfo's `app_metadata` as JSON
//! (`{"warnings": [...]}`) and on DoGet as `x-meshgate-warning` metadata, one entry
//! per warning (trailers on the statement route; initial metadata on tonic's path,
//! which cannot add trailers).

use bytes::Bytes;

/// The metadata key each warning travels under.
pub const WARNING_HEADER: &str = "x-meshgate-warning";

/// FlightInfo `app_metadata` carrying `warnings` (empty when there are none).
pub(crate) fn app_metadata(warnings: &[String]) -> Bytes {
    if warnings.is_empty() {
        return Bytes::new();
    }
    Bytes::from(serde_json::json!({ "warnings": warnings }).to_string())
}

/// Appends one `x-meshgate-warning` entry per warning to `headers`.
pub(crate) fn append_headers(headers: &mut http::HeaderMap, warnings: &[String]) {
    for warning in warnings {
        if let Ok(value) = http::HeaderValue::from_str(&header_text(warning)) {
            headers.append(WARNING_HEADER, value);
        }
    }
}

/// Appends one `x-meshgate-warning` entry per warning to a response's metadata.
pub(crate) fn append_metadata(metadata: &mut tonic::metadata::MetadataMap, warnings: &[String]) {
    for warning in warnings {
        if let Ok(value) = tonic::metadata::AsciiMetadataValue::try_from(header_text(warning)) {
            metadata.append(WARNING_HEADER, value);
        }
    }
}

/// A warning as a metadata value: gRPC metadata is printable ASCII, so other bytes
/// (and `%`) are percent-encoded, as gRPC encodes `grpc-message`.
fn header_text(warning: &str) -> String {
    let mut out = String::with_capacity(warning.len());
    for byte in warning.bytes() {
        if (0x20..0x7f).contains(&byte) && byte != b'%' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_travel_as_json_and_metadata() {
        assert!(app_metadata(&[]).is_empty());
        let warnings = vec!["product a.b is degraded: 100% bad".to_owned(), "é".to_owned()];
        let json: serde_json::Value = serde_json::from_slice(&app_metadata(&warnings)).expect("json");
        assert_eq!(json["warnings"][0], "product a.b is degraded: 100% bad");
        let mut headers = http::HeaderMap::new();
        append_headers(&mut headers, &warnings);
        let values: Vec<&str> = headers.get_all(WARNING_HEADER).iter().map(|v| v.to_str().expect("ascii")).collect();
        assert_eq!(values, ["product a.b is degraded: 100%25 bad", "%C3%A9"]);
    }
}
