//! One request at a time to another SPU (a follower to its leader): a plain
//! Kafka client connection with bounded frames and a timeout per request.
//! Followers send few requests (one long-polled Fetch at a time), so
//! nothing here is pipelined.

use std::time::Duration;

use bytes::{Buf, BufMut, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response a follower takes from its leader (a Fetch answer is
/// bounded by the `max_bytes` asked for, plus one whole first batch).
pub const MAX_PEER_RESPONSE_BYTES: usize = 128 * 1024 * 1024;
/// Longest a connection attempt to a peer may take.
pub const PEER_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("cannot reach SPU at {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("SPU at {addr}: {source}")]
    Io {
        addr: String,
        source: std::io::Error,
    },
    #[error("SPU at {addr} did not answer within {timeout:?}")]
    Timeout { addr: String, timeout: Duration },
    #[error("SPU at {addr} sent a bad response: {reason}")]
    Protocol { addr: String, reason: String },
}

/// A connection to another SPU.
#[derive(Debug)]
pub struct Peer {
    addr: String,
    stream: TcpStream,
    client_id: StrBytes,
    next_correlation: i32,
}

impl Peer {
    pub async fn connect(addr: &str, client_id: String) -> Result<Self, PeerError> {
        let stream = tokio::time::timeout(PEER_CONNECT_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| PeerError::Timeout {
                addr: addr.to_owned(),
                timeout: PEER_CONNECT_TIMEOUT,
            })?
            .map_err(|source| PeerError::Connect {
                addr: addr.to_owned(),
                source,
            })?;
        let _ = stream.set_nodelay(true);
        Ok(Self {
            addr: addr.to_owned(),
            stream,
            client_id: StrBytes::from_string(client_id),
            next_correlation: 0,
        })
    }

    fn protocol(&self, reason: impl std::fmt::Display) -> PeerError {
        PeerError::Protocol {
            addr: self.addr.clone(),
            reason: reason.to_string(),
        }
    }

    fn io(&self, source: std::io::Error) -> PeerError {
        PeerError::Io {
            addr: self.addr.clone(),
            source,
        }
    }

    /// Sends `req` at `version` and waits at most `timeout` for the answer.
    pub async fn send<R: Request>(
        &mut self,
        req: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response, PeerError> {
        let correlation = self.next_correlation;
        self.next_correlation = self.next_correlation.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation)
            .with_client_id(Some(self.client_id.clone()));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, R::header_version(version))
            .map_err(|e| self.protocol(e))?;
        req.encode(&mut body, version)
            .map_err(|e| self.protocol(e))?;
        let mut frame = BytesMut::with_capacity(4 + body.len());
        frame.put_u32(body.len() as u32);
        frame.extend_from_slice(&body);
        let exchange = async {
            self.stream.write_all(&frame).await?;
            let len = self.stream.read_u32().await? as usize;
            if len > MAX_PEER_RESPONSE_BYTES {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("response of {len} bytes is over {MAX_PEER_RESPONSE_BYTES}"),
                ));
            }
            let mut buf = vec![0u8; len];
            self.stream.read_exact(&mut buf).await?;
            Ok(buf)
        };
        let buf = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| PeerError::Timeout {
                addr: self.addr.clone(),
                timeout,
            })?
            .map_err(|e| self.io(e))?;
        let mut buf = bytes::Bytes::from(buf);
        let header = ResponseHeader::decode(&mut buf, R::Response::header_version(version))
            .map_err(|e| self.protocol(e))?;
        if header.correlation_id != correlation {
            return Err(self.protocol(format!(
                "correlation id {} where {correlation} was due",
                header.correlation_id
            )));
        }
        let resp = R::Response::decode(&mut buf, version).map_err(|e| self.protocol(e))?;
        if buf.has_remaining() {
            tracing::debug!(addr = %self.addr, left = buf.remaining(), "bytes left after a response");
        }
        Ok(resp)
    }
}
