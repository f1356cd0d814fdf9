//! A minimal Kafka client for tests: one request at a time, any version.

use std::net::SocketAddr;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use rill_protocol::{Compression, NewRecord, RecordBatchBuilder};
use rill_spu::{Spu, SpuConfig, SpuHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct TestSpu {
    pub handle: Option<SpuHandle>,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
}

impl TestSpu {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tune: impl FnOnce(&mut SpuConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = SpuConfig::new("127.0.0.1:0".parse().unwrap(), dir.path().join("data"));
        tune(&mut config);
        let handle = Spu::start(config).await.unwrap();
        Self {
            addr: handle.local_addr(),
            handle: Some(handle),
            dir,
        }
    }

    /// Stops without flushing, as a crash would, and starts again.
    pub async fn crash_and_restart(&mut self) {
        self.handle.take().unwrap().abort();
        self.start_again().await;
    }

    /// Stops and starts again on the same data directory (new port).
    pub async fn restart(&mut self) {
        self.handle.take().unwrap().shutdown().await;
        self.start_again().await;
    }

    async fn start_again(&mut self) {
        let config = SpuConfig::new("127.0.0.1:0".parse().unwrap(), self.dir.path().join("data"));
        let handle = Spu::start(config).await.unwrap();
        self.addr = handle.local_addr();
        self.handle = Some(handle);
    }

    pub async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }

    pub async fn stop(mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown().await;
        }
    }
}

pub struct Client {
    stream: TcpStream,
    next_cid: i32,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Self {
        Self {
            stream: TcpStream::connect(addr).await.unwrap(),
            next_cid: 1,
        }
    }

    fn encode<R: Request>(&mut self, req: &R, version: i16) -> (i32, BytesMut) {
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
            .unwrap();
        req.encode(&mut body, version).unwrap();
        let mut frame = BytesMut::new();
        frame.put_i32(body.len() as i32);
        frame.extend_from_slice(&body);
        (cid, frame)
    }

    /// Sends without waiting (for acks 0).
    pub async fn send_only<R: Request>(&mut self, req: R, version: i16) {
        let (_, frame) = self.encode(&req, version);
        self.stream.write_all(&frame).await.unwrap();
    }

    pub async fn send<R: Request>(&mut self, req: R, version: i16) -> R::Response {
        let (cid, frame) = self.encode(&req, version);
        self.stream.write_all(&frame).await.unwrap();
        let mut body = self
            .read_frame()
            .await
            .expect("connection closed instead of answering");
        let header_version = if R::KEY == ApiKey::ApiVersions as i16 {
            0
        } else {
            R::Response::header_version(version)
        };
        let header = ResponseHeader::decode(&mut body, header_version).unwrap();
        assert_eq!(header.correlation_id, cid, "responses come back in order");
        R::Response::decode(&mut body, version).unwrap()
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        // The peer may already have closed; that is what some tests expect.
        let _ = self.stream.write_all(bytes).await;
    }

    /// The next frame's payload, or None once the SPU closed the connection.
    pub async fn read_frame(&mut self) -> Option<Bytes> {
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).await.ok()?;
        let mut buf = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut buf).await.ok()?;
        Some(Bytes::from(buf))
    }

    /// True when the SPU has closed the connection (within 5 s).
    pub async fn is_closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(
            tokio::time::timeout(
                std::time::Duration::from_secs(5),
                self.stream.read(&mut byte)
            )
            .await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}

pub fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

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

/// Creates a topic and asserts it worked.
pub async fn create_topic(
    client: &mut Client,
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
        "{:?}",
        resp.topics[0].error_message
    );
}

/// A batch of `values` stamped from `ts`, with key "k<i>".
pub fn batch(values: &[&[u8]], ts: i64, codec: Compression) -> Bytes {
    let mut b = RecordBatchBuilder::new(codec);
    let keys: Vec<Vec<u8>> = (0..values.len())
        .map(|i| format!("k{i}").into_bytes())
        .collect();
    for (i, v) in values.iter().enumerate() {
        b.push(&NewRecord::new(Some(&keys[i]), v, ts + i as i64))
            .unwrap();
    }
    Bytes::from(b.build().unwrap())
}
