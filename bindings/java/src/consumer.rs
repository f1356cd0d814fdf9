//! Partition consumers and record streams: `next` blocks for the next
//! record, `tryNext` gives null when none arrives within the SPU's long poll.

use std::sync::Mutex;

use jni::objects::{JClass, JObject, JValue};
use jni::sys::{jint, jlong, jobject};
use jni::JNIEnv;
use rill::{ConsumerRecord, RillError};

use crate::error::{guard, null, Failure, Result};
use crate::handle::{self, Object};
use crate::runtime::{block, java};

/// One partition's stream, or several partitions' in one.
#[derive(Debug)]
pub enum Source {
    One(rill::ConsumerStream),
    Many(rill::MultiPartitionStream),
}

impl Source {
    async fn next(&mut self) -> std::result::Result<ConsumerRecord, RillError> {
        match self {
            Source::One(s) => s.next().await,
            Source::Many(s) => s.next().await,
        }
    }
    async fn try_next(&mut self) -> std::result::Result<Option<ConsumerRecord>, RillError> {
        match self {
            Source::One(s) => s.try_next().await,
            Source::Many(s) => s.try_next().await,
        }
    }
}

/// A handle for a stream.
pub fn new_stream(source: Source) -> jlong {
    handle::new(Object::Stream(Mutex::new(source)))
}

/// The Rust `Offset` for `Offset.java`'s kind and value.
pub fn offset(kind: jint, value: jlong) -> Result<rill::Offset> {
    Ok(match kind {
        0 => rill::Offset::beginning(),
        1 => rill::Offset::end(),
        2 => rill::Offset::absolute(value)?,
        3 => rill::Offset::from_end(value),
        _ => return Err(Failure::Arg(format!("unknown offset kind {kind}"))),
    })
}

/// `Native.stream(consumer, offsetKind, offsetValue)`.
#[no_mangle]
pub extern "system" fn Java_dev_rill_client_Native_stream<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    consumer: jlong,
    offset_kind: jint,
    offset_value: jlong,
) -> jlong {
    guard(&mut env, 0, |_| {
        let consumer = handle::consumer(consumer)?;
        let offset = offset(offset_kind, offset_value)?;
        let stream = block(consumer.stream(offset))??;
        Ok(new_stream(Source::One(stream)))
    })
}

fn record<'l>(env: &mut JNIEnv<'l>, r: ConsumerRecord) -> Result<JObject<'l>> {
    let class: &JClass<'_> = java()?.record_class.as_obj().into();
    let key = match &r.key {
        Some(k) => JObject::from(env.byte_array_from_slice(k)?),
        None => JObject::null(),
    };
    let value = env.byte_array_from_slice(&r.value)?;
    let string_class = env.find_class("java/lang/String")?;
    let len =
        i32::try_from(r.headers.len()).map_err(|_| Failure::Arg("too many headers".into()))?;
    let names = env.new_object_array(len, &string_class, JObject::null())?;
    let values = env.new_object_array(len, "[B", JObject::null())?;
    for (i, (name, v)) in (0..).zip(&r.headers) {
        let name = env.new_string(name)?;
        env.set_object_array_element(&names, i, &name)?;
        env.delete_local_ref(name)?;
        if let Some(v) = v {
            let v = env.byte_array_from_slice(v)?;
            env.set_object_array_element(&values, i, &v)?;
            env.delete_local_ref(v)?;
        }
    }
    Ok(env.new_object(
        class,
        "(IJJ[B[B[Ljava/lang/String;[[B)V",
        &[
            JValue::Int(r.partition as jint),
            JValue::Long(r.offset),
            JValue::Long(r.timestamp),
            JValue::Object(&key),
            JValue::Object(&value),
            JValue::Object(&names),
            JValue::Object(&values),
        ],
    )?)
}

fn lock(stream: &Mutex<Source>) -> std::sync::MutexGuard<'_, Source> {
    stream.lock().unwrap_or_else(|p| p.into_inner())
}

/// `Native.streamNext(stream)`: the next record, waiting for it.
#[no_mangle]
pub extern "system" fn Java_dev_rill_client_Native_streamNext<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    stream: jlong,
) -> jobject {
    guard(&mut env, null(), |env| {
        let stream = handle::stream(stream)?;
        let r = {
            let mut source = lock(stream);
            block(source.next())??
        };
        Ok(record(env, r)?.into_raw())
    })
}

/// `Native.streamTryNext(stream)`: the next record, or null if none
/// arrives within the long-poll wait.
#[no_mangle]
pub extern "system" fn Java_dev_rill_client_Native_streamTryNext<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    stream: jlong,
) -> jobject {
    guard(&mut env, null(), |env| {
        let stream = handle::stream(stream)?;
        let r = {
            let mut source = lock(stream);
            block(source.try_next())??
        };
        match r {
            Some(r) => Ok(record(env, r)?.into_raw()),
            None => Ok(null()),
        }
    })
}
