//! Request decoders that cannot be made to over-allocate.
//!
//! kafka-protocol's decoders size an array's buffer from the count the client
//! sends, so a request of a few bytes claiming two billion entries makes the
//! process abort on a failed allocation. These decoders fill the same
//! kafka-protocol structs, but check every count against the bytes that are
//! left (each element takes at least one byte) and grow buffers as elements
//! actually arrive. Byte fields (record batches) are slices of the frame, not
//! copies. Tests compare them with kafka-protocol's own decoders for every
//! supported version.

use std::collections::BTreeMap;

use bytes::{Buf, Bytes};
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiVersionsRequest, BrokerId, CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest,
    FetchRequest, InitProducerIdRequest, ListOffsetsRequest, MetadataRequest, ProduceRequest,
    ProducerId, RequestHeader, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

/// Elements reserved up front for an array, whatever its count says.
const MAX_PREALLOCATED_ELEMENTS: usize = 256;

pub(crate) type Result<T> = std::result::Result<T, String>;

/// A reader over one request frame.
pub(crate) struct Reader {
    buf: Bytes,
    /// Compact (flexible) encodings: varint lengths, tagged fields.
    flexible: bool,
}

impl Reader {
    pub fn new(buf: Bytes) -> Self {
        Self {
            buf,
            flexible: false,
        }
    }

    fn need(&self, n: usize) -> Result<()> {
        if self.buf.len() < n {
            return Err(format!(
                "request ended early: {n} bytes needed, {} left",
                self.buf.len()
            ));
        }
        Ok(())
    }

    fn i8(&mut self) -> Result<i8> {
        self.need(1)?;
        Ok(self.buf.get_i8())
    }

    fn bool(&mut self) -> Result<bool> {
        Ok(self.i8()? != 0)
    }

    fn i16(&mut self) -> Result<i16> {
        self.need(2)?;
        Ok(self.buf.get_i16())
    }

    fn i32(&mut self) -> Result<i32> {
        self.need(4)?;
        Ok(self.buf.get_i32())
    }

    fn i64(&mut self) -> Result<i64> {
        self.need(8)?;
        Ok(self.buf.get_i64())
    }

    fn uuid(&mut self) -> Result<uuid::Uuid> {
        self.need(16)?;
        Ok(uuid::Uuid::from_u128(self.buf.get_u128()))
    }

    fn uvarint(&mut self) -> Result<u32> {
        let mut value: u32 = 0;
        for i in 0..5 {
            self.need(1)?;
            let byte = self.buf.get_u8();
            let bits = u32::from(byte & 0x7f);
            if i == 4 && bits > 0x0f {
                return Err("varint overflows 32 bits".into());
            }
            value |= bits << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("varint longer than 5 bytes".into())
    }

    fn take(&mut self, n: usize) -> Result<Bytes> {
        self.need(n)?;
        Ok(self.buf.split_to(n))
    }

    /// A length: i16 (or i32 for bytes) classic, varint-plus-one compact.
    /// `None` for null.
    fn length(&mut self, wide: bool) -> Result<Option<usize>> {
        let n: i64 = if self.flexible {
            i64::from(self.uvarint()?) - 1
        } else if wide {
            i64::from(self.i32()?)
        } else {
            i64::from(self.i16()?)
        };
        match n {
            -1 => Ok(None),
            n if n < -1 => Err(format!("negative length {n}")),
            n => Ok(Some(n as usize)),
        }
    }

    fn nullable_string(&mut self) -> Result<Option<StrBytes>> {
        match self.length(false)? {
            None => Ok(None),
            Some(n) => {
                let bytes = self.take(n)?;
                StrBytes::from_utf8(bytes)
                    .map(Some)
                    .map_err(|_| "string is not UTF-8".to_string())
            }
        }
    }

    fn string(&mut self) -> Result<StrBytes> {
        self.nullable_string()?
            .ok_or_else(|| "null where a string is required".to_string())
    }

    fn nullable_bytes(&mut self) -> Result<Option<Bytes>> {
        match self.length(true)? {
            None => Ok(None),
            Some(n) => self.take(n).map(Some),
        }
    }

    fn nullable_array<T>(
        &mut self,
        mut element: impl FnMut(&mut Self) -> Result<T>,
    ) -> Result<Option<Vec<T>>> {
        let count = if self.flexible {
            i64::from(self.uvarint()?) - 1
        } else {
            i64::from(self.i32()?)
        };
        if count == -1 {
            return Ok(None);
        }
        let count = usize::try_from(count).map_err(|_| format!("negative array length {count}"))?;
        if count > self.buf.len() {
            return Err(format!(
                "array claims {count} elements with {} bytes left",
                self.buf.len()
            ));
        }
        let mut out = Vec::with_capacity(count.min(MAX_PREALLOCATED_ELEMENTS));
        for _ in 0..count {
            out.push(element(self)?);
        }
        Ok(Some(out))
    }

    fn array<T>(&mut self, element: impl FnMut(&mut Self) -> Result<T>) -> Result<Vec<T>> {
        self.nullable_array(element)?
            .ok_or_else(|| "null where an array is required".to_string())
    }

    /// Tagged fields of a flexible version: `known` takes the tags it
    /// understands (given their bytes); the rest are kept as unknown.
    fn tagged(
        &mut self,
        mut known: impl FnMut(u32, Bytes) -> Result<bool>,
    ) -> Result<BTreeMap<i32, Bytes>> {
        let mut unknown = BTreeMap::new();
        if !self.flexible {
            return Ok(unknown);
        }
        let count = self.uvarint()?;
        if count as usize > self.buf.len() {
            return Err(format!(
                "{count} tagged fields with {} bytes left",
                self.buf.len()
            ));
        }
        for _ in 0..count {
            let tag = self.uvarint()?;
            let size = self.uvarint()? as usize;
            let value = self.take(size)?;
            if !known(tag, value.clone())? {
                unknown.insert(tag as i32, value);
            }
        }
        Ok(unknown)
    }

    fn no_known_tags(&mut self) -> Result<BTreeMap<i32, Bytes>> {
        self.tagged(|_, _| Ok(false))
    }

    fn topic_name(&mut self) -> Result<TopicName> {
        Ok(TopicName(self.string()?))
    }
}

/// The request header (v1 or v2); the reader becomes flexible when `flexible`.
pub(crate) fn header(r: &mut Reader, header_version: i16) -> Result<RequestHeader> {
    let key = r.i16()?;
    let version = r.i16()?;
    let cid = r.i32()?;
    // The client id keeps its classic i16 length even in header v2.
    let client_id = if header_version >= 1 {
        r.nullable_string()?
    } else {
        None
    };
    let mut h = RequestHeader::default()
        .with_request_api_key(key)
        .with_request_api_version(version)
        .with_correlation_id(cid)
        .with_client_id(client_id);
    if header_version >= 2 {
        r.flexible = true;
        h.unknown_tagged_fields = r.no_known_tags()?;
    }
    Ok(h)
}

/// After the header, the body's own encoding.
fn body(r: &mut Reader, flexible: bool) {
    r.flexible = flexible;
}

pub(crate) fn api_versions(r: &mut Reader, v: i16) -> Result<ApiVersionsRequest> {
    body(r, v >= 3);
    let mut req = ApiVersionsRequest::default();
    if v >= 3 {
        req.client_software_name = r.string()?;
        req.client_software_version = r.string()?;
        req.unknown_tagged_fields = r.no_known_tags()?;
    }
    Ok(req)
}

pub(crate) fn metadata(r: &mut Reader, v: i16) -> Result<MetadataRequest> {
    body(r, v >= 9);
    let topics = r.nullable_array(|r| {
        let topic_id = if v >= 10 {
            r.uuid()?
        } else {
            uuid::Uuid::nil()
        };
        let name = if v >= 10 {
            r.nullable_string()?.map(TopicName)
        } else {
            Some(r.topic_name()?)
        };
        let mut t = MetadataRequestTopic::default()
            .with_topic_id(topic_id)
            .with_name(name);
        t.unknown_tagged_fields = r.no_known_tags()?;
        Ok(t)
    })?;
    if v == 0 && topics.is_none() {
        return Err("Metadata v0 topics cannot be null".into());
    }
    let mut req = MetadataRequest::default().with_topics(topics);
    req.allow_auto_topic_creation = if v >= 4 { r.bool()? } else { true };
    if (8..=10).contains(&v) {
        req.include_cluster_authorized_operations = r.bool()?;
    }
    if v >= 8 {
        req.include_topic_authorized_operations = r.bool()?;
    }
    req.unknown_tagged_fields = r.no_known_tags()?;
    Ok(req)
}

pub(crate) fn produce(r: &mut Reader, v: i16) -> Result<ProduceRequest> {
    body(r, v >= 9);
    let transactional_id = r.nullable_string()?.map(TransactionalId);
    let acks = r.i16()?;
    let timeout_ms = r.i32()?;
    let topic_data = r.array(|r| {
        let name = r.topic_name()?;
        let partition_data = r.array(|r| {
            let index = r.i32()?;
            let records = r.nullable_bytes()?;
            let mut p = PartitionProduceData::default()
                .with_index(index)
                .with_records(records);
            p.unknown_tagged_fields = r.no_known_tags()?;
            Ok(p)
        })?;
        let mut t = TopicProduceData::default()
            .with_name(name)
            .with_partition_data(partition_data);
        t.unknown_tagged_fields = r.no_known_tags()?;
        Ok(t)
    })?;
    let mut req = ProduceRequest::default()
        .with_transactional_id(transactional_id)
        .with_acks(acks)
        .with_timeout_ms(timeout_ms)
        .with_topic_data(topic_data);
    req.unknown_tagged_fields = r.no_known_tags()?;
    Ok(req)
}

pub(crate) fn fetch(r: &mut Reader, v: i16) -> Result<FetchRequest> {
    body(r, v >= 12);
    let mut req = FetchRequest::default()
        .with_replica_id(BrokerId(r.i32()?))
        .with_max_wait_ms(r.i32()?)
        .with_min_bytes(r.i32()?)
        .with_max_bytes(r.i32()?)
        .with_isolation_level(r.i8()?);
    if v >= 7 {
        req.session_id = r.i32()?;
        req.session_epoch = r.i32()?;
    } else {
        req.session_epoch = -1;
    }
    req.topics = r.array(|r| {
        let topic = r.topic_name()?;
        let partitions = r.array(|r| {
            let mut p = FetchPartition::default().with_partition(r.i32()?);
            p.current_leader_epoch = if v >= 9 { r.i32()? } else { -1 };
            p.fetch_offset = r.i64()?;
            p.last_fetched_epoch = if v >= 12 { r.i32()? } else { -1 };
            p.log_start_offset = if v >= 5 { r.i64()? } else { -1 };
            p.partition_max_bytes = r.i32()?;
            p.unknown_tagged_fields = r.no_known_tags()?;
            Ok(p)
        })?;
        let mut t = FetchTopic::default()
            .with_topic(topic)
            .with_partitions(partitions);
        t.unknown_tagged_fields = r.no_known_tags()?;
        Ok(t)
    })?;
    if v >= 7 {
        req.forgotten_topics_data = r.array(|r| {
            let topic = r.topic_name()?;
            let partitions = r.array(|r| r.i32())?;
            let mut f = ForgottenTopic::default()
                .with_topic(topic)
                .with_partitions(partitions);
            f.unknown_tagged_fields = r.no_known_tags()?;
            Ok(f)
        })?;
    }
    if v >= 11 {
        req.rack_id = r.string()?;
    }
    let mut cluster_id = None;
    req.unknown_tagged_fields = r.tagged(|tag, value| {
        if tag != 0 {
            return Ok(false);
        }
        // cluster_id: a compact nullable string inside the tag's bytes.
        let mut inner = Reader {
            buf: value,
            flexible: true,
        };
        cluster_id = inner.nullable_string()?;
        Ok(true)
    })?;
    req.cluster_id = cluster_id;
    Ok(req)
}

pub(crate) fn list_offsets(r: &mut Reader, v: i16) -> Result<ListOffsetsRequest> {
    body(r, v >= 6);
    let mut req = ListOffsetsRequest::default().with_replica_id(BrokerId(r.i32()?));
    if v >= 2 {
        req.isolation_level = r.i8()?;
    }
    req.topics = r.array(|r| {
        let name = r.topic_name()?;
        let partitions = r.array(|r| {
            let mut p = ListOffsetsPartition::default().with_partition_index(r.i32()?);
            p.current_leader_epoch = if v >= 4 { r.i32()? } else { -1 };
            p.timestamp = r.i64()?;
            p.unknown_tagged_fields = r.no_known_tags()?;
            Ok(p)
        })?;
        let mut t = ListOffsetsTopic::default()
            .with_name(name)
            .with_partitions(partitions);
        t.unknown_tagged_fields = r.no_known_tags()?;
        Ok(t)
    })?;
    req.unknown_tagged_fields = r.no_known_tags()?;
    Ok(req)
}

pub(crate) fn create_topics(r: &mut Reader, v: i16) -> Result<CreateTopicsRequest> {
    body(r, v >= 5);
    let topics = r.array(|r| {
        let mut t = CreatableTopic::default()
            .with_name(r.topic_name()?)
            .with_num_partitions(r.i32()?)
            .with_replication_factor(r.i16()?);
        t.assignments = r.array(|r| {
            let mut a = CreatableReplicaAssignment::default().with_partition_index(r.i32()?);
            a.broker_ids = r.array(|r| r.i32().map(BrokerId))?;
            a.unknown_tagged_fields = r.no_known_tags()?;
            Ok(a)
        })?;
        t.configs = r.array(|r| {
            let mut c = CreatableTopicConfig::default()
                .with_name(r.string()?)
                .with_value(r.nullable_string()?);
            c.unknown_tagged_fields = r.no_known_tags()?;
            Ok(c)
        })?;
        t.unknown_tagged_fields = r.no_known_tags()?;
        Ok(t)
    })?;
    let mut req = CreateTopicsRequest::default()
        .with_topics(topics)
        .with_timeout_ms(r.i32()?)
        .with_validate_only(r.bool()?);
    req.unknown_tagged_fields = r.no_known_tags()?;
    Ok(req)
}

pub(crate) fn delete_topics(r: &mut Reader, v: i16) -> Result<DeleteTopicsRequest> {
    body(r, v >= 4);
    let mut req = DeleteTopicsRequest::default();
    if v >= 6 {
        req.topics = r.array(|r| {
            let mut t = DeleteTopicState::default()
                .with_name(r.nullable_string()?.map(TopicName))
                .with_topic_id(r.uuid()?);
            t.unknown_tagged_fields = r.no_known_tags()?;
            Ok(t)
        })?;
    } else {
        req.topic_names = r.array(|r| r.topic_name())?;
    }
    req.timeout_ms = r.i32()?;
    req.unknown_tagged_fields = r.no_known_tags()?;
    Ok(req)
}

pub(crate) fn describe_configs(r: &mut Reader, v: i16) -> Result<DescribeConfigsRequest> {
    body(r, v >= 4);
    let resources = r.array(|r| {
        let mut res = DescribeConfigsResource::default()
            .with_resource_type(r.i8()?)
            .with_resource_name(r.string()?)
            .with_configuration_keys(r.nullable_array(|r| r.string())?);
        res.unknown_tagged_fields = r.no_known_tags()?;
        Ok(res)
    })?;
    let mut req = DescribeConfigsRequest::default()
        .with_resources(resources)
        .with_include_synonyms(r.bool()?);
    if v >= 3 {
        req.include_documentation = r.bool()?;
    }
    req.unknown_tagged_fields = r.no_known_tags()?;
    Ok(req)
}

pub(crate) fn init_producer_id(r: &mut Reader, v: i16) -> Result<InitProducerIdRequest> {
    body(r, v >= 2);
    let mut req = InitProducerIdRequest::default()
        .with_transactional_id(r.nullable_string()?.map(TransactionalId))
        .with_transaction_timeout_ms(r.i32()?);
    if v >= 3 {
        req.producer_id = ProducerId(r.i64()?);
        req.producer_epoch = r.i16()?;
    } else {
        req.producer_id = ProducerId(-1);
        req.producer_epoch = -1;
    }
    req.unknown_tagged_fields = r.no_known_tags()?;
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::protocol::{Decodable, Encodable};
    use proptest::prelude::*;

    fn s(x: &str) -> StrBytes {
        StrBytes::from_string(x.to_owned())
    }

    fn name(x: &str) -> TopicName {
        TopicName(s(x))
    }

    /// Encodes with kafka-protocol, decodes with both, compares.
    fn same<M>(req: M, v: i16, ours: fn(&mut Reader, i16) -> Result<M>)
    where
        M: Encodable + Decodable + PartialEq + std::fmt::Debug,
    {
        let mut buf = BytesMut::new();
        req.encode(&mut buf, v)
            .unwrap_or_else(|e| panic!("encode v{v}: {e}"));
        let bytes = buf.freeze();
        let theirs = M::decode(&mut bytes.clone(), v).unwrap();
        let mut r = Reader::new(bytes);
        let mine = ours(&mut r, v).unwrap_or_else(|e| panic!("v{v}: {e}"));
        assert_eq!(mine, theirs, "v{v}");
        assert!(r.buf.is_empty(), "v{v}: {} bytes left over", r.buf.len());
    }

    #[test]
    fn headers_match() {
        for hv in [1i16, 2] {
            let h = RequestHeader::default()
                .with_request_api_key(3)
                .with_request_api_version(12)
                .with_correlation_id(77)
                .with_client_id(Some(s("client-ü")));
            let mut buf = BytesMut::new();
            h.encode(&mut buf, hv).unwrap();
            let mut r = Reader::new(buf.freeze());
            assert_eq!(header(&mut r, hv).unwrap(), h);
            assert!(r.buf.is_empty());
        }
    }

    #[test]
    fn api_versions_match() {
        for v in 0..=3 {
            let mut req = ApiVersionsRequest::default();
            if v >= 3 {
                req = req
                    .with_client_software_name(s("librdkafka"))
                    .with_client_software_version(s("2.0.2"));
            }
            same(req, v, api_versions);
        }
    }

    #[test]
    fn metadata_matches() {
        for v in 0..=12 {
            let topic = |n: &str| {
                let mut t = MetadataRequestTopic::default().with_name(Some(name(n)));
                if v >= 10 {
                    t.topic_id = uuid::Uuid::from_u128(0x1234);
                }
                t
            };
            let mut req =
                MetadataRequest::default().with_topics(Some(vec![topic("a"), topic("bb")]));
            if v >= 4 {
                req.allow_auto_topic_creation = false;
            }
            if (8..=10).contains(&v) {
                req.include_cluster_authorized_operations = true;
            }
            if v >= 8 {
                req.include_topic_authorized_operations = true;
            }
            same(req, v, metadata);
            if v >= 1 {
                same(MetadataRequest::default().with_topics(None), v, metadata);
            }
        }
    }

    #[test]
    fn produce_matches() {
        for v in 3..=9 {
            let req = ProduceRequest::default()
                .with_transactional_id(None)
                .with_acks(-1)
                .with_timeout_ms(1500)
                .with_topic_data(vec![TopicProduceData::default()
                    .with_name(name("t"))
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(2)
                            .with_records(Some(Bytes::from_static(b"batch bytes"))),
                        PartitionProduceData::default()
                            .with_index(3)
                            .with_records(None),
                    ])]);
            same(req.clone(), v, produce);
            same(
                req.with_transactional_id(Some(TransactionalId(s("tx")))),
                v,
                produce,
            );
        }
    }

    #[test]
    fn fetch_matches() {
        for v in 4..=12 {
            let mut p = FetchPartition::default()
                .with_partition(1)
                .with_fetch_offset(99)
                .with_partition_max_bytes(1 << 20);
            if v >= 9 {
                p.current_leader_epoch = 3;
            }
            if v >= 12 {
                p.last_fetched_epoch = 2;
            }
            if v >= 5 {
                p.log_start_offset = 7;
            }
            let mut req = FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(500)
                .with_min_bytes(1)
                .with_max_bytes(50 << 20)
                .with_isolation_level(1)
                .with_topics(vec![FetchTopic::default()
                    .with_topic(name("t"))
                    .with_partitions(vec![p])]);
            if v >= 7 {
                req.session_id = 5;
                req.session_epoch = 6;
                req.forgotten_topics_data = vec![ForgottenTopic::default()
                    .with_topic(name("old"))
                    .with_partitions(vec![0, 4])];
            }
            if v >= 11 {
                req.rack_id = s("rack-1");
            }
            if v >= 12 {
                req.cluster_id = Some(s("rill-local"));
            }
            same(req, v, fetch);
        }
    }

    #[test]
    fn list_offsets_matches() {
        for v in 1..=7 {
            let mut p = ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(-2);
            if v >= 4 {
                p.current_leader_epoch = 1;
            }
            let mut req = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![ListOffsetsTopic::default()
                    .with_name(name("t"))
                    .with_partitions(vec![p])]);
            if v >= 2 {
                req.isolation_level = 1;
            }
            same(req, v, list_offsets);
        }
    }

    #[test]
    fn create_topics_matches() {
        for v in 2..=7 {
            let req = CreateTopicsRequest::default()
                .with_timeout_ms(30_000)
                .with_validate_only(true)
                .with_topics(vec![CreatableTopic::default()
                    .with_name(name("new"))
                    .with_num_partitions(-1)
                    .with_replication_factor(-1)
                    .with_assignments(vec![CreatableReplicaAssignment::default()
                        .with_partition_index(0)
                        .with_broker_ids(vec![BrokerId(0)])])
                    .with_configs(vec![
                        CreatableTopicConfig::default()
                            .with_name(s("retention.ms"))
                            .with_value(Some(s("1000"))),
                        CreatableTopicConfig::default()
                            .with_name(s("segment.bytes"))
                            .with_value(None),
                    ])]);
            same(req, v, create_topics);
        }
    }

    #[test]
    fn delete_topics_matches() {
        for v in 1..=6 {
            let mut req = DeleteTopicsRequest::default().with_timeout_ms(1000);
            if v >= 6 {
                req.topics = vec![
                    DeleteTopicState::default().with_name(Some(name("a"))),
                    DeleteTopicState::default()
                        .with_name(None)
                        .with_topic_id(uuid::Uuid::from_u128(9)),
                ];
            } else {
                req.topic_names = vec![name("a"), name("b")];
            }
            same(req, v, delete_topics);
        }
    }

    #[test]
    fn describe_configs_matches() {
        for v in 1..=4 {
            let mut req = DescribeConfigsRequest::default()
                .with_include_synonyms(true)
                .with_resources(vec![
                    DescribeConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(s("t"))
                        .with_configuration_keys(None),
                    DescribeConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(s("u"))
                        .with_configuration_keys(Some(vec![s("retention.ms")])),
                ]);
            if v >= 3 {
                req.include_documentation = true;
            }
            same(req, v, describe_configs);
        }
    }

    #[test]
    fn init_producer_id_matches() {
        for v in 0..=4 {
            let mut req = InitProducerIdRequest::default().with_transaction_timeout_ms(60_000);
            if v >= 3 {
                req.producer_id = ProducerId(42);
                req.producer_epoch = 3;
            } else {
                req.producer_id = ProducerId(-1);
                req.producer_epoch = -1;
            }
            same(req.clone(), v, init_producer_id);
            same(
                req.with_transactional_id(Some(TransactionalId(s("tx")))),
                v,
                init_producer_id,
            );
        }
    }

    #[test]
    fn lying_counts_are_errors_not_allocations() {
        // Metadata v1 with 2^31 - 1 topics in 4 bytes.
        let mut r = Reader::new(Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff]));
        assert!(metadata(&mut r, 1).unwrap_err().contains("array claims"));
        // Flexible: a compact array of 2^32 - 2 elements.
        let mut r = Reader::new(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x0f]));
        assert!(metadata(&mut r, 12).is_err());
        // Produce: records claiming 2 GiB.
        let mut body = vec![
            0xff, 0xff, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 1, 0, 0, 0, 0,
        ];
        body.extend_from_slice(&i32::MAX.to_be_bytes());
        let mut r = Reader::new(Bytes::from(body));
        assert!(produce(&mut r, 3).unwrap_err().contains("ended early"));
        // A string longer than what is left.
        let mut r = Reader::new(Bytes::from_static(&[0x7f, 0xff, b'a']));
        assert!(r.string().is_err());
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300), v in 0i16..13) {
            let bytes = Bytes::from(data);
            let _ = header(&mut Reader::new(bytes.clone()), 2);
            let _ = api_versions(&mut Reader::new(bytes.clone()), v.min(3));
            let _ = metadata(&mut Reader::new(bytes.clone()), v);
            let _ = produce(&mut Reader::new(bytes.clone()), v.clamp(3, 9));
            let _ = fetch(&mut Reader::new(bytes.clone()), v.clamp(4, 12));
            let _ = list_offsets(&mut Reader::new(bytes.clone()), v.clamp(1, 7));
            let _ = create_topics(&mut Reader::new(bytes.clone()), v.clamp(2, 7));
            let _ = delete_topics(&mut Reader::new(bytes.clone()), v.clamp(1, 6));
            let _ = describe_configs(&mut Reader::new(bytes), v.clamp(1, 4));
        }
    }
}
