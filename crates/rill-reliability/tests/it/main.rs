//! Reliability suites against an SPU in its own process
//! (`rill-reliability-spu`), killed with SIGKILL by PID.
//!
//! Short forms run in CI; `RILL_CRASH_ROUNDS` and `RILL_LOAD_SECS` make them
//! longer (see RELIABILITY.md at the repository root).

mod crash;
mod disk_full;
mod load;
mod spu;
