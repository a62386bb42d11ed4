//! The `ConfigDiscovery` gRPC service, with the response side framed here.
//!
//! Same wire protocol as the generated `ConfigDiscoveryServer` (gRPC framing of protobuf
//! `ConfigPush` messages, `grpc-status` trailers), but tonic's response encoder copies each
//! message into a per-stream buffer that keeps its largest size for the stream's whole life:
//! with 2.3 MB configurations that is 2.3 MB per connected proxy for nothing (2.3 GB at 1,000
//! proxies). Here each push is a small header (gRPC frame header, protobuf field keys, the
//! version) followed by the body's own pieces, shared with every other proxy and never copied.
//! Requests (the proxy's Hello/ACK/NACK) are decoded by tonic as before.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use futures::Stream;
use http_body::Frame;
use strait_mesh::pb::{ConfigPush, ProxyMessage};
use tokio::sync::mpsc;
use tonic::Status;
use tonic::codec::{Codec, Streaming};
use tonic::codegen::{BoxFuture, Service};

use super::PushServer;
use super::writer::{InFlight, Rendered, push_stream};

/// The gRPC path of the only method.
const STREAM_CONFIG: &str = "/strait.mesh.v1.ConfigDiscovery/StreamConfig";

/// The tonic service to mount on a gRPC server (`Server::builder().add_service(..)`); a thin
/// adapter over [`PushServer`].
#[derive(Debug, Clone)]
pub struct PushService {
    pub(super) server: Arc<PushServer>,
}

impl tonic::server::NamedService for PushService {
    const NAME: &'static str = "strait.mesh.v1.ConfigDiscovery";
}

impl<B> Service<http::Request<B>> for PushService
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() != STREAM_CONFIG {
            let response = Status::unimplemented(format!("no method {}", request.uri().path())).into_http();
            return Box::pin(async move { Ok(response) });
        }
        let decoder = tonic_prost::ProstCodec::<ConfigPush, ProxyMessage>::default().decoder();
        let inbound = Streaming::new_request(decoder, request.into_body(), None, None);
        let (tx, rx) = mpsc::unbounded_channel();
        let flight = Arc::new(InFlight::default());
        tokio::spawn(self.server.clone().serve_stream(inbound, tx, flight.clone()));
        let body = PushBody {
            pushes: push_stream(rx, self.server.writes.clone(), flight),
            json: VecDeque::new(),
            done: false,
        };
        let response = http::Response::builder()
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .body(tonic::body::Body::new(body));
        Box::pin(async move {
            Ok(response
                .unwrap_or_else(|e| Status::internal(format!("building the response: {e}")).into_http()))
        })
    }
}

/// Pushes up to this many bytes are copied into one chunk (HTTP/2's default frame size).
const ONE_FRAME: usize = 16 * 1024;

/// The response body: each push as a header chunk then its JSON chunks, then `grpc-status`
/// trailers.
struct PushBody {
    pushes: Pin<Box<dyn Stream<Item = Result<Rendered, Status>> + Send>>,
    /// The JSON chunks of the push whose header was just sent.
    json: VecDeque<Bytes>,
    done: bool,
}

impl http_body::Body for PushBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if let Some(chunk) = self.json.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        if self.done {
            return Poll::Ready(None);
        }
        let end = match self.pushes.as_mut().poll_next(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Some(Ok(push))) => {
                let trailer = frame_trailer(push.encoding, &push.delta_base);
                let header = frame_header(&push.version, push.len, trailer.len());
                if push.len <= ONE_FRAME {
                    // A delta: one DATA frame, one write, rather than three.
                    let mut whole = BytesMut::with_capacity(header.len() + push.len + trailer.len());
                    whole.put_slice(&header);
                    push.chunks.iter().for_each(|c| whole.put_slice(c));
                    whole.put_slice(&trailer);
                    return Poll::Ready(Some(Ok(Frame::data(whole.freeze()))));
                }
                self.json = push.chunks.into();
                if !trailer.is_empty() {
                    self.json.push_back(trailer);
                }
                return Poll::Ready(Some(Ok(Frame::data(header))));
            }
            Poll::Ready(Some(Err(status))) => status,
            Poll::Ready(None) => Status::ok(""),
        };
        self.done = true;
        let mut trailers = http::HeaderMap::new();
        match end.add_header(&mut trailers) {
            Ok(()) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            Err(status) => Poll::Ready(Some(Err(status))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.json.is_empty()
    }
}

/// The start of a `ConfigPush { version, config_json, encoding }` gRPC message whose JSON is
/// `json_len` bytes followed by `trailer_len` bytes of [`frame_trailer`]: the 5-byte frame
/// header, then the protobuf encoding up to the JSON's bytes. Empty fields are omitted, as
/// prost does.
pub(crate) fn frame_header(version: &str, json_len: usize, trailer_len: usize) -> Bytes {
    let mut fields = BytesMut::with_capacity(32 + version.len());
    if !version.is_empty() {
        fields.put_u8(0x0a); // field 1, length-delimited
        put_varint(&mut fields, version.len() as u64);
        fields.put_slice(version.as_bytes());
    }
    if json_len > 0 {
        fields.put_u8(0x12); // field 2, length-delimited
        put_varint(&mut fields, json_len as u64);
    }
    let message_len = fields.len() + json_len + trailer_len;
    let mut header = BytesMut::with_capacity(5 + fields.len());
    header.put_u8(0); // not compressed
    // gRPC lengths are 32-bit; configurations are far below 4 GiB (the proxy's limit is lower).
    header.put_u32(u32::try_from(message_len).unwrap_or(u32::MAX));
    header.put_slice(&fields);
    header.freeze()
}

/// The fields after the JSON's bytes: `encoding` (field 3) and `delta_base` (field 4), each
/// omitted when empty. Field order as prost writes it, so the message is byte for byte prost's.
pub(crate) fn frame_trailer(encoding: &str, delta_base: &str) -> Bytes {
    let mut fields = BytesMut::with_capacity(4 + encoding.len() + delta_base.len());
    for (tag, value) in [(0x1a, encoding), (0x22, delta_base)] {
        if !value.is_empty() {
            fields.put_u8(tag); // field 3 or 4, length-delimited
            put_varint(&mut fields, value.len() as u64);
            fields.put_slice(value.as_bytes());
        }
    }
    fields.freeze()
}

fn put_varint(buf: &mut BytesMut, mut value: u64) {
    while value >= 0x80 {
        buf.put_u8((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_decode_as_the_generated_message() {
        use tonic_prost::prost::Message;
        let cases = [
            ("7", vec![b'{'; 300], ""),
            ("", b"{}".to_vec(), ""),
            ("12", Vec::new(), ""),
            ("7", vec![0x1f; 300], "gzip"),
            ("", vec![0x8b; 2], "gzip"),
            ("12", Vec::new(), "gzip"),
        ];
        let cases = cases
            .into_iter()
            .flat_map(|(v, json, enc)| [(v, json.clone(), enc, ""), (v, json, enc, "11")]);
        for (version, json, encoding, delta_base) in cases {
            let trailer = frame_trailer(encoding, delta_base);
            let mut wire = frame_header(version, json.len(), trailer.len()).to_vec();
            wire.extend_from_slice(&json);
            wire.extend_from_slice(&trailer);
            assert_eq!(wire[0], 0);
            let len = u32::from_be_bytes([wire[1], wire[2], wire[3], wire[4]]) as usize;
            assert_eq!(len, wire.len() - 5);
            let expected = ConfigPush {
                version: version.into(),
                config_json: json,
                encoding: encoding.into(),
                delta_base: delta_base.into(),
            };
            assert_eq!(&wire[5..], expected.encode_to_vec().as_slice());
        }
    }
}
