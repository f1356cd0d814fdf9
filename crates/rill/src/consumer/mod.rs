//! Reading partitions from any offset, each at its leader (`fetch`: how
//! several leaders are read at once, and what each error does).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::client::ClientInner;
use crate::config::Isolation;
use crate::RillError;

mod fetch;

pub use fetch::MultiPartitionStream;
use fetch::{is_leader_trouble, RETRY_BACKOFF};

/// How long resolving a start position (`Beginning`, `End`, `FromEnd`)
/// waits for a partition's leader in a cluster: its SPU may be restarting
/// or just given the partition. (Reading, once started, waits for as long
/// as it takes.)
const START_WAIT: Duration = Duration::from_secs(30);

/// Where a consumer starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offset {
    /// The first record still stored.
    Beginning,
    /// The next record to be produced (only new records).
    End,
    /// This exact offset.
    Absolute(i64),
    /// `n` records before the end.
    FromEnd(i64),
    /// The first record whose timestamp is at or after this many
    /// milliseconds since the epoch, resolved in each partition
    /// (ListOffsets by time); the end where every record is older.
    Timestamp(i64),
}

impl Offset {
    /// The first record still stored.
    pub fn beginning() -> Self {
        Offset::Beginning
    }
    /// Only records produced from now on.
    pub fn end() -> Self {
        Offset::End
    }
    /// From this offset; negative offsets are refused.
    pub fn absolute(offset: i64) -> Result<Self, RillError> {
        if offset < 0 {
            return Err(RillError::Config(format!("offset {offset} is negative")));
        }
        Ok(Offset::Absolute(offset))
    }
    /// `n` records before the end (clamped to the beginning).
    pub fn from_end(n: i64) -> Self {
        Offset::FromEnd(n.max(0))
    }
    /// From the first record at or after `ms` milliseconds since the epoch
    /// (the end where every record is older); negative times are refused.
    pub fn timestamp(ms: i64) -> Result<Self, RillError> {
        if ms < 0 {
            return Err(RillError::Config(format!("timestamp {ms} is negative")));
        }
        Ok(Offset::Timestamp(ms))
    }
}

/// Consumer settings.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Bytes asked for per fetch (a larger first batch still comes whole).
    pub max_bytes: i32,
    /// How long the SPU may hold a fetch open waiting for new records.
    pub max_wait: Duration,
    /// How records are read: acks-1 data, or only committed data.
    pub isolation: Isolation,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            max_bytes: 1024 * 1024,
            max_wait: Duration::from_millis(500),
            isolation: Isolation::ReadUncommitted,
        }
    }
}

/// One record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// The partition it came from.
    pub partition: u32,
    /// Its offset in that partition.
    pub offset: i64,
    /// Milliseconds since the epoch (create or log-append time).
    pub timestamp: i64,
    /// The key, if any.
    pub key: Option<Bytes>,
    /// The value.
    pub value: Bytes,
    /// Headers: name and value (a value may be null).
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// Reads one partition of a topic.
#[derive(Debug, Clone)]
pub struct PartitionConsumer {
    pub(crate) client: Arc<ClientInner>,
    pub(crate) topic: String,
    pub(crate) partition: u32,
    pub(crate) config: ConsumerConfig,
}

fn topic_name(t: &str) -> TopicName {
    TopicName(StrBytes::from_string(t.to_owned()))
}

impl PartitionConsumer {
    /// The offset `timestamp` (-2 earliest, -1 latest) resolves to, asked
    /// of the partition's leader. In a cluster, leader errors and lost
    /// connections are retried after a Metadata refresh for up to
    /// [`START_WAIT`]; with one SPU every error is returned at once.
    async fn list_offset(&self, timestamp: i64) -> Result<i64, RillError> {
        let give_up_at = Instant::now() + START_WAIT;
        loop {
            match self.list_offset_once(timestamp).await {
                Err(e)
                    if self.client.is_cluster()
                        && is_leader_trouble(&e)
                        && Instant::now() + RETRY_BACKOFF < give_up_at =>
                {
                    tracing::debug!(topic = %self.topic, partition = self.partition, error = %e, "ListOffsets: asking where the leader is");
                    tokio::time::sleep(RETRY_BACKOFF).await;
                    if let Err(e) = self.client.partitions(&self.topic).await {
                        tracing::debug!(error = %e, "metadata refresh failed");
                    }
                }
                answer => return answer,
            }
        }
    }

    async fn list_offset_once(&self, timestamp: i64) -> Result<i64, RillError> {
        let route = self.client.route(&self.topic, self.partition);
        let conn = self
            .client
            .route_connection(&route, || {
                format!("ListOffsets for {}-{}", self.topic, self.partition)
            })
            .await?;
        let version = conn.version::<ListOffsetsRequest>(7)?;
        let isolation = match self.config.isolation {
            Isolation::ReadUncommitted => 0,
            Isolation::ReadCommitted => 1,
        };
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_isolation_level(isolation)
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(topic_name(&self.topic))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(self.partition as i32)
                    .with_timestamp(timestamp)])]);
        let resp = conn.send(req, version).await?;
        let p = resp
            .topics
            .first()
            .and_then(|t| t.partitions.first())
            .ok_or_else(|| RillError::Protocol("ListOffsets answer is empty".into()))?;
        match p.error_code {
            0 => Ok(p.offset),
            code => Err(RillError::broker("ListOffsets", code, None)),
        }
    }

    /// A stream of records from `offset` on. It never ends by itself: at the
    /// end of the partition it waits for new records.
    pub async fn stream(&self, offset: Offset) -> Result<ConsumerStream, RillError> {
        let start = self.start_offset(offset).await?;
        Ok(ConsumerStream {
            inner: MultiPartitionStream::new(
                self.client.clone(),
                &self.topic,
                self.config.clone(),
                [(self.partition, start)],
            ),
        })
    }

    /// The offset `offset` stands for now.
    pub(crate) async fn start_offset(&self, offset: Offset) -> Result<i64, RillError> {
        Ok(match offset {
            Offset::Absolute(n) => n,
            Offset::Beginning => self.list_offset(-2).await?,
            // ListOffsets answers -1 past the last record's time: the end.
            Offset::Timestamp(ms) => match self.list_offset(ms.max(0)).await? {
                -1 => self.list_offset(-1).await?,
                found => found,
            },
            Offset::End => self.list_offset(-1).await?,
            Offset::FromEnd(n) => {
                let end = self.list_offset(-1).await?;
                let begin = self.list_offset(-2).await?;
                (end - n).max(begin)
            }
        })
    }
}

/// Records of one partition in offset order; see [`PartitionConsumer::stream`].
/// A [`MultiPartitionStream`] of one partition.
#[derive(Debug)]
pub struct ConsumerStream {
    inner: MultiPartitionStream,
}

impl ConsumerStream {
    /// The offset of the next record this stream will return.
    pub fn next_offset(&self) -> i64 {
        let fetch_from = self.inner.slots.first().map_or(0, |s| s.offset);
        self.inner.buffer.front().map_or(fetch_from, |r| r.offset)
    }

    /// The partition's high watermark at the last fetch (-1 before any).
    pub fn high_watermark(&self) -> i64 {
        self.inner
            .slots
            .first()
            .and_then(|s| s.high_watermark)
            .unwrap_or(-1)
    }

    /// The next record, waiting for one if the partition has no more yet.
    pub async fn next(&mut self) -> Result<ConsumerRecord, RillError> {
        self.inner.next().await
    }

    /// The next record if one arrives within the SPU's long-poll wait.
    pub async fn try_next(&mut self) -> Result<Option<ConsumerRecord>, RillError> {
        self.inner.try_next().await
    }

    /// The next record already fetched, without waiting or fetching (None
    /// when the last fetch's records are all taken).
    pub fn next_buffered(&mut self) -> Option<ConsumerRecord> {
        self.inner.next_buffered()
    }
}

/// A [`futures_core::Stream`] of records over a [`ConsumerStream`], from
/// [`ConsumerStream::into_stream`]. It never ends by itself; an error is
/// yielded once and the stream goes on from where it was.
pub struct RecordStream {
    idle: Option<ConsumerStream>,
    #[allow(clippy::type_complexity)]
    pending: Option<
        std::pin::Pin<
            Box<
                dyn std::future::Future<
                        Output = (Result<ConsumerRecord, RillError>, ConsumerStream),
                    > + Send,
            >,
        >,
    >,
}

impl std::fmt::Debug for RecordStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordStream")
            .field("waiting", &self.pending.is_some())
            .finish()
    }
}

impl ConsumerStream {
    /// This stream as a `futures_core::Stream` of records.
    pub fn into_stream(self) -> RecordStream {
        RecordStream {
            idle: Some(self),
            pending: None,
        }
    }
}

impl futures_core::Stream for RecordStream {
    type Item = Result<ConsumerRecord, RillError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.pending.is_none() {
            let Some(mut stream) = this.idle.take() else {
                return std::task::Poll::Ready(None);
            };
            this.pending = Some(Box::pin(async move {
                let r = stream.next().await;
                (r, stream)
            }));
        }
        let Some(fut) = this.pending.as_mut() else {
            return std::task::Poll::Ready(None);
        };
        match fut.as_mut().poll(cx) {
            std::task::Poll::Pending => std::task::Poll::Pending,
            std::task::Poll::Ready((item, stream)) => {
                this.pending = None;
                this.idle = Some(stream);
                std::task::Poll::Ready(Some(item))
            }
        }
    }
}
