//! Producer ids unique across the cluster: the store holds the next free
//! id under [`keys::PRODUCER_IDS`]; an SPU takes a block of
//! [`PRODUCER_ID_BLOCK`] ids with one compare-and-swap and hands them out
//! locally, so InitProducerId costs a store round trip once per block.
//! Two SPUs racing for a block: one CAS wins, the other re-reads.

use std::ops::Range;

use crate::keys;
use crate::store::{Expect, MetadataStore, StoreError};

/// Ids taken from the store at a time.
pub const PRODUCER_ID_BLOCK: i64 = 1000;
/// Attempts at the compare-and-swap before giving up (every failure means
/// another SPU took a block meanwhile, so this is only reached under a
/// storm of allocations).
const MAX_ATTEMPTS: usize = 32;

/// Takes the next block of producer ids.
pub async fn allocate_block<S: MetadataStore>(store: &S) -> Result<Range<i64>, StoreError> {
    let mut last = None;
    for _ in 0..MAX_ATTEMPTS {
        let current = store.get(keys::PRODUCER_IDS).await?;
        let (start, expect) = match &current {
            None => (0, Expect::Absent),
            Some(e) => {
                let text = std::str::from_utf8(&e.value).unwrap_or_default();
                let next = text
                    .trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| StoreError::Corrupt(format!("producer id counter {text:?}")))?;
                (next, Expect::ModRevision(e.mod_revision))
            }
        };
        let end = start
            .checked_add(PRODUCER_ID_BLOCK)
            .ok_or_else(|| StoreError::Corrupt("producer ids exhausted".into()))?;
        match store
            .put(
                keys::PRODUCER_IDS,
                end.to_string().into_bytes(),
                expect,
                None,
            )
            .await
        {
            Ok(_) => return Ok(start..end),
            Err(e @ StoreError::Conflict { .. }) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| StoreError::Unavailable("producer id allocation".into())))
}
