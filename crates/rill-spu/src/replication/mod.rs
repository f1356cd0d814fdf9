//! Replication (design.md §8), built up as state machines with time passed
//! in before the network parts use them: the leader's ISR and high
//! watermark bookkeeping.

pub mod isr;
