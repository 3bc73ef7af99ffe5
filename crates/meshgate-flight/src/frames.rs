//! Flight data as gRPC message frames, without copying the batches.
//!
//! A DoGet response is a sequence of gRPC messages, each a `FlightData` whose
//! `data_header` is an Arrow IPC message and whose `data_body` its buffers. Built the
//! usual way (arrow-flight's encoder, then tonic's codec) every byte of a result is
//! copied twice on its way to the socket: into one IPC body vector, then into the
//! codec's buffer. Here each message becomes a small copied prefix (gRPC length
//! prefix, the protobuf tags and lengths, the IPC header) followed by the batch's own
//! Arrow buffers, shared, so the body reaches the socket as the plan produced it.

use std::collections::VecDeque;

use arrow::array::RecordBatch;
use arrow::buffer::Buffer;
use arrow::datatypes::Schema;
use arrow::error::ArrowError;
use arrow::ipc::MessageHeader;
use arrow::ipc::writer::{IpcWriteOptions, StreamEncoder};
use bytes::{BufMut, Bytes, BytesMut};

use crate::error::FlightError;

/// `FlightData.data_header` (field 2, length-delimited).
const DATA_HEADER_TAG: u8 = 2 << 3 | 2;
/// `FlightData.data_body` (field 1000, length-delimited) as a varint.
const DATA_BODY_TAG: [u8; 2] = [0xC2, 0x3E];
/// The IPC stream's message marker.
const CONTINUATION: u32 = 0xFFFF_FFFF;
/// Buffers smaller than this are copied into the preceding chunk rather than sent
/// on their own (padding, validity bitmaps of small batches).
const SHARE_AT_LEAST: usize = 4096;
/// The gRPC length prefix: compressed flag and a 32-bit length.
const GRPC_PREFIX_LEN: usize = 5;

/// Encodes a result as gRPC frames of `FlightData`: the schema with the first batch
/// (one write, not two, for the small results point queries return), then one
/// message per batch, split so that none exceeds the target size by much.
pub struct FrameEncoder {
    ipc: StreamEncoder,
    schema: Schema,
    target_message_bytes: usize,
    max_message_bytes: usize,
    schema_sent: bool,
}

impl FrameEncoder {
    /// An encoder for batches of `schema`. Messages aim at `target_message_bytes`;
    /// one that cannot be split below `max_message_bytes` (a single row larger than
    /// it) is an error.
    pub fn new(schema: &Schema, target_message_bytes: usize, max_message_bytes: usize) -> Result<Self, FlightError> {
        let max_message_bytes = max_message_bytes.min(u32::MAX as usize);
        Ok(Self {
            ipc: StreamEncoder::try_new_with_options(schema, IpcWriteOptions::default())?,
            schema: schema.clone(),
            target_message_bytes: target_message_bytes.min(max_message_bytes),
            max_message_bytes,
            schema_sent: false,
        })
    }

    /// The frames of `batch`, the schema's before them the first time; a batch
    /// without rows sends nothing but the schema, if it is not out yet.
    pub fn encode(&mut self, batch: &RecordBatch) -> Result<Vec<Bytes>, FlightError> {
        if batch.num_rows() == 0 {
            return self.finish_schema();
        }
        let mut frames = Frames::new(self.max_message_bytes, !self.schema_sent);
        for piece in split(batch, self.target_message_bytes) {
            frames.messages(self.ipc.encode(&piece)?)?;
        }
        self.schema_sent = true;
        Ok(frames.chunks)
    }

    /// The schema's frames if no batch carried them: a result without rows still
    /// tells its schema.
    pub fn finish(mut self) -> Result<Vec<Bytes>, FlightError> {
        self.finish_schema()
    }

    fn finish_schema(&mut self) -> Result<Vec<Bytes>, FlightError> {
        let mut frames = Frames::new(self.max_message_bytes, !self.schema_sent);
        if !self.schema_sent {
            let schema_only = StreamEncoder::try_new_with_options(&self.schema, IpcWriteOptions::default())?;
            frames.messages(schema_only.finish()?)?;
            self.schema_sent = true;
        }
        Ok(frames.chunks)
    }
}

/// Slices `batch` so that no piece's buffers exceed `max_bytes` by much (as
/// arrow-flight's encoder does; clients cap the size of a message they accept).
fn split(batch: &RecordBatch, max_bytes: usize) -> Vec<RecordBatch> {
    let size: usize = batch.columns().iter().map(|column| column.get_buffer_memory_size()).sum();
    let pieces = size.div_ceil(max_bytes.max(1)).max(1);
    let rows = batch.num_rows();
    if pieces == 1 || rows <= 1 {
        return vec![batch.clone()];
    }
    let per_piece = rows.div_ceil(pieces);
    (0..rows).step_by(per_piece).map(|offset| batch.slice(offset, per_piece.min(rows - offset))).collect()
}

/// Outgoing chunks: small parts are gathered into one copied chunk, large Arrow
/// buffers are shared.
struct Frames {
    chunks: Vec<Bytes>,
    pending: BytesMut,
    max_message_bytes: usize,
    /// Whether schema messages are sent (the stream encoder writes the schema
    /// before its first batch; not again if it went out without one).
    schema: bool,
}

impl Frames {
    fn new(max_message_bytes: usize, schema: bool) -> Self {
        Self { chunks: Vec::new(), pending: BytesMut::new(), max_message_bytes, schema }
    }

    /// Turns an IPC stream fragment (whole messages, in order) into gRPC frames.
    fn messages(&mut self, ipc: Vec<Buffer>) -> Result<(), FlightError> {
        let mut stream = IpcBytes::new(ipc);
        while let Some(header) = stream.next_header()? {
            let message = arrow::ipc::root_as_message(&header)
                .map_err(|error| ArrowError::IpcError(format!("unreadable IPC message header: {error}")))?;
            let body_len = usize::try_from(message.bodyLength())
                .map_err(|_| ArrowError::IpcError("negative IPC body length".into()))?;
            let body = stream.take(body_len)?;
            if message.header_type() == MessageHeader::Schema && !self.schema {
                continue;
            }
            self.message(&header, body_len, body)?;
        }
        self.flush();
        Ok(())
    }

    /// One `FlightData { data_header, data_body }` in its gRPC length prefix.
    fn message(&mut self, header: &[u8], body_len: usize, body: Vec<Buffer>) -> Result<(), FlightError> {
        let mut proto_len = 1 + varint_len(header.len()) + header.len();
        if body_len > 0 {
            proto_len += DATA_BODY_TAG.len() + varint_len(body_len) + body_len;
        }
        if GRPC_PREFIX_LEN + proto_len > self.max_message_bytes {
            return Err(FlightError::MessageTooLarge {
                bytes: GRPC_PREFIX_LEN + proto_len,
                limit: self.max_message_bytes,
            });
        }
        let prefix = &mut self.pending;
        prefix.put_u8(0); // not compressed
        prefix.put_u32(proto_len as u32); // below max_message_bytes, itself at most u32::MAX
        prefix.put_u8(DATA_HEADER_TAG);
        put_varint(prefix, header.len());
        prefix.put_slice(header);
        if body_len > 0 {
            prefix.put_slice(&DATA_BODY_TAG);
            put_varint(prefix, body_len);
        }
        for buffer in body {
            if buffer.len() < SHARE_AT_LEAST {
                self.pending.put_slice(buffer.as_slice());
            } else {
                self.flush();
                self.chunks.push(Bytes::from_owner(Shared(buffer)));
            }
        }
        Ok(())
    }

    fn flush(&mut self) {
        if !self.pending.is_empty() {
            self.chunks.push(self.pending.split().freeze());
        }
    }
}

/// An Arrow buffer lent to the socket writer.
struct Shared(Buffer);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

/// Reads IPC stream messages (`0xFFFFFFFF`, metadata length, metadata, body) from
/// a list of buffers without copying the bodies.
struct IpcBytes {
    buffers: VecDeque<Buffer>,
}

impl IpcBytes {
    fn new(buffers: Vec<Buffer>) -> Self {
        Self { buffers: buffers.into_iter().filter(|buffer| !buffer.is_empty()).collect() }
    }

    /// The next message's metadata (with its padding); `None` at the end of the
    /// fragment or at the end-of-stream marker.
    fn next_header(&mut self) -> Result<Option<Vec<u8>>, ArrowError> {
        if self.buffers.is_empty() {
            return Ok(None);
        }
        let prefix = self.take_copy(8)?;
        let (marker, len) = prefix.split_at(4);
        if marker != CONTINUATION.to_le_bytes() {
            return Err(ArrowError::IpcError("IPC message without its continuation marker".into()));
        }
        let len = i32::from_le_bytes([len[0], len[1], len[2], len[3]]);
        match usize::try_from(len) {
            Ok(0) => Ok(None),
            Ok(len) => self.take_copy(len).map(Some),
            Err(_) => Err(ArrowError::IpcError(format!("negative IPC metadata length {len}"))),
        }
    }

    fn take_copy(&mut self, len: usize) -> Result<Vec<u8>, ArrowError> {
        let mut out = Vec::with_capacity(len);
        for buffer in self.take(len)? {
            out.extend_from_slice(buffer.as_slice());
        }
        Ok(out)
    }

    /// The next `len` bytes as slices of the buffers they lie in.
    fn take(&mut self, mut len: usize) -> Result<Vec<Buffer>, ArrowError> {
        let mut out = Vec::new();
        while len > 0 {
            let Some(front) = self.buffers.front_mut() else {
                return Err(ArrowError::IpcError(format!("IPC stream ended {len} bytes early")));
            };
            if front.len() <= len {
                len -= front.len();
                out.extend(self.buffers.pop_front());
            } else {
                out.push(front.slice_with_length(0, len));
                *front = front.slice(len);
                len = 0;
            }
        }
        Ok(out)
    }
}

fn varint_len(mut value: usize) -> usize {
    let mut len = 1;
    while value >= 0x80 {
        value >>= 7;
        len += 1;
    }
    len
}

fn put_varint(out: &mut BytesMut, mut value: usize) {
    while value >= 0x80 {
        out.put_u8((value as u8 & 0x7F) | 0x80);
        value >>= 7;
    }
    out.put_u8(value as u8);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, BinaryArray, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field};
    use arrow_flight::FlightData;
    use arrow_flight::decode::FlightRecordBatchStream;
    use futures::{StreamExt, TryStreamExt, stream};
    use prost::Message;

    use super::*;

    fn batch(rows: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..rows));
        let names: ArrayRef =
            Arc::new(StringArray::from_iter((0..rows).map(|i| (i % 7 != 0).then(|| format!("name-{i}")))));
        RecordBatch::try_new(schema, vec![ids, names]).unwrap()
    }

    /// Splits the frames back into gRPC messages and decodes each as FlightData.
    fn flight_data(chunks: Vec<Bytes>) -> Vec<FlightData> {
        let mut bytes: Vec<u8> = chunks.iter().flat_map(|chunk| chunk.to_vec()).collect();
        let mut messages = Vec::new();
        while !bytes.is_empty() {
            assert_eq!(bytes[0], 0, "uncompressed");
            let len = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
            messages.push(FlightData::decode(&bytes[5..5 + len]).unwrap());
            bytes.drain(..5 + len);
        }
        messages
    }

    async fn decoded(messages: Vec<FlightData>) -> Vec<RecordBatch> {
        let stream = stream::iter(messages.into_iter().map(Ok));
        FlightRecordBatchStream::new_from_flight_data(stream).try_collect().await.unwrap()
    }

    fn encoder(schema: &Schema, target: usize) -> FrameEncoder {
        FrameEncoder::new(schema, target, 64 << 20).unwrap()
    }

    fn header_types(messages: &[FlightData]) -> Vec<MessageHeader> {
        messages.iter().map(|m| arrow::ipc::root_as_message(&m.data_header).unwrap().header_type()).collect()
    }

    #[tokio::test]
    async fn frames_decode_as_the_batches_they_carry() {
        let batches = [batch(0), batch(10_000), batch(3), batch(0)];
        let mut encoder = encoder(&batches[0].schema(), 64 * 1024);
        let mut chunks = Vec::new();
        for batch in &batches {
            chunks.extend(encoder.encode(batch).unwrap());
        }
        let messages = flight_data(chunks);
        assert!(messages.len() > 4, "the large batch is split: {} messages", messages.len());
        let types = header_types(&messages);
        assert_eq!(types[0], MessageHeader::Schema, "the schema goes first, also when the first batch is empty");
        assert!(types[1..].iter().all(|t| *t == MessageHeader::RecordBatch), "and only once: {types:?}");
        let received = decoded(messages).await;
        assert!(received.iter().all(|b| b.num_rows() > 0), "a batch without rows sends nothing");
        let sent = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
        let got = arrow::compute::concat_batches(&batches[0].schema(), &received).unwrap();
        assert_eq!(got, sent);
    }

    #[tokio::test]
    async fn a_result_without_batches_still_sends_its_schema() {
        let schema = batch(1).schema();
        let messages = flight_data(encoder(&schema, 1 << 20).finish().unwrap());
        assert_eq!(messages.len(), 1);
        let stream = stream::iter(messages.into_iter().map(Ok));
        let mut decoder = FlightRecordBatchStream::new_from_flight_data(stream);
        assert!(decoder.next().await.is_none());
        assert_eq!(decoder.schema().map(|s| s.as_ref().clone()), Some(schema.as_ref().clone()));
    }

    #[test]
    fn large_buffers_are_shared_not_copied() {
        let batch = batch(100_000);
        let ids = batch.column(0).to_data().buffers()[0].as_ptr();
        let chunks = encoder(&batch.schema(), 64 << 20).encode(&batch).unwrap();
        assert!(chunks.iter().any(|chunk| chunk.as_ptr() == ids), "the id column's buffer travels as is");
    }

    #[test]
    fn a_row_larger_than_the_message_limit_is_refused_not_sent() {
        let schema = Arc::new(Schema::new(vec![Field::new("blob", DataType::Binary, false)]));
        let blob = vec![7u8; 3 << 20];
        let one_row =
            RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(BinaryArray::from(vec![blob.as_slice()]))])
                .unwrap();
        let mut small = FrameEncoder::new(&schema, 1 << 20, 2 << 20).unwrap();
        match small.encode(&one_row) {
            Err(FlightError::MessageTooLarge { bytes, limit }) => {
                assert!(bytes > 3 << 20, "{bytes}");
                assert_eq!(limit, 2 << 20);
            }
            other => panic!("expected MessageTooLarge, got {:?}", other.map(|chunks| chunks.len())),
        }
        let mut roomy = FrameEncoder::new(&schema, 1 << 20, 8 << 20).unwrap();
        let messages = flight_data(roomy.encode(&one_row).unwrap());
        assert_eq!(messages.len(), 2, "the schema, then one row in one message over the target size");
    }
}
