//! Replication (design.md §8): the leader's ISR and high-watermark
//! bookkeeping as a state machine with time passed in ([`isr`]), the
//! leadership the writer and handlers share ([`leader`]), and the
//! follower's fetch loop ([`follower`]).

pub mod follower;
pub mod isr;
pub mod leader;
pub mod peer;
pub mod roles;
#[cfg(test)]
mod sim;
