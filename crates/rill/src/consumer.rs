//! Reading a partition from any offset.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, ListOffsetsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use rill_protocol::batch::split_batches;
use rill_protocol::RecordBatch;

use crate::client::ClientInner;
use crate::config::Isolation;
use crate::RillError;

/// Most a compressed batch may expand to on the consumer side.
const MAX_DECOMPRESSED_BYTES: usize = 256 * 1024 * 1024;

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
    /// The offset `timestamp` (-2 earliest, -1 latest) resolves to.
    async fn list_offset(&self, timestamp: i64) -> Result<i64, RillError> {
        let conn = self.client.connection().await?;
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
        let start = match offset {
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
        };
        Ok(ConsumerStream {
            inner: MultiPartitionStream {
                client: self.client.clone(),
                topic: self.topic.clone(),
                config: self.config.clone(),
                positions: vec![(self.partition, start)],
                buffer: VecDeque::new(),
                high_watermarks: Vec::new(),
            },
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
        let fetch_from = self.inner.positions.first().map_or(0, |p| p.1);
        self.inner.buffer.front().map_or(fetch_from, |r| r.offset)
    }

    /// The partition's high watermark at the last fetch (-1 before any).
    pub fn high_watermark(&self) -> i64 {
        self.inner.high_watermarks.first().map_or(-1, |w| w.1)
    }

    /// The next record, waiting for one if the partition has no more yet.
    pub async fn next(&mut self) -> Result<ConsumerRecord, RillError> {
        self.inner.next().await
    }

    /// The next record if one arrives within the SPU's long-poll wait.
    pub async fn try_next(&mut self) -> Result<Option<ConsumerRecord>, RillError> {
        self.inner.try_next().await
    }
}

/// One Fetch for `positions` (`(partition, next offset)`): decodes what
/// comes back into `out`, moves each position on, and returns each
/// partition's high watermark.
async fn fetch_round(
    client: &ClientInner,
    topic: &str,
    config: &ConsumerConfig,
    positions: &mut [(u32, i64)],
    out: &mut VecDeque<ConsumerRecord>,
) -> Result<Vec<(u32, i64)>, RillError> {
    let conn = client.connection().await?;
    let version = conn.version::<FetchRequest>(12)?;
    let isolation = match config.isolation {
        Isolation::ReadUncommitted => 0,
        Isolation::ReadCommitted => 1,
    };
    let partitions = positions
        .iter()
        .map(|&(p, offset)| {
            FetchPartition::default()
                .with_partition(p as i32)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(config.max_bytes)
        })
        .collect();
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(config.max_wait.as_millis() as i32)
        .with_min_bytes(1)
        .with_max_bytes(config.max_bytes)
        .with_isolation_level(isolation)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(partitions)]);
    let resp = conn.send(req, version).await?;
    let mut watermarks = Vec::with_capacity(positions.len());
    for p in resp.responses.iter().flat_map(|t| &t.partitions) {
        let partition = p.partition_index as u32;
        let Some(pos) = positions.iter_mut().find(|(q, _)| *q == partition) else {
            continue;
        };
        if p.error_code != 0 {
            return Err(RillError::broker(
                format!("fetching {topic}-{partition} at {}", pos.1),
                p.error_code,
                None,
            ));
        }
        let records = p.records.clone().unwrap_or_default();
        pos.1 = decode_records(&records, partition, pos.1, out)?;
        watermarks.push((partition, p.high_watermark));
    }
    Ok(watermarks)
}

/// Decodes fetched batches into `out`, skipping records before `from`;
/// returns the offset to fetch next.
fn decode_records(
    records: &Bytes,
    partition: u32,
    mut from: i64,
    out: &mut VecDeque<ConsumerRecord>,
) -> Result<i64, RillError> {
    for slice in split_batches(records) {
        // A response may end inside a batch; the next fetch gets it whole.
        let Ok(slice) = slice else { break };
        let bad = |e: rill_protocol::BatchError| RillError::Protocol(e.to_string());
        let batch = RecordBatch::new(slice).map_err(bad)?;
        if !batch.header.attributes.is_control() {
            let set = batch.records(MAX_DECOMPRESSED_BYTES).map_err(bad)?;
            for r in set.iter() {
                let r = r.map_err(bad)?;
                if r.offset < from {
                    continue;
                }
                out.push_back(ConsumerRecord {
                    partition,
                    offset: r.offset,
                    timestamp: r.timestamp,
                    key: r.key.map(Bytes::copy_from_slice),
                    value: Bytes::copy_from_slice(r.value.unwrap_or_default()),
                    headers: r
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                String::from_utf8_lossy(h.key).into_owned(),
                                h.value.map(Bytes::copy_from_slice),
                            )
                        })
                        .collect(),
                });
            }
        }
        from = from.max(batch.header.next_offset());
    }
    Ok(from)
}

/// Reads several partitions of one topic with one Fetch per round: records
/// come in offset order within each partition, partitions interleaved.
#[derive(Debug)]
pub struct MultiPartitionStream {
    client: Arc<ClientInner>,
    topic: String,
    config: ConsumerConfig,
    /// `(partition, next offset)`.
    positions: Vec<(u32, i64)>,
    buffer: VecDeque<ConsumerRecord>,
    /// `(partition, high watermark)` from the last fetch.
    high_watermarks: Vec<(u32, i64)>,
}

impl MultiPartitionStream {
    pub(crate) async fn start(
        client: Arc<ClientInner>,
        topic: &str,
        partitions: &[u32],
        offset: Offset,
        config: ConsumerConfig,
    ) -> Result<Self, RillError> {
        let mut positions = Vec::with_capacity(partitions.len());
        for &p in partitions {
            let single = PartitionConsumer {
                client: client.clone(),
                topic: topic.to_owned(),
                partition: p,
                config: config.clone(),
            };
            positions.push((p, single.stream(offset).await?.next_offset()));
        }
        Ok(Self {
            client,
            topic: topic.to_owned(),
            config,
            positions,
            buffer: VecDeque::new(),
            high_watermarks: Vec::new(),
        })
    }

    /// The next record of any partition, waiting if none has one yet.
    pub async fn next(&mut self) -> Result<ConsumerRecord, RillError> {
        loop {
            if let Some(r) = self.buffer.pop_front() {
                return Ok(r);
            }
            self.fetch().await?;
        }
    }

    /// The next record if one arrives within the SPU's long-poll wait.
    pub async fn try_next(&mut self) -> Result<Option<ConsumerRecord>, RillError> {
        if self.buffer.is_empty() {
            self.fetch().await?;
        }
        Ok(self.buffer.pop_front())
    }

    async fn fetch(&mut self) -> Result<(), RillError> {
        self.high_watermarks = fetch_round(
            &self.client,
            &self.topic,
            &self.config,
            &mut self.positions,
            &mut self.buffer,
        )
        .await?;
        Ok(())
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
