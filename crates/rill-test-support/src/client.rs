//! A minimal Kafka client for tests of the SPU itself: one request at a
//! time, at whatever version the test names, over TCP or any byte stream
//! (one end of a `tokio::io::duplex` pipe for paused-time tests).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// One connection to an SPU. Responses must come back in request order; a
/// mismatched correlation id fails the test.
#[derive(Debug)]
pub struct KafkaClient<S = TcpStream> {
    stream: S,
    next_cid: i32,
}

impl KafkaClient<TcpStream> {
    /// Connects over TCP.
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("connecting to the SPU at {addr}: {e}"));
        Self::over(stream)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> KafkaClient<S> {
    /// Talks over an already open stream.
    pub fn over(stream: S) -> Self {
        Self {
            stream,
            next_cid: 1,
        }
    }

    /// The underlying stream, for tests that write raw bytes or check for
    /// the close themselves.
    pub fn stream(&mut self) -> &mut S {
        &mut self.stream
    }

    /// `req` at `version` as a whole frame (size prefix, header, body), with
    /// the next correlation id; returns the id too.
    pub fn encode<R: Request>(&mut self, req: &R, version: i16) -> (i32, BytesMut) {
        let cid = self.next_cid;
        self.next_cid += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(cid)
            .with_client_id(Some(StrBytes::from_static_str("rill-it")));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, R::header_version(version))
            .expect("a test request header encodes");
        req.encode(&mut body, version)
            .expect("a test request encodes at the version asked");
        let mut frame = BytesMut::new();
        frame.put_i32(body.len() as i32);
        frame.extend_from_slice(&body);
        (cid, frame)
    }

    /// Sends without waiting for an answer (for acks 0).
    pub async fn send_only<R: Request>(&mut self, req: R, version: i16) {
        let (_, frame) = self.encode(&req, version);
        self.stream.write_all(&frame).await.expect("sending");
    }

    /// Sends and decodes the answer; panics if the SPU closes instead.
    pub async fn send<R: Request>(&mut self, req: R, version: i16) -> R::Response {
        let (cid, frame) = self.encode(&req, version);
        self.stream.write_all(&frame).await.expect("sending");
        let mut body = self
            .read_frame()
            .await
            .expect("connection closed instead of answering");
        // ApiVersions answers with a v0 header whatever the version, so a
        // client that cannot parse it can still read the error code.
        let header_version = if R::KEY == ApiKey::ApiVersions as i16 {
            0
        } else {
            R::Response::header_version(version)
        };
        let header = ResponseHeader::decode(&mut body, header_version).expect("response header");
        assert_eq!(header.correlation_id, cid, "responses come back in order");
        R::Response::decode(&mut body, version).expect("response body")
    }

    /// Writes raw bytes; the peer may already have closed, which is what
    /// some tests expect, so a failed write is not an error.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes).await;
    }

    /// The next frame's payload, or `None` once the SPU closed the
    /// connection.
    pub async fn read_frame(&mut self) -> Option<Bytes> {
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).await.ok()?;
        let mut buf = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut buf).await.ok()?;
        Some(Bytes::from(buf))
    }

    /// True when the SPU has closed the connection (within 5 s).
    pub async fn is_closed(&mut self) -> bool {
        self.closed_within(Duration::from_secs(5)).await
    }

    /// True when the SPU closes the connection within `within`; bytes it
    /// sends meanwhile are read and dropped.
    pub async fn closed_within(&mut self, within: Duration) -> bool {
        let mut buf = [0u8; 4096];
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
                Err(_) => return false,
                Ok(Ok(0) | Err(_)) => return true,
                Ok(Ok(_)) => {}
            }
        }
    }
}

/// A topic name for a request.
pub fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

/// A topic for CreateTopics with `configs` as `(name, value)` pairs.
pub fn creatable(
    name: &str,
    partitions: i32,
    replication: i16,
    configs: &[(&str, &str)],
) -> CreatableTopic {
    CreatableTopic::default()
        .with_name(topic_name(name))
        .with_num_partitions(partitions)
        .with_replication_factor(replication)
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    CreatableTopicConfig::default()
                        .with_name(StrBytes::from_string(k.to_string()))
                        .with_value(Some(StrBytes::from_string(v.to_string())))
                })
                .collect(),
        )
}

/// Creates a topic with replication 1 and asserts it worked.
pub async fn create_topic<S: AsyncRead + AsyncWrite + Unpin>(
    client: &mut KafkaClient<S>,
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) {
    let resp = client
        .send(
            CreateTopicsRequest::default()
                .with_topics(vec![creatable(name, partitions, 1, configs)]),
            7,
        )
        .await;
    assert_eq!(
        resp.topics[0].error_code, 0,
        "creating {name}: {:?}",
        resp.topics[0].error_message
    );
}
