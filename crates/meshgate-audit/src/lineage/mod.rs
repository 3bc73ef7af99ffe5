//! OpenLineage events of every query ([`event`]), written as JSON lines to a file
//! and/or POSTed to an HTTP endpoint ([`http`]). Events are built and serialized on a
//! background thread; the file gets every event, the endpoint what its bounded
//! queue takes.

pub mod event;
pub mod http;

use std::path::Path;
use std::sync::Arc;

use crate::error::AuditError;
use crate::file::JsonLinesFile;
use crate::writer::Writer;
use event::RunEvent;
use http::{Delivery, HttpSink};

#[derive(Debug)]
pub(crate) struct Lineage {
    writer: Writer<RunEvent>,
    delivery: Option<Arc<Delivery>>,
}

impl Lineage {
    pub(crate) fn open(file: Option<&Path>, url: Option<&str>) -> Result<Self, AuditError> {
        let file = match file {
            Some(path) => Some(
                JsonLinesFile::open(path, None).map_err(|source| AuditError::Open { path: path.to_owned(), source })?,
            ),
            None => None,
        };
        let sink = match url {
            Some(url) => {
                let url = http::parse_url(url)?;
                let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
                    AuditError::LineageClient("posting lineage events needs a running Tokio runtime".into())
                })?;
                Some(HttpSink::spawn(url, http::QUEUE_CAPACITY, &runtime)?)
            }
            None => None,
        };
        let delivery = sink.as_ref().map(|sink| Arc::clone(sink.delivery()));
        let writer = Writer::spawn("meshgate-lineage", file, move |event: RunEvent| {
            let line = match serde_json::to_vec(&event.to_json()) {
                Ok(line) => line,
                Err(error) => {
                    tracing::error!(%error, "cannot serialize a lineage event");
                    return None;
                }
            };
            if let Some(sink) = &sink {
                sink.offer(line.clone());
            }
            Some(line)
        })
        .map_err(|source| AuditError::Thread(source.to_string()))?;
        Ok(Self { writer, delivery })
    }

    pub(crate) fn send(&self, event: RunEvent) {
        self.writer.send(event);
    }

    pub(crate) fn sync(&self) {
        self.writer.sync();
    }

    pub(crate) fn close(&self) {
        self.writer.close();
    }

    pub(crate) fn delivery(&self) -> Option<&Arc<Delivery>> {
        self.delivery.as_ref()
    }
}
