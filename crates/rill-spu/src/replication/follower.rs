//! A follower's copy loop for one partition (Kafka's replica fetcher):
//!
//! 1. cut the log back to where it agrees with the leader: ask the leader
//!    (OffsetForLeaderEpoch) where this copy's latest leader epoch ends in
//!    its log, and truncate there (records past it were never committed
//!    and the leader has others at those offsets);
//! 2. fetch from the log end with this SPU's replica id, store what comes
//!    byte for byte (`append_replica`), record idempotent producers'
//!    batches (so this copy knows them if it comes to lead), and take the
//!    leader's high watermark;
//! 3. again, until told to stop (the partition's leader or epoch changed,
//!    or it left this SPU); on an error, reconnect after a pause.
//!
//! The leader learns this copy's log end from the offset each Fetch asks
//! for; that is all it needs to move the ISR and the high watermark.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::{ParseResponseErrorCode, ResponseError};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, OffsetForLeaderEpochRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use rill_protocol::batch::{split_batches, BatchHeader};
use rill_storage::{truncation_step, EpochEntry, Truncation};

use super::peer::{Peer, PeerError};
use crate::registry::{rebuild_producers, Partition};
use crate::writer::{lock, raise_high_watermark};

/// Longest a follower's Fetch waits at the leader for new records.
pub const FOLLOWER_FETCH_WAIT: Duration = Duration::from_millis(500);
/// Most record bytes one follower Fetch asks for.
pub const FOLLOWER_FETCH_BYTES: i32 = 8 * 1024 * 1024;
/// Pause after an error before trying again.
pub const FOLLOWER_RETRY_DELAY: Duration = Duration::from_millis(200);
/// Longest one request to the leader may take beyond its own wait.
const ANSWER_SLACK: Duration = Duration::from_secs(5);
const FETCH_VERSION: i16 = 12;
const OFFSET_FOR_LEADER_EPOCH_VERSION: i16 = 3;

/// What a follower copies, and from whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowTarget {
    pub topic: String,
    pub partition: i32,
    pub leader: u32,
    pub leader_addr: String,
    pub leader_epoch: i32,
}

#[derive(Debug, thiserror::Error)]
enum FollowError {
    #[error(transparent)]
    Peer(#[from] PeerError),
    #[error("the leader answered {0:?}")]
    Leader(ResponseError),
    #[error("storing what the leader sent: {0}")]
    Storage(String),
    #[error("the leader's answer lacks this partition")]
    Missing,
}

/// Copies the partition from its leader until `stop` is set.
pub(crate) async fn run(
    me: u32,
    target: FollowTarget,
    partition: Arc<Partition>,
    stop: Arc<AtomicBool>,
) {
    let name = format!("{}-{}", target.topic, target.partition);
    while !stop.load(Ordering::Acquire) {
        match follow_once(me, &target, &partition, &stop).await {
            Ok(()) => return,
            Err(e) => {
                tracing::debug!(partition = %name, leader = target.leader, error = %e, "following: trying again");
                tokio::time::sleep(FOLLOWER_RETRY_DELAY).await;
            }
        }
    }
}

/// One connection's worth of following: truncate, then fetch until
/// stopped (`Ok`) or an error.
async fn follow_once(
    me: u32,
    target: &FollowTarget,
    partition: &Arc<Partition>,
    stop: &Arc<AtomicBool>,
) -> Result<(), FollowError> {
    let mut peer = Peer::connect(&target.leader_addr, format!("rill-spu-{me}")).await?;
    truncate_to_leader(me, target, partition, stop, &mut peer).await?;
    while !stop.load(Ordering::Acquire) {
        let log_end = partition.log().log_end_offset() as i64;
        let req = FetchRequest::default()
            .with_replica_id(BrokerId(me as i32))
            .with_max_wait_ms(FOLLOWER_FETCH_WAIT.as_millis() as i32)
            .with_min_bytes(1)
            .with_max_bytes(FOLLOWER_FETCH_BYTES)
            .with_isolation_level(0)
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(target.topic.clone())))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(target.partition)
                    .with_current_leader_epoch(target.leader_epoch)
                    .with_fetch_offset(log_end)
                    .with_last_fetched_epoch(-1)
                    .with_log_start_offset(-1)
                    .with_partition_max_bytes(FOLLOWER_FETCH_BYTES)])]);
        let resp = peer
            .send(&req, FETCH_VERSION, FOLLOWER_FETCH_WAIT + ANSWER_SLACK)
            .await?;
        let data = resp
            .responses
            .into_iter()
            .flat_map(|t| t.partitions)
            .find(|p| p.partition_index == target.partition)
            .ok_or(FollowError::Missing)?;
        if let Some(e) = data.error_code.err() {
            return Err(FollowError::Leader(e));
        }
        let records = data.records.unwrap_or_default();
        let hw = data.high_watermark;
        let leader_start = data.log_start_offset;
        let (part, stop) = (partition.clone(), stop.clone());
        let stored =
            tokio::task::spawn_blocking(move || store(&part, &stop, &records, hw, leader_start))
                .await
                .map_err(|e| FollowError::Storage(e.to_string()))?;
        stored?;
    }
    Ok(())
}

/// Appends what the leader sent (if anything) and takes its high
/// watermark, as far as this copy reaches; segments wholly below the
/// leader's log start (retention there, or the offsets topic's compaction)
/// go here too, once this copy's high watermark is past them.
fn store(
    partition: &Partition,
    stop: &AtomicBool,
    records: &Bytes,
    leader_hw: i64,
    leader_start: i64,
) -> Result<(), FollowError> {
    let mut log = partition.log();
    // Checked under the log lock: once this SPU starts to lead the
    // partition (which takes the lock), no copy from the old leader lands.
    if stop.load(Ordering::Acquire) {
        return Ok(());
    }
    if !records.is_empty() {
        log.append_replica(records)
            .map_err(|e| FollowError::Storage(e.to_string()))?;
        let mut producers = lock(partition.producers());
        for b in split_batches(records).flatten() {
            if let Ok(h) = BatchHeader::parse(b) {
                producers.record(&h, h.base_offset);
            }
        }
    }
    raise_high_watermark(&mut log, leader_hw);
    let below = u64::try_from(leader_start)
        .unwrap_or(0)
        .min(log.high_watermark());
    if below > log.log_start_offset() {
        log.delete_segments_below(below)
            .map_err(|e| FollowError::Storage(e.to_string()))?;
    }
    Ok(())
}

/// Step 1: cut this copy back to where it agrees with the leader.
async fn truncate_to_leader(
    me: u32,
    target: &FollowTarget,
    partition: &Arc<Partition>,
    stop: &AtomicBool,
    peer: &mut Peer,
) -> Result<(), FollowError> {
    let (latest, log_end, hw) = {
        let log = partition.log();
        (
            log.leader_epochs().latest(),
            log.log_end_offset(),
            log.high_watermark(),
        )
    };
    let cut = match latest {
        // Nothing of ours was written under an epoch: what is past the
        // high watermark was never known committed.
        None => hw,
        Some(ours) => {
            let epochs = partition.log().leader_epochs().clone();
            // Each round asks about an older epoch; a history has at most
            // as many rounds as it has epochs.
            let mut asked = ours.epoch;
            loop {
                let answer = ask_epoch_end(me, target, peer, asked).await?;
                match truncation_step(&epochs, log_end, answer) {
                    Truncation::At(at) => break at,
                    Truncation::AskAgain(older) if older < asked => asked = older,
                    Truncation::AskAgain(_) => break epochs.first().map_or(0, |e| e.start_offset),
                }
            }
        }
    };
    if cut >= log_end || stop.load(Ordering::Acquire) {
        return Ok(());
    }
    let part = partition.clone();
    tokio::task::spawn_blocking(move || -> Result<(), FollowError> {
        let mut log = part.log();
        let end = log
            .truncate_to(cut)
            .map_err(|e| FollowError::Storage(e.to_string()))?;
        let producers = rebuild_producers(&log).map_err(|e| FollowError::Storage(e.to_string()))?;
        *lock(part.producers()) = producers;
        tracing::info!(dir = %log.dir().display(), from = log_end, to = end, "follower cut its log back to where it agrees with the leader");
        Ok(())
    })
    .await
    .map_err(|e| FollowError::Storage(e.to_string()))?
}

/// The leader's answer to OffsetForLeaderEpoch for `epoch`.
async fn ask_epoch_end(
    me: u32,
    target: &FollowTarget,
    peer: &mut Peer,
    epoch: i32,
) -> Result<Option<EpochEntry>, FollowError> {
    let mut req =
        OffsetForLeaderEpochRequest::default().with_topics(vec![OffsetForLeaderTopic::default()
            .with_topic(TopicName(StrBytes::from_string(target.topic.clone())))
            .with_partitions(vec![OffsetForLeaderPartition::default()
                .with_partition(target.partition)
                .with_current_leader_epoch(target.leader_epoch)
                .with_leader_epoch(epoch)])]);
    req.replica_id = BrokerId(me as i32);
    let resp = peer
        .send(&req, OFFSET_FOR_LEADER_EPOCH_VERSION, ANSWER_SLACK)
        .await?;
    let answer = resp
        .topics
        .into_iter()
        .flat_map(|t| t.partitions)
        .find(|p| p.partition == target.partition)
        .ok_or(FollowError::Missing)?;
    if let Some(e) = answer.error_code.err() {
        return Err(FollowError::Leader(e));
    }
    Ok(
        (answer.leader_epoch >= 0 && answer.end_offset >= 0).then_some(EpochEntry {
            epoch: answer.leader_epoch,
            start_offset: answer.end_offset as u64,
        }),
    )
}
