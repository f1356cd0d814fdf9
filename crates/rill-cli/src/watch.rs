//! Outages made visible: while a command waits on the SPU, a watcher probes
//! it and says on stderr when it cannot be reached (or does not answer),
//! and again when it is back, instead of a silent wait until the retry
//! timeout.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::output;

/// How long without an answer before the SPU is probed.
pub const QUIET_BEFORE_PROBE: Duration = Duration::from_secs(2);
/// How often the message is repeated while an outage lasts.
pub const REPEAT_EVERY: Duration = Duration::from_secs(10);
/// How long a connection attempt of the probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// How often the SPU may be probed.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// How often the watcher looks.
const TICK: Duration = Duration::from_millis(250);

/// What the watcher has seen of one SPU.
#[derive(Debug)]
pub struct Watch {
    addr: String,
    /// Since when the command has waited without an answer.
    quiet_since: Instant,
    /// When the outage was last announced, while one lasts.
    announced: Option<Instant>,
    /// A silence this long counts as "does not answer" even when the SPU
    /// accepts connections (the producer's linger is added to it).
    hang_after: Duration,
    /// An announced outage this long (counted from the start of the
    /// silence) ends the wait: the command's retry timeout.
    give_up_after: Duration,
    /// What the last probe found wrong, while an outage lasts.
    state: &'static str,
    /// When the SPU was last probed (at most once a second).
    probed: Option<Instant>,
}

/// The SPU stayed out of reach (or silent) for the whole retry timeout.
#[derive(Debug)]
pub struct GaveUp {
    pub addr: String,
    pub state: &'static str,
    pub after: Duration,
}

impl std::fmt::Display for GaveUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SPU at {} {} for {}s; gave up (--retry-timeout)",
            self.addr,
            self.state,
            self.after.as_secs()
        )
    }
}

impl std::error::Error for GaveUp {}

impl Watch {
    pub fn new(addr: &str, hang_after: Duration, give_up_after: Duration) -> Self {
        Self {
            addr: addr.to_owned(),
            quiet_since: Instant::now(),
            announced: None,
            hang_after,
            give_up_after,
            state: "",
            probed: None,
        }
    }

    /// Something was answered: the silence ends (and an announced outage
    /// with it).
    pub fn answered(&mut self) {
        self.quiet_since = Instant::now();
        if self.announced.take().is_some() {
            output::eprint(&format!("SPU at {} answers again\n", self.addr));
        }
    }

    /// The command starts waiting now (a new record after an idle time).
    pub fn waiting_from_now(&mut self) {
        if self.announced.is_none() {
            self.quiet_since = Instant::now();
        }
    }

    /// Looks at the SPU if it has been quiet too long, and says so;
    /// `waiting` describes what waits ("3 records waiting").
    pub async fn check(&mut self, waiting: &str) {
        let quiet = self.quiet_since.elapsed();
        if quiet < QUIET_BEFORE_PROBE {
            return;
        }
        if self.announced.is_some_and(|at| at.elapsed() < REPEAT_EVERY) {
            return;
        }
        if self.probed.is_some_and(|at| at.elapsed() < PROBE_EVERY) {
            return;
        }
        self.probed = Some(Instant::now());
        let reachable = tokio::time::timeout(
            PROBE_TIMEOUT,
            tokio::net::TcpStream::connect(self.addr.as_str()),
        )
        .await
        .is_ok_and(|r| r.is_ok());
        let what = if !reachable {
            "unreachable"
        } else if quiet >= self.hang_after {
            "does not answer"
        } else {
            return;
        };
        self.state = what;
        output::eprint(&format!(
            "SPU at {} {what}, retrying; {waiting}\n",
            self.addr
        ));
        self.announced = Some(Instant::now());
    }

    /// Awaits `fut`, checking on the SPU meanwhile; gives up once an
    /// outage has lasted the retry timeout.
    pub async fn wait<F: Future>(
        &mut self,
        fut: F,
        waiting: impl Fn() -> String,
    ) -> Result<F::Output, GaveUp> {
        let mut fut = std::pin::pin!(fut);
        // Most answers are there already (a batch answers all its records
        // at once): those cost no timer and no check.
        tokio::select! {
            biased;
            out = &mut fut => return Ok(out),
            () = std::future::ready(()) => {}
        }
        // The first check comes a tick from now, not at once.
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + TICK, TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                out = &mut fut => return Ok(out),
                _ = tick.tick() => {
                    if self.announced.is_some() && self.quiet_since.elapsed() >= self.give_up_after {
                        return Err(self.gave_up());
                    }
                    self.check(&waiting()).await;
                }
            }
        }
    }

    /// The error for an outage that lasted the retry timeout.
    pub fn gave_up(&self) -> GaveUp {
        GaveUp {
            addr: self.addr.clone(),
            state: if self.state.is_empty() {
                "unreachable"
            } else {
                self.state
            },
            after: self.give_up_after,
        }
    }
}

/// Whether `e` says the SPU could not be reached or did not answer (as
/// opposed to an answer refusing the request).
pub fn is_outage(e: &rill::RillError) -> bool {
    match e {
        rill::RillError::RetriesExhausted { last, .. } => is_outage(last),
        e => e.code().is_none() && e.is_retriable(),
    }
}

/// [`is_outage`] for any cause of `e`.
pub fn has_outage(e: &anyhow::Error) -> bool {
    e.chain()
        .any(|c| c.downcast_ref::<rill::RillError>().is_some_and(is_outage))
}
