//! `TopicProducer` and `ProduceOutput` natives: `send` returns an output
//! handle at once; `get` blocks for the answer, `future` completes a
//! `CompletableFuture` from the runtime.

use std::sync::Arc;
use std::time::Duration;

use jni::objects::{GlobalRef, JByteArray, JClass, JObject, JObjectArray, JString, JValue};
use jni::sys::{jint, jlong, jlongArray};
use jni::JNIEnv;
use rill::{RecordKey, RecordMetadata, RillError};

use crate::error::{exception, guard, null, Failure, Result};
use crate::handle::{self, Object};
use crate::runtime::{block, java, runtime};

fn bytes(env: &mut JNIEnv<'_>, a: &JByteArray<'_>) -> Result<Vec<u8>> {
    Ok(env.convert_byte_array(a)?)
}

/// `Native.send(producer, key, value, headerNames, headerValues)`: key null
/// for none; the header arrays null or of one length. Blocks only while
/// `buffer_memory` is full.
#[no_mangle]
pub extern "system" fn Java_dev_rill_client_Native_send<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    producer: jlong,
    key: JByteArray<'l>,
    value: JByteArray<'l>,
    header_names: JObjectArray<'l>,
    header_values: JObjectArray<'l>,
) -> jlong {
    guard(&mut env, 0, |env| {
        let producer = handle::producer(producer)?;
        let key = if key.is_null() {
            RecordKey::NULL
        } else {
            RecordKey::from(bytes(env, &key)?)
        };
        let value = bytes(env, &value)?;
        let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
        if !header_names.is_null() {
            for i in 0..env.get_array_length(&header_names)? {
                let name = JString::from(env.get_object_array_element(&header_names, i)?);
                let v = JByteArray::from(env.get_object_array_element(&header_values, i)?);
                headers.push((crate::client::string(env, &name)?, bytes(env, &v)?));
                env.delete_local_ref(name)?;
                env.delete_local_ref(v)?;
            }
        }
        let refs: Vec<(&str, &[u8])> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        let output = block(producer.send_with_headers(key, value, &refs))??;
        Ok(handle::new(Object::Output(Arc::new(output))))
    })
}

/// `Native.flush(producer)`.
#[no_mangle]
pub extern "system" fn Java_dev_rill_client_Native_flush<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    producer: jlong,
) {
    guard(&mut env, (), |_| {
        let producer = handle::producer(producer)?;
        Ok(block(producer.flush())??)
    })
}

/// `Native.closeProducer(producer)`: flushes and ends the producer (the
/// handle itself is freed by `free`).
#[no_mangle]
pub extern "system" fn Java_dev_rill_client_Native_closeProducer<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    producer: jlong,
) {
    guard(&mut env, (), |_| {
        let producer = handle::producer(producer)?.clone();
        Ok(block(producer.close())??)
    })
}

/// `Native.partitionCount(producer)`.
#[no_mangle]
pub extern "system" fn Java_dev_rill_client_Native_partitionCount<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    producer: jlong,
) -> jint {
    guard(&mut env, 0, |_| {
        Ok(handle::producer(producer)?.partition_count() as jint)
    })
}

fn metadata_array(env: &mut JNIEnv<'_>, m: RecordMetadata) -> Result<jlongArray> {
    let array = env.new_long_array(2)?;
    env.set_long_array_region(&array, 0, &[i64::from(m.partition), m.offset])?;
    Ok(array.into_raw())
}

/// `Native.outputGet(output, timeoutNanos)`: `{partition, offset}` once the
/// record's batch is answered, or the exception; null if `timeoutNanos`
/// (-1: no limit) passes first (the record may still be answered later).
#[no_mangle]
pub extern "system" fn Java_dev_rill_client_Native_outputGet<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    output: jlong,
    timeout_nanos: jlong,
) -> jlongArray {
    guard(&mut env, null(), |env| {
        let output = handle::output(output)?;
        let answer = if let Some((r, _)) = output.try_wait() {
            r
        } else if timeout_nanos < 0 {
            block(output.answered())?.0
        } else {
            let after = Duration::from_nanos(timeout_nanos as u64);
            // The timer is made inside the runtime (an async block), where a
            // `Sleep` must be created.
            match block(async { tokio::time::timeout(after, output.answered()).await })? {
                Ok((r, _)) => r,
                Err(_elapsed) => return Ok(null()),
            }
        };
        metadata_array(env, answer?)
    })
}

/// `Native.outputTryGet(output)`: `{partition, offset}`, null while the
/// batch is unanswered, or the exception.
#[no_mangle]
pub extern "system" fn Java_dev_rill_client_Native_outputTryGet<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    output: jlong,
) -> jlongArray {
    guard(&mut env, null(), |env| {
        match handle::output(output)?.try_wait() {
            None => Ok(null()),
            Some((r, _)) => metadata_array(env, r?),
        }
    })
}

/// Completes `future` from a runtime thread through `Native.complete` or
/// `Native.fail` (which hand it to a Java pool, so no user code runs on the
/// runtime's threads).
fn complete(future: GlobalRef, answer: std::result::Result<RecordMetadata, RillError>) {
    let Ok(java) = java() else { return };
    let Ok(mut env) = java.vm.attach_current_thread_as_daemon() else {
        return;
    };
    let class: &JClass<'_> = java.native_class.as_obj().into();
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = env.with_local_frame(8, |env| -> Result<()> {
            match answer {
                Ok(m) => {
                    env.call_static_method(
                        class,
                        "complete",
                        "(Ljava/util/concurrent/CompletableFuture;IJ)V",
                        &[
                            JValue::Object(future.as_obj()),
                            JValue::Int(m.partition as jint),
                            JValue::Long(m.offset),
                        ],
                    )?;
                }
                Err(e) => {
                    let exc = exception(env, &Failure::Rill(e))?;
                    env.call_static_method(
                        class,
                        "fail",
                        "(Ljava/util/concurrent/CompletableFuture;Ljava/lang/Throwable;)V",
                        &[JValue::Object(future.as_obj()), JValue::Object(&exc)],
                    )?;
                }
            }
            Ok(())
        });
        if env.exception_check().unwrap_or(false) {
            let _ = env.exception_describe();
            let _ = env.exception_clear();
        }
    }));
}

/// `Native.outputFuture(output, future)`: completes `future` with the
/// record's `RecordMetadata` (or its exception) once the batch is answered.
#[no_mangle]
pub extern "system" fn Java_dev_rill_client_Native_outputFuture<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    output: jlong,
    future: JObject<'l>,
) {
    guard(&mut env, (), |env| {
        let output = handle::output(output)?.clone();
        let future = env.new_global_ref(future)?;
        runtime().spawn(async move {
            let (answer, _) = output.answered().await;
            complete(future, answer);
        });
        Ok(())
    })
}
