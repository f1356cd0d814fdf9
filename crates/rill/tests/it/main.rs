//! The client against a real SPU on 127.0.0.1:0.

mod admin;
mod cluster;
mod consume;
mod faults;
mod groups;
mod produce;
mod promises;
mod proxy;
mod replication;
mod spu;
mod topic_changes;
