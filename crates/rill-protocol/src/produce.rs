//! The front of a Produce request (v3 to v8, the versions without tagged
//! fields) for one partition, up to and including the records' length, so a
//! client can write it and the record batches from their own buffer in one
//! vectored write instead of copying the batches into the request.

use crate::batch::BatchError;

/// Produce's API key.
pub const PRODUCE_API_KEY: i16 = 0;
/// Lowest and highest versions [`produce_request_front`] writes.
pub const PRODUCE_FRONT_VERSIONS: std::ops::RangeInclusive<i16> = 3..=8;

/// What goes in a one-partition Produce request besides its records.
#[derive(Debug, Clone, Copy)]
pub struct ProduceFront<'a> {
    pub version: i16,
    pub correlation_id: i32,
    pub client_id: &'a str,
    pub acks: i16,
    pub timeout_ms: i32,
    pub topic: &'a str,
    pub partition: i32,
}

fn put_str(out: &mut Vec<u8>, s: &str) -> Result<(), BatchError> {
    let len = i16::try_from(s.len()).map_err(|_| BatchError::FieldOverflow("string length"))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// The frame's size prefix, request header (v1) and body up to the records'
/// length, for `records_bytes` of record batches that follow it on the wire.
pub fn produce_request_front(
    f: &ProduceFront<'_>,
    records_bytes: usize,
) -> Result<Vec<u8>, BatchError> {
    if !PRODUCE_FRONT_VERSIONS.contains(&f.version) {
        return Err(BatchError::FieldOverflow("produce version"));
    }
    let records_len =
        i32::try_from(records_bytes).map_err(|_| BatchError::FieldOverflow("records length"))?;
    let mut out = Vec::with_capacity(64 + f.client_id.len() + f.topic.len());
    out.extend_from_slice(&0i32.to_be_bytes()); // frame size, below
    out.extend_from_slice(&PRODUCE_API_KEY.to_be_bytes());
    out.extend_from_slice(&f.version.to_be_bytes());
    out.extend_from_slice(&f.correlation_id.to_be_bytes());
    put_str(&mut out, f.client_id)?;
    out.extend_from_slice(&(-1i16).to_be_bytes()); // transactional_id: null
    out.extend_from_slice(&f.acks.to_be_bytes());
    out.extend_from_slice(&f.timeout_ms.to_be_bytes());
    out.extend_from_slice(&1i32.to_be_bytes()); // one topic
    put_str(&mut out, f.topic)?;
    out.extend_from_slice(&1i32.to_be_bytes()); // one partition
    out.extend_from_slice(&f.partition.to_be_bytes());
    out.extend_from_slice(&records_len.to_be_bytes());
    let size = (out.len() - 4)
        .checked_add(records_bytes)
        .and_then(|n| i32::try_from(n).ok())
        .ok_or(BatchError::FieldOverflow("frame size"))?;
    if let Some(slot) = out.get_mut(..4) {
        slot.copy_from_slice(&size.to_be_bytes());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lays_out_a_v8_request_as_kafka_does() {
        let front = ProduceFront {
            version: 8,
            correlation_id: 7,
            client_id: "rill",
            acks: -1,
            timeout_ms: 1500,
            topic: "t",
            partition: 2,
        };
        let bytes = produce_request_front(&front, 100).unwrap();
        let expected: Vec<u8> = [
            &(bytes.len() as i32 - 4 + 100).to_be_bytes()[..],
            &0i16.to_be_bytes(),
            &8i16.to_be_bytes(),
            &7i32.to_be_bytes(),
            &4i16.to_be_bytes(),
            b"rill",
            &(-1i16).to_be_bytes(),
            &(-1i16).to_be_bytes(),
            &1500i32.to_be_bytes(),
            &1i32.to_be_bytes(),
            &1i16.to_be_bytes(),
            b"t",
            &1i32.to_be_bytes(),
            &2i32.to_be_bytes(),
            &100i32.to_be_bytes(),
        ]
        .concat();
        assert_eq!(bytes, expected);
        let flexible = ProduceFront {
            version: 9,
            ..front
        };
        assert!(produce_request_front(&flexible, 1).is_err());
    }
}
