//! The one tokio runtime of the extension, and the two ways Python waits
//! for Rust: blocking (GIL released, Ctrl-C checked between short waits) and
//! asyncio (a task on the runtime resolves an asyncio future through
//! `loop.call_soon_threadsafe`).

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;

/// How long a blocking wait runs without the GIL before it looks for
/// signals (Ctrl-C) again.
const SIGNAL_CHECK_INTERVAL: Duration = Duration::from_millis(50);

/// The extension's multi-thread runtime, started on first use. Producers'
/// sender tasks, connections and asyncio work all run on it.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("rill-py")
            .enable_all()
            .build()
            .expect("the tokio runtime could not start")
    })
}

/// Polls `fut` once, here, with the GIL held: most calls (`send` with room
/// in the buffer, `wait` on an answered record) finish at once, and this
/// skips releasing the GIL and a thread switch.
pub fn poll_now<F: Future>(fut: Pin<&mut F>) -> Option<F::Output> {
    let _entered = runtime().enter();
    let mut cx = Context::from_waker(Waker::noop());
    match fut.poll(&mut cx) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

/// Runs `fut` to completion for a blocking Python call: first one poll with
/// the GIL, then without the GIL in short slices, checking for signals
/// between them so Ctrl-C raises `KeyboardInterrupt` (dropping `fut`).
pub fn block<F>(py: Python<'_>, fut: F) -> PyResult<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    let mut fut = std::pin::pin!(fut);
    if let Some(v) = poll_now(fut.as_mut()) {
        return Ok(v);
    }
    loop {
        let done = py.allow_threads(|| {
            runtime().block_on(async {
                tokio::time::timeout(SIGNAL_CHECK_INTERVAL, fut.as_mut())
                    .await
                    .ok()
            })
        });
        if let Some(v) = done {
            return Ok(v);
        }
        py.check_signals()?;
    }
}

fn support(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    static MODULE: GILOnceCell<Py<PyModule>> = GILOnceCell::new();
    MODULE
        .get_or_try_init(py, || Ok::<_, PyErr>(py.import("rill._support")?.unbind()))
        .map(|m| m.bind(py))
}

/// A class or function of the pure-Python part (`rill/_support.py`).
pub fn support_attr<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    support(py)?.getattr(name)
}

/// An asyncio future of the running loop that is already resolved.
pub fn ready_future(py: Python<'_>, value: PyResult<PyObject>) -> PyResult<Bound<'_, PyAny>> {
    let fut = py
        .import("asyncio")?
        .call_method0("get_running_loop")?
        .call_method0("create_future")?;
    match value {
        Ok(v) => fut.call_method1("set_result", (v,))?,
        Err(e) => fut.call_method1("set_exception", (e.into_value(py),))?,
    };
    Ok(fut)
}

/// An asyncio future of the running loop, resolved with `convert(output)`
/// once `fut` ends on the runtime. Cancelling the asyncio future does not
/// stop the Rust work (a record handed over is still delivered).
pub fn to_asyncio<'py, F, C>(py: Python<'py>, fut: F, convert: C) -> PyResult<Bound<'py, PyAny>>
where
    F: Future + Send + 'static,
    F::Output: Send,
    C: FnOnce(Python<'_>, F::Output) -> PyResult<PyObject> + Send + 'static,
{
    let event_loop = py.import("asyncio")?.call_method0("get_running_loop")?;
    let py_fut = event_loop.call_method0("create_future")?;
    let resolve = support_attr(py, "_resolve")?.unbind();
    let (event_loop, target) = (event_loop.unbind(), py_fut.clone().unbind());
    runtime().spawn(async move {
        let output = fut.await;
        Python::with_gil(|py| {
            let (ok, value) = match convert(py, output) {
                Ok(v) => (true, v),
                Err(e) => (false, e.into_value(py).into_any()),
            };
            // A closed loop cannot take the answer; nobody awaits it then.
            let _ =
                event_loop.call_method1(py, "call_soon_threadsafe", (resolve, target, ok, value));
        });
    });
    Ok(py_fut)
}
