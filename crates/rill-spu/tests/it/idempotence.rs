use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    BrokerId, FetchRequest, InitProducerIdRequest, ProduceRequest, ProducerId, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use rill_protocol::batch::split_batches;

use rill_test_support::*;

async fn produce(c: &mut KafkaClient, records: Bytes) -> (i16, i64) {
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(1000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name("idem"))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])]);
    let resp = c.send(req, 9).await;
    let p = &resp.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

async fn stored_batches(c: &mut KafkaClient) -> usize {
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name("idem"))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])]);
    let resp = c.send(req, 12).await;
    split_batches(resp.responses[0].partitions[0].records.as_ref().unwrap()).count()
}

#[tokio::test]
async fn retried_batches_are_stored_once_and_gaps_refused_even_after_a_restart() {
    let mut spu = TestSpu::start().await;
    let mut c = spu.client().await;
    create_topic(&mut c, "idem", 1, &[]).await;
    let init = c
        .send(
            InitProducerIdRequest::default().with_transaction_timeout_ms(60_000),
            4,
        )
        .await;
    assert_eq!(init.error_code, 0);
    let (pid, epoch) = (init.producer_id.0, init.producer_epoch);
    assert!(pid >= 0);
    assert_eq!(epoch, 0);
    let other = c
        .send(
            InitProducerIdRequest::default().with_transactional_id(None),
            4,
        )
        .await;
    assert_ne!(other.producer_id.0, pid, "every producer gets its own id");

    assert_eq!(
        produce(&mut c, idempotent_batch(pid, 0, 0, 3)).await,
        (0, 0)
    );
    // The same batch again (a retry after a lost answer): the original offset.
    assert_eq!(
        produce(&mut c, idempotent_batch(pid, 0, 0, 3)).await,
        (46, 0),
        "DUPLICATE_SEQUENCE_NUMBER"
    );
    // A gap.
    assert_eq!(
        produce(&mut c, idempotent_batch(pid, 0, 7, 1)).await.0,
        ResponseError::OutOfOrderSequenceNumber.code()
    );
    assert_eq!(
        produce(&mut c, idempotent_batch(pid, 0, 3, 2)).await,
        (0, 3)
    );
    assert_eq!(stored_batches(&mut c).await, 2, "nothing stored twice");

    // The SPU remembers across a restart (rebuilt from the log).
    drop(c);
    spu.crash_and_restart().await;
    let mut c = spu.client().await;
    assert_eq!(
        produce(&mut c, idempotent_batch(pid, 0, 3, 2)).await,
        (46, 3)
    );
    assert_eq!(
        produce(&mut c, idempotent_batch(pid, 0, 5, 1)).await,
        (0, 5)
    );
    // Epoch bump fences the old incarnation.
    let bumped = c
        .send(
            InitProducerIdRequest::default()
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(0),
            4,
        )
        .await;
    assert_eq!((bumped.producer_id.0, bumped.producer_epoch), (pid, 1));
    assert_eq!(
        produce(&mut c, idempotent_batch(pid, 1, 0, 1)).await,
        (0, 6)
    );
    assert_eq!(
        produce(&mut c, idempotent_batch(pid, 0, 6, 1)).await.0,
        ResponseError::InvalidProducerEpoch.code()
    );
    // Transactions are not supported.
    let tx = c
        .send(
            InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str("t")))),
            4,
        )
        .await;
    assert_eq!(
        tx.error_code,
        ResponseError::TransactionalIdAuthorizationFailed.code()
    );
    spu.stop().await;
}
