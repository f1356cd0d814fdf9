//! Rill's cluster metadata (design.md §8): one [`MetadataStore`] contract
//! with three backends — the local file ([`FileStore`], one SPU, nothing to
//! install), etcd ([`EtcdStore`], a cluster of SPUs), and memory
//! ([`MemoryStore`], simulation tests on virtual time). Only the SPU and
//! the CLI's cluster commands depend on this crate; clients never do.

mod any;
pub mod controller;
mod etcd;
mod file;
pub mod keys;
pub mod member;
pub mod membership;
mod memory;
pub mod model;
pub mod placement;
pub mod producer_ids;
mod state;
mod store;

pub use any::AnyStore;
pub use etcd::EtcdStore;
pub use file::FileStore;
pub use member::{ClusterMember, ClusterView};
pub use membership::{campaign, controller, live_spus, Leadership, MembershipError, Session};
pub use memory::MemoryStore;
pub use model::{PartitionState, TopicSpec, NO_LEADER};
pub use placement::{place, PlacementError};
pub use store::{
    Entry, Expect, Guard, LeaseId, Listing, MetadataStore, Revision, StoreError, Watch, WatchEvent,
    WATCH_QUEUE_EVENTS,
};
