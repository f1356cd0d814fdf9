//! The library's one multi-thread tokio runtime, started on first use, and
//! what the runtime's threads need to call back into Java: the `JavaVM` and
//! the `Native` class, cached by `Native.init()` on a Java thread (whose
//! class loader found the binding's classes).

use std::future::Future;
use std::sync::OnceLock;

use jni::objects::{GlobalRef, JClass};
use jni::sys::jlong;
use jni::{JNIEnv, JavaVM};

use crate::error::{guard, Failure, Result};

/// The runtime producers' sender tasks, connections and the
/// `CompletableFuture` waits run on.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("rill-java")
            .enable_all()
            .build()
            .expect("the tokio runtime could not start")
    })
}

/// Runs `fut` to its end on the calling Java thread (the runtime's workers
/// do the I/O). A call from one of the runtime's own threads is refused
/// rather than deadlocking: it becomes an exception.
pub fn block<F: Future>(fut: F) -> Result<F::Output> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Failure::Arg(
            "a blocking Rill call was made on one of Rill's own runtime threads".into(),
        ));
    }
    Ok(runtime().block_on(fut))
}

/// What callbacks from the runtime's threads need.
#[derive(Debug)]
pub struct Java {
    /// The VM, to attach the runtime's threads.
    pub vm: JavaVM,
    /// `dev.rill.client.Native`, whose static methods build exceptions and
    /// complete futures.
    pub native_class: GlobalRef,
    /// `dev.rill.client.Record`.
    pub record_class: GlobalRef,
    /// `dev.rill.client.TopicInfo`.
    pub topic_info_class: GlobalRef,
}

static JAVA: OnceLock<Java> = OnceLock::new();

/// The cached VM and classes (set by `Native.init()`, which the Java class
/// runs in its static initialiser before any other native).
pub fn java() -> Result<&'static Java> {
    JAVA.get()
        .ok_or_else(|| Failure::Arg("Native.init() was not called".into()))
}

/// `Native.init()`: caches the VM and the classes; returns the number of
/// live handles (0 on a fresh load).
#[no_mangle]
pub extern "system" fn Java_dev_rill_client_Native_init<'l>(
    mut env: JNIEnv<'l>,
    class: JClass<'l>,
) -> jlong {
    guard(&mut env, 0, |env| {
        if JAVA.get().is_none() {
            let java = Java {
                vm: env.get_java_vm()?,
                native_class: env.new_global_ref(&class)?,
                record_class: {
                    let c = env.find_class("dev/rill/client/Record")?;
                    env.new_global_ref(c)?
                },
                topic_info_class: {
                    let c = env.find_class("dev/rill/client/TopicInfo")?;
                    env.new_global_ref(c)?
                },
            };
            let _ = JAVA.set(java);
        }
        Ok(crate::handle::live())
    })
}
