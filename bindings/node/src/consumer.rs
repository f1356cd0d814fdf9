//! `NativePartitionConsumer` and `NativeStream`: a stream hands records to
//! JavaScript in batches (one wait, then what the last fetch brought), so
//! `for await` costs one thread hop per fetch, not per record.

use std::sync::Arc;

use napi::bindgen_prelude::Buffer;
use napi::{Env, JsObject};
use napi_derive::napi;
use rill::{ConsumerRecord, RillError};
use tokio::sync::Mutex;

use crate::error::{config_error, IntoNapiResult};
use crate::runtime::promise;

/// Most records one `nextBatch` hands over.
const MAX_BATCH: usize = 4096;

/// A record read back.
#[napi(object)]
pub struct Record {
    /// The partition it came from.
    pub partition: u32,
    /// Its offset there.
    pub offset: i64,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// The key, or null.
    pub key: Option<Buffer>,
    /// The value.
    pub value: Buffer,
    /// Header names, in order (`headerValues` beside them).
    pub header_keys: Vec<String>,
    /// Header values (null for a header without one).
    pub header_values: Vec<Option<Buffer>>,
}

fn record(r: ConsumerRecord) -> Record {
    let (header_keys, header_values) = r
        .headers
        .into_iter()
        .map(|(k, v)| (k, v.map(|v| Buffer::from(v.to_vec()))))
        .unzip();
    Record {
        partition: r.partition,
        offset: r.offset,
        timestamp: r.timestamp,
        key: r.key.map(|k| Buffer::from(k.to_vec())),
        value: Buffer::from(r.value.to_vec()),
        header_keys,
        header_values,
    }
}

/// The Rust offset for `kind` (`beginning`, `end`, `absolute`, `fromEnd`)
/// and `value`.
pub fn offset(kind: &str, value: i64) -> napi::Result<rill::Offset> {
    match kind {
        "beginning" => Ok(rill::Offset::beginning()),
        "end" => Ok(rill::Offset::end()),
        "absolute" => rill::Offset::absolute(value).js(),
        "fromEnd" => Ok(rill::Offset::from_end(value)),
        other => Err(config_error(format!("unknown offset kind {other:?}"))),
    }
}

#[derive(Debug)]
enum Source {
    One(rill::ConsumerStream),
    Many(rill::MultiPartitionStream),
}

impl Source {
    async fn next(&mut self) -> Result<ConsumerRecord, RillError> {
        match self {
            Source::One(s) => s.next().await,
            Source::Many(s) => s.next().await,
        }
    }
    async fn try_next(&mut self) -> Result<Option<ConsumerRecord>, RillError> {
        match self {
            Source::One(s) => s.try_next().await,
            Source::Many(s) => s.try_next().await,
        }
    }
    fn next_buffered(&mut self) -> Option<ConsumerRecord> {
        match self {
            Source::One(s) => s.next_buffered(),
            Source::Many(s) => s.next_buffered(),
        }
    }
    /// `first` and then what is already fetched, up to `MAX_BATCH`.
    fn batch(&mut self, first: ConsumerRecord) -> Vec<ConsumerRecord> {
        let mut out = vec![first];
        while out.len() < MAX_BATCH {
            match self.next_buffered() {
                Some(r) => out.push(r),
                None => break,
            }
        }
        out
    }
}

/// Records from a start offset on. It never ends by itself: at the end it
/// waits for new records.
#[napi]
#[derive(Debug)]
pub struct NativeStream {
    source: Arc<Mutex<Source>>,
}

impl NativeStream {
    pub fn one(s: rill::ConsumerStream) -> Self {
        Self {
            source: Arc::new(Mutex::new(Source::One(s))),
        }
    }
    pub fn many(s: rill::MultiPartitionStream) -> Self {
        Self {
            source: Arc::new(Mutex::new(Source::Many(s))),
        }
    }
}

#[napi]
impl NativeStream {
    /// A Promise of the next records (at least one: it waits for one).
    #[napi(ts_return_type = "Promise<Array<Record>>")]
    pub fn next_batch(&self, env: Env) -> napi::Result<JsObject> {
        let source = self.source.clone();
        promise(
            &env,
            async move {
                let mut s = source.lock().await;
                let first = s.next().await?;
                Ok(s.batch(first))
            },
            |_, batch| Ok(batch.into_iter().map(record).collect::<Vec<_>>()),
        )
    }

    /// A Promise of the next records, empty if none arrives within the
    /// SPU's long-poll wait.
    #[napi(ts_return_type = "Promise<Array<Record>>")]
    pub fn try_next_batch(&self, env: Env) -> napi::Result<JsObject> {
        let source = self.source.clone();
        promise(
            &env,
            async move {
                let mut s = source.lock().await;
                Ok(match s.try_next().await? {
                    Some(first) => s.batch(first),
                    None => Vec::new(),
                })
            },
            |_, batch| Ok(batch.into_iter().map(record).collect::<Vec<_>>()),
        )
    }
}

/// Reads one partition of a topic.
#[napi]
#[derive(Debug)]
pub struct NativePartitionConsumer {
    pub(crate) inner: rill::PartitionConsumer,
}

#[napi]
impl NativePartitionConsumer {
    /// A Promise of a stream from the offset (`kind`, `value`).
    #[napi(ts_return_type = "Promise<NativeStream>")]
    pub fn stream(&self, env: Env, kind: String, value: i64) -> napi::Result<JsObject> {
        let offset = offset(&kind, value)?;
        let consumer = self.inner.clone();
        promise(
            &env,
            async move { consumer.stream(offset).await },
            |_, s| Ok(NativeStream::one(s)),
        )
    }
}
