//! Where each piece of cluster metadata lives in the store, and who writes
//! it:
//!
//! | key | value | written by | lease |
//! |---|---|---|---|
//! | `/rill/spus/<id>` | the SPU's advertised `host:port` | that SPU | the SPU's session |
//! | `/rill/controller` | the controller's SPU id | the SPU elected | its session |
//! | `/rill/topics/<name>` | [`crate::model::TopicSpec`] | the SPU that took CreateTopics; deleted by DeleteTopics | none |
//! | `/rill/partitions/<name>/<p>` | [`crate::model::PartitionState`] | the controller (placement, leaders), guarded on its election | none |
//! | `/rill/stopping/<id>` | empty: the SPU is stopping gracefully, hand its leaderships over | that SPU | the SPU's session |
//! | `/rill/producer_ids` | the next producer id not yet given out | any SPU taking a block, with CAS | none |

/// Every key of Rill's lives under this prefix.
pub const ROOT: &str = "/rill/";
/// SPU registrations, one key per SPU id.
pub const SPUS: &str = "/rill/spus/";
/// The controller's SPU id.
pub const CONTROLLER: &str = "/rill/controller";

/// Topic specs, one key per topic.
/// The next free producer id (see [`crate::producer_ids`]).
pub const PRODUCER_IDS: &str = "/rill/producer_ids";
pub const TOPICS: &str = "/rill/topics/";
/// Partition states, under one prefix per topic.
pub const PARTITIONS: &str = "/rill/partitions/";

/// The key of topic `name`.
pub fn topic(name: &str) -> String {
    format!("{TOPICS}{name}")
}

/// The key of partition `p` of topic `name` (zero-padded, so a topic's
/// partitions sort by number).
pub fn partition(name: &str, p: u32) -> String {
    format!("{PARTITIONS}{name}/{p:05}")
}

/// Topic and partition of a partition key.
pub fn parse_partition(key: &str) -> Option<(String, u32)> {
    let (name, p) = key.strip_prefix(PARTITIONS)?.rsplit_once('/')?;
    Some((name.to_owned(), p.parse().ok()?))
}

/// The registration key of SPU `id`, zero-padded so keys sort by id.
pub fn spu(id: u32) -> String {
    format!("{SPUS}{id:010}")
}

/// Marks of SPUs stopping gracefully (controlled shutdown), one key per
/// SPU id.
pub const STOPPING: &str = "/rill/stopping/";

/// The mark of SPU `id` stopping gracefully.
pub fn stopping(id: u32) -> String {
    format!("{STOPPING}{id:010}")
}

/// The SPU id of a stopping mark.
pub fn stopping_id(key: &str) -> Option<u32> {
    key.strip_prefix(STOPPING)?.parse().ok()
}

/// The SPU id of a registration key.
pub fn spu_id(key: &str) -> Option<u32> {
    key.strip_prefix(SPUS)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spu_keys_sort_by_id_and_parse_back() {
        assert!(spu(9) < spu(10));
        assert_eq!(spu_id(&spu(42)), Some(42));
        assert_eq!(spu_id("/rill/spus/x"), None);
        assert_eq!(stopping_id(&stopping(7)), Some(7));
        assert_eq!(spu_id(&stopping(7)), None);
        assert!(partition("t", 9) < partition("t", 10));
        assert_eq!(
            parse_partition(&partition("a.b-c", 12)),
            Some(("a.b-c".into(), 12))
        );
        assert_eq!(topic("t"), "/rill/topics/t");
    }
}
