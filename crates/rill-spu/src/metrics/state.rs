//! Gauges read from the SPU's state at scrape time: per-partition offsets,
//! ISR size and disk bytes, under-replicated and leaderless partitions,
//! consumer group lag.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;

use super::PartitionLabels;
use crate::api::Context;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabels {
    group: String,
    topic: String,
    partition: i32,
}

type PartitionGauges = Family<PartitionLabels, Gauge>;

/// Registers the state gauges as they are now. Takes each hosted
/// partition's log lock in turn: call on a blocking thread.
pub(super) fn register(registry: &mut Registry, ctx: &Context) {
    let (end, hw, isr, disk) = (
        PartitionGauges::default(),
        PartitionGauges::default(),
        PartitionGauges::default(),
        PartitionGauges::default(),
    );
    let view = ctx.registry.cluster_view();
    let mut under_replicated = 0i64;
    for topic in ctx.registry.topics() {
        for (index, partition) in topic.hosted() {
            let labels = PartitionLabels {
                topic: topic.spec.name.clone(),
                partition: index as i32,
            };
            {
                let log = partition.log();
                set(&end, &labels, log.log_end_offset());
                set(&hw, &labels, log.high_watermark());
                set(&disk, &labels, log.size_bytes());
            }
            if !partition.is_leader() {
                continue;
            }
            // A single SPU's one copy is the whole ISR.
            let (in_sync, replicas) = match (&partition.leadership(), &view) {
                (Some(l), Some(v)) => (
                    l.isr().len(),
                    v.partitions
                        .get(&(topic.spec.name.clone(), index as u32))
                        .map_or(0, |s| s.replicas.len()),
                ),
                _ => (1, 1),
            };
            set(&isr, &labels, in_sync as u64);
            if in_sync < replicas {
                under_replicated += 1;
            }
        }
    }
    let leaderless = view.as_ref().map_or(0, |v| {
        v.partitions
            .values()
            .filter(|s| s.leader().is_none())
            .count()
    });
    let lag = Family::<GroupLabels, Gauge>::default();
    for (key, committed) in ctx.groups.committed() {
        // The lag of partitions this SPU leads (every one on a single SPU).
        let Ok(partition) = ctx.registry.leading(&key.topic, key.partition) else {
            continue;
        };
        let high_watermark = partition.log().high_watermark() as i64;
        let labels = GroupLabels {
            group: key.group,
            topic: key.topic,
            partition: key.partition,
        };
        lag.get_or_create(&labels)
            .set((high_watermark - committed).max(0));
    }
    registry.register(
        "rill_partition_log_end_offset",
        "Offset of the next record to be appended, per hosted partition",
        end,
    );
    registry.register(
        "rill_partition_high_watermark",
        "Offset up to which records are committed, per hosted partition",
        hw,
    );
    registry.register(
        "rill_partition_isr_size",
        "In-sync replicas of each partition this SPU leads",
        isr,
    );
    registry.register(
        "rill_partition_disk_bytes",
        "Bytes of each hosted partition's log segments on disk",
        disk,
    );
    registry.register(
        "rill_under_replicated_partitions",
        "Partitions this SPU leads with fewer in-sync replicas than replicas",
        ConstGauge::new(under_replicated),
    );
    registry.register(
        "rill_leaderless_partitions",
        "Partitions of the cluster without a leader, as this SPU sees the metadata",
        ConstGauge::new(leaderless as i64),
    );
    registry.register(
        "rill_consumer_group_lag",
        "High watermark minus the group's committed offset, per partition this SPU leads",
        lag,
    );
}

fn set(family: &PartitionGauges, labels: &PartitionLabels, value: u64) {
    family
        .get_or_create(labels)
        .set(i64::try_from(value).unwrap_or(i64::MAX));
}
