//! Rust objects behind `long` handles. `Box::into_raw` makes the handle;
//! `Native.free` drops it exactly once: the Java side (`NativeHandle`)
//! counts the calls using a handle and frees it only when it is closed (by
//! `close()` or the `Cleaner`) and no call is using it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use jni::objects::JClass;
use jni::sys::jlong;
use jni::JNIEnv;

use crate::consumer::Source;
use crate::error::{guard, Failure, Result};
use crate::runtime::runtime;

/// What a handle points to.
#[derive(Debug)]
pub enum Object {
    Rill(rill::Rill),
    Producer(rill::TopicProducer),
    Output(Arc<rill::ProduceOutput>),
    Consumer(rill::PartitionConsumer),
    Stream(Mutex<Source>),
}

static LIVE: AtomicI64 = AtomicI64::new(0);

/// Handles made and not yet freed (for the leak tests).
pub fn live() -> i64 {
    LIVE.load(Ordering::Relaxed)
}

/// Boxes `object` and returns its handle.
pub fn new(object: Object) -> jlong {
    LIVE.fetch_add(1, Ordering::Relaxed);
    Box::into_raw(Box::new(object)) as jlong
}

fn get<'a>(handle: jlong) -> Result<&'a Object> {
    if handle == 0 {
        return Err(Failure::Arg("a null native handle".into()));
    }
    // SAFETY: non-zero handles come from `new`, and the Java side frees a
    // handle only once no call is using it (NativeHandle's count).
    Ok(unsafe { &*(handle as *const Object) })
}

macro_rules! accessor {
    ($name:ident, $variant:ident, $ty:ty) => {
        /// The object behind `handle`, if it is of this kind.
        pub fn $name<'a>(handle: jlong) -> Result<&'a $ty> {
            match get(handle)? {
                Object::$variant(o) => Ok(o),
                other => Err(Failure::Arg(format!(
                    "handle is not a {}: {other:?}",
                    stringify!($variant)
                ))),
            }
        }
    };
}

accessor!(rill, Rill, rill::Rill);
accessor!(producer, Producer, rill::TopicProducer);
accessor!(output, Output, Arc<rill::ProduceOutput>);
accessor!(consumer, Consumer, rill::PartitionConsumer);
accessor!(stream, Stream, Mutex<Source>);

/// `Native.free(handle)`: drops the object (inside the runtime: a dropped
/// producer hands its last records to its tasks).
#[no_mangle]
pub extern "system" fn Java_dev_rill_client_Native_free<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) {
    guard(&mut env, (), |_| {
        if handle != 0 {
            let _entered = runtime().enter();
            // SAFETY: see `get`; the Java side calls free once per handle.
            drop(unsafe { Box::from_raw(handle as *mut Object) });
            LIVE.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(())
    })
}

/// `Native.liveHandles()`.
#[no_mangle]
pub extern "system" fn Java_dev_rill_client_Native_liveHandles<'l>(
    _env: JNIEnv<'l>,
    _class: JClass<'l>,
) -> jlong {
    live()
}
