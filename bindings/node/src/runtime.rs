//! The addon's tokio runtime and the one way JavaScript waits for Rust: a
//! Promise resolved on the event loop once a future ends on the runtime.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use napi::bindgen_prelude::ToNapiValue;
use napi::{Env, JsObject};
use rill::RillError;

use crate::error::to_napi;

/// Starts the addon's runtime when the module loads: two worker threads of
/// its own (named `rill-node`), beside Node's event loop and libuv pool.
/// napi-rs runs every Promise-returning future on it.
#[napi::module_init]
fn init() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("rill-node")
        .enable_all()
        .build()
        .expect("the tokio runtime could not start");
    napi::bindgen_prelude::create_custom_tokio_runtime(rt);
}

/// Polls `fut` once, here on the event loop's thread, without waiting:
/// `send` with room in the buffer and `wait` on an answered record finish
/// at once, with no thread switch and no Promise made in Rust. Must be
/// called inside the runtime's context (`within_runtime`).
pub fn poll_now<F: Future>(fut: Pin<&mut F>) -> Option<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    match fut.poll(&mut cx) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

/// Runs `f` with the addon's runtime entered (so tokio timers and spawns
/// in a future polled here find it).
pub fn within_runtime<T>(f: impl FnOnce() -> T) -> T {
    napi::bindgen_prelude::within_runtime_if_available(f)
}

/// A Promise of `fut`'s output, or of the `RillError` that ended it, run on
/// the runtime; `convert` makes the JavaScript value on the event loop.
pub fn promise<T, V, F, C>(env: &Env, fut: F, convert: C) -> napi::Result<JsObject>
where
    T: Send + 'static,
    V: ToNapiValue + 'static,
    F: Future<Output = Result<T, RillError>> + Send + 'static,
    C: FnOnce(&mut Env, T) -> napi::Result<V> + 'static,
{
    env.execute_tokio_future(async move { fut.await.map_err(to_napi) }, convert)
}
