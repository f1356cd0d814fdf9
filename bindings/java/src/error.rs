//! Every native runs inside [`guard`]: a panic is caught before it can cross
//! into the JVM, and every failure leaves a pending Java exception. The
//! exception is built by `Native.exception(kind, message, code, retriable)`
//! on the Java side, so the class hierarchy lives in one place
//! (`RillException` and its subclasses); the kinds are [`Kind`]'s.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use jni::objects::{JObject, JThrowable, JValue};
use jni::JNIEnv;
use rill::{ResponseError, RillError};

use crate::runtime::java;

/// Why a native failed.
#[derive(Debug)]
pub enum Failure {
    /// The Rust client's error.
    Rill(RillError),
    /// A Java exception is already pending (a JNI call raised it).
    Pending,
    /// A JNI call failed without an exception.
    Jni(jni::errors::Error),
    /// A misuse the Java classes should have prevented (a wrong handle).
    Arg(String),
    /// A panic, caught here.
    Panic(String),
}

impl From<RillError> for Failure {
    fn from(e: RillError) -> Self {
        Failure::Rill(e)
    }
}

impl From<jni::errors::Error> for Failure {
    fn from(e: jni::errors::Error) -> Self {
        match e {
            jni::errors::Error::JavaException => Failure::Pending,
            other => Failure::Jni(other),
        }
    }
}

/// What a native returns inside [`guard`].
pub type Result<T> = std::result::Result<T, Failure>;

/// The exception classes, as `Native.exception` numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Kind {
    Rill = 0,
    Connection = 1,
    TopicNotFound = 2,
    RecordTooLarge = 3,
    Timeout = 4,
    Config = 5,
    ProducerClosed = 6,
    Broker = 7,
}

/// The class for `err` (a given-up retry takes its last error's).
pub fn kind(err: &RillError) -> Kind {
    const UNKNOWN_TOPIC: i16 = ResponseError::UnknownTopicOrPartition.code();
    const TOO_LARGE: i16 = ResponseError::MessageTooLarge.code();
    const TIMED_OUT: i16 = ResponseError::RequestTimedOut.code();
    match err {
        RillError::Connect { .. } | RillError::Transport { .. } => Kind::Connection,
        RillError::TopicNotFound(_) => Kind::TopicNotFound,
        RillError::RecordTooLarge { .. } => Kind::RecordTooLarge,
        RillError::Timeout { .. } => Kind::Timeout,
        RillError::Config(_) => Kind::Config,
        RillError::ProducerClosed => Kind::ProducerClosed,
        RillError::RetriesExhausted { last, .. } => kind(last),
        RillError::Broker { code, .. } => match *code {
            UNKNOWN_TOPIC => Kind::TopicNotFound,
            TOO_LARGE => Kind::RecordTooLarge,
            TIMED_OUT => Kind::Timeout,
            _ => Kind::Broker,
        },
        _ => Kind::Rill,
    }
}

/// Kind, message, Kafka code (-1 for none) and retriability of a failure.
fn describe(failure: &Failure) -> (Kind, String, i32, bool) {
    match failure {
        Failure::Rill(e) => (
            kind(e),
            e.to_string(),
            e.code().map_or(-1, i32::from),
            e.is_retriable(),
        ),
        Failure::Jni(e) => (Kind::Rill, format!("JNI call failed: {e}"), -1, false),
        Failure::Arg(m) => (Kind::Rill, m.clone(), -1, false),
        Failure::Panic(m) => (
            Kind::Rill,
            format!("internal error in the Rill native library (a Rust panic, caught): {m}"),
            -1,
            false,
        ),
        Failure::Pending => (Kind::Rill, "a Java exception is pending".into(), -1, false),
    }
}

/// The Java exception object for `failure`, built by `Native.exception`.
pub fn exception<'l>(env: &mut JNIEnv<'l>, failure: &Failure) -> Result<JThrowable<'l>> {
    let (kind, message, code, retriable) = describe(failure);
    let java = java()?;
    let message = env.new_string(message)?;
    let class: &jni::objects::JClass<'_> = java.native_class.as_obj().into();
    let exc = env
        .call_static_method(
            class,
            "exception",
            "(ILjava/lang/String;IZ)Ljava/lang/RuntimeException;",
            &[
                JValue::Int(kind as i32),
                JValue::Object(&message),
                JValue::Int(code),
                JValue::Bool(retriable.into()),
            ],
        )?
        .l()?;
    Ok(JThrowable::from(exc))
}

/// Leaves a pending exception for `failure` (unless one is pending).
pub fn throw(env: &mut JNIEnv<'_>, failure: Failure) {
    if matches!(failure, Failure::Pending) || env.exception_check().unwrap_or(true) {
        return;
    }
    match exception(env, &failure) {
        Ok(exc) => {
            if env.throw(exc).is_ok() {
                return;
            }
        }
        Err(Failure::Pending) => return,
        Err(_) => {}
    }
    // Building the RillException failed: a plain one says what happened.
    let _ = env.exception_clear();
    let (_, message, _, _) = describe(&failure);
    let _ = env.throw_new("java/lang/RuntimeException", message);
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_owned()
    }
}

/// Runs a native's body: its value, or `default` with a pending Java
/// exception (a failure, or a panic caught here: none crosses into Java).
pub fn guard<'l, T>(
    env: &mut JNIEnv<'l>,
    default: T,
    body: impl FnOnce(&mut JNIEnv<'l>) -> Result<T>,
) -> T {
    let failure = match catch_unwind(AssertUnwindSafe(|| body(env))) {
        Ok(Ok(v)) => return v,
        Ok(Err(failure)) => failure,
        Err(panic) => Failure::Panic(panic_message(&*panic)),
    };
    // Throwing must not panic either.
    let _ = catch_unwind(AssertUnwindSafe(|| throw(env, failure)));
    default
}

/// A null `jobject` to return with a pending exception.
pub fn null() -> jni::sys::jobject {
    JObject::null().into_raw()
}

/// `Native.checkPanicGuard(message)`: panics on purpose, inside [`guard`],
/// so the tests can see a Rust panic arrive as a `RillException` and the
/// JVM carry on.
#[no_mangle]
pub extern "system" fn Java_dev_rill_client_Native_checkPanicGuard<'l>(
    mut env: JNIEnv<'l>,
    _class: jni::objects::JClass<'l>,
    message: jni::objects::JString<'l>,
) {
    guard(&mut env, (), |env| -> Result<()> {
        let message = crate::client::string(env, &message)?;
        panic!("{message}")
    })
}
