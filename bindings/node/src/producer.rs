//! `NativeProducer`, `NativeOutput`: `send` finishes on the event loop's
//! thread when the buffer has room (the usual case), else on the runtime;
//! `wait` likewise once the batch is answered.

use std::sync::Arc;

use napi::bindgen_prelude::{Buffer, Either};
use napi::{Env, JsObject};
use napi_derive::napi;
use rill::{RecordKey, RecordMetadata};

use crate::error::IntoNapiResult;
use crate::runtime::{poll_now, promise, within_runtime};

/// Key, value or header value: a Buffer (read in place) or a string
/// (UTF-8).
pub type Data = Either<Buffer, String>;

fn bytes(d: &Data) -> &[u8] {
    match d {
        Either::A(b) => b,
        Either::B(s) => s.as_bytes(),
    }
}

fn key_of(key: &Option<Data>) -> RecordKey {
    match key {
        None => RecordKey::NULL,
        Some(k) => RecordKey::from(bytes(k)),
    }
}

/// A record header: a name and a value.
#[napi(object)]
#[allow(missing_debug_implementations)] // napi's Either has no Debug
pub struct Header {
    /// The header's name.
    pub key: String,
    /// Its value: Buffer or string.
    pub value: Data,
}

/// Where a record was stored.
#[napi(object)]
#[derive(Debug, Clone, Copy)]
pub struct Metadata {
    /// The partition.
    pub partition: u32,
    /// The record's offset in that partition.
    pub offset: i64,
}

fn metadata(m: RecordMetadata) -> Metadata {
    Metadata {
        partition: m.partition,
        offset: m.offset,
    }
}

/// What `send` gives: `wait()` resolves once the record's batch is
/// answered.
#[napi]
#[derive(Debug)]
pub struct NativeOutput {
    inner: Arc<rill::ProduceOutput>,
}

#[napi]
impl NativeOutput {
    /// The metadata if the batch is answered, null while it is not; throws
    /// the error that ended the record.
    #[napi]
    pub fn try_wait(&self) -> napi::Result<Option<Metadata>> {
        match self.inner.try_wait() {
            None => Ok(None),
            Some((answer, _)) => answer.map(metadata).map(Some).js(),
        }
    }

    /// A Promise of the metadata, once the batch is answered.
    #[napi(ts_return_type = "Promise<Metadata>")]
    pub fn wait(&self, env: Env) -> napi::Result<JsObject> {
        let out = self.inner.clone();
        promise(&env, async move { out.answered().await.0 }, |_, m| {
            Ok(metadata(m))
        })
    }
}

fn output(o: rill::ProduceOutput) -> NativeOutput {
    NativeOutput { inner: Arc::new(o) }
}

/// Produces to one topic; all sends share its batches.
#[napi]
#[derive(Debug)]
pub struct NativeProducer {
    pub(crate) inner: rill::TopicProducer,
}

fn header_refs(headers: &Option<Vec<Header>>) -> Vec<(&str, &[u8])> {
    headers
        .iter()
        .flatten()
        .map(|h| (h.key.as_str(), bytes(&h.value)))
        .collect()
}

#[napi]
impl NativeProducer {
    /// Hands the record to the producer if its buffer has room now and
    /// returns its output; null when the buffer is full (`send` then waits
    /// on the runtime). Throws for a record that can never be sent.
    #[napi]
    pub fn try_send(
        &self,
        key: Option<Data>,
        value: Data,
        headers: Option<Vec<Header>>,
    ) -> napi::Result<Option<NativeOutput>> {
        let refs = header_refs(&headers);
        within_runtime(|| {
            let fut =
                std::pin::pin!(self
                    .inner
                    .send_with_headers(key_of(&key), bytes(&value), &refs));
            match poll_now(fut) {
                None => Ok(None),
                Some(r) => r.map(|o| Some(output(o))).js(),
            }
        })
    }

    /// A Promise of the record's output, waiting on the runtime while the
    /// buffer is full (`buffer_memory` bounds what waits in the producer).
    #[napi(ts_return_type = "Promise<NativeOutput>")]
    pub fn send(
        &self,
        env: Env,
        key: Option<Data>,
        value: Data,
        headers: Option<Vec<Header>>,
    ) -> napi::Result<JsObject> {
        let producer = self.inner.clone();
        let key = key_of(&key);
        let value = bytes(&value).to_vec();
        let headers: Vec<(String, Vec<u8>)> = headers
            .iter()
            .flatten()
            .map(|h| (h.key.clone(), bytes(&h.value).to_vec()))
            .collect();
        promise(
            &env,
            async move {
                let refs: Vec<(&str, &[u8])> = headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_slice()))
                    .collect();
                producer.send_with_headers(key, &value, &refs).await
            },
            |_, o| Ok(output(o)),
        )
    }

    /// Sends what is pending and resolves once every batch is answered.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn flush(&self, env: Env) -> napi::Result<JsObject> {
        let producer = self.inner.clone();
        promise(&env, async move { producer.flush().await }, |_, ()| Ok(()))
    }

    /// Flushes, then ends the producer: later sends fail with
    /// `ProducerClosedError`.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close(&self, env: Env) -> napi::Result<JsObject> {
        let producer = self.inner.clone();
        promise(&env, async move { producer.close().await }, |_, ()| Ok(()))
    }

    /// The topic's partition count as the producer last learned it.
    #[napi]
    pub fn partition_count(&self) -> u32 {
        self.inner.partition_count()
    }

    /// The topic this producer writes to.
    #[napi(getter)]
    pub fn topic(&self) -> String {
        self.inner.topic().to_owned()
    }
}
