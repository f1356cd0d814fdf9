//! `rill group` against an SPU process: describe shows committed offsets,
//! log ends and lag; reset moves offsets, and is refused (as is delete)
//! while the group has a member; list and delete.

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{GroupId, JoinGroupRequest, LeaveGroupRequest, OffsetCommitRequest};
use kafka_protocol::protocol::StrBytes;
use rill_test_support::{topic_name, KafkaClient};

use crate::spu::{stderr, TestSpu};

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_owned())
}

fn rows(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .skip(2)
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

#[test]
fn describe_shows_lag_and_reset_waits_for_an_empty_group() {
    let spu = TestSpu::start();
    spu.ok(&["topic", "create", "orders", "-p", "2"]);
    let lines: String = (0..10).map(|i| format!("line {i}\n")).collect();
    spu.produce("orders", &lines, &["--partition", "0"]);
    assert_eq!(spu.ok(&["group", "list"]), "no consumer groups\n");

    let rt = tokio::runtime::Runtime::new().unwrap();
    let addr: std::net::SocketAddr = spu.addr.parse().unwrap();
    // A consumer that assigns partitions itself commits offset 4 of 10.
    rt.block_on(async {
        let mut c = KafkaClient::connect(addr).await;
        let r = c
            .send(
                OffsetCommitRequest::default()
                    .with_group_id(GroupId(s("billing")))
                    .with_generation_id_or_member_epoch(-1)
                    .with_topics(vec![OffsetCommitRequestTopic::default()
                        .with_name(topic_name("orders"))
                        .with_partitions(vec![OffsetCommitRequestPartition::default()
                            .with_partition_index(0)
                            .with_committed_offset(4)])]),
                8,
            )
            .await;
        assert_eq!(r.topics[0].partitions[0].error_code, 0);
    });
    let out = spu.ok(&["group", "describe", "billing"]);
    assert!(
        out.starts_with("group billing: Empty, 0 members\n"),
        "{out}"
    );
    assert_eq!(rows(&out), [["orders", "0", "4", "10", "6", "-"]], "{out}");
    let json = spu.ok(&["group", "describe", "billing", "-O", "json"]);
    assert!(
        json.contains(r#"{"topic":"orders","partition":0,"committed":4,"log_end":10,"lag":6,"member_id":null}"#),
        "{json}"
    );
    let list = spu.ok(&["group", "list", "-O", "json"]);
    assert_eq!(
        list,
        "[{\"group\":\"billing\",\"state\":\"Empty\",\"protocol_type\":\"consumer\"}]\n"
    );

    // Reset: to the end of every partition.
    let out = spu.ok(&[
        "group",
        "reset",
        "billing",
        "--topic",
        "orders",
        "--to-latest",
    ]);
    assert_eq!(
        out,
        "group \"billing\" reset on topic \"orders\" (partition:offset) 0:10 1:0\n"
    );
    let out = spu.ok(&["group", "describe", "billing"]);
    assert_eq!(
        rows(&out),
        [
            ["orders", "0", "10", "10", "0", "-"],
            ["orders", "1", "0", "0", "0", "-"]
        ],
        "{out}"
    );

    // A member joins (JoinGroup v3 is answered once the join phase ends,
    // after the SPU's initial rebalance delay).
    let member = rt.block_on(async {
        let mut c = KafkaClient::connect(addr).await;
        let joined = c
            .send(
                JoinGroupRequest::default()
                    .with_group_id(GroupId(s("billing")))
                    .with_session_timeout_ms(30_000)
                    .with_rebalance_timeout_ms(30_000)
                    .with_protocol_type(s("consumer"))
                    .with_protocols(vec![JoinGroupRequestProtocol::default()
                        .with_name(s("range"))
                        .with_metadata(Bytes::new())]),
                3,
            )
            .await;
        assert_eq!(joined.error_code, 0);
        (c, joined.member_id)
    });
    let refused = spu.rill(&[
        "group",
        "reset",
        "billing",
        "--topic",
        "orders",
        "--to-earliest",
    ]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("stop its consumers first"),
        "{}",
        stderr(&refused)
    );
    let refused = spu.rill(&["group", "delete", "billing"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("NON_EMPTY_GROUP"),
        "{}",
        stderr(&refused)
    );
    let out = spu.ok(&["group", "describe", "billing"]);
    assert!(out.contains(", 1 member"), "{out}");

    // It leaves: reset and delete work.
    rt.block_on(async {
        let (mut c, id) = member;
        let left = c
            .send(
                LeaveGroupRequest::default()
                    .with_group_id(GroupId(s("billing")))
                    .with_member_id(id),
                1,
            )
            .await;
        assert_eq!(left.error_code, 0);
    });
    spu.ok(&[
        "group",
        "reset",
        "billing",
        "--topic",
        "orders",
        "--to-offset",
        "3",
    ]);
    let out = spu.ok(&["group", "describe", "billing"]);
    assert_eq!(rows(&out)[0], ["orders", "0", "3", "10", "7", "-"], "{out}");
    assert_eq!(
        spu.ok(&["group", "delete", "billing"]),
        "group \"billing\" deleted\n"
    );
    assert_eq!(spu.ok(&["group", "list"]), "no consumer groups\n");
    let gone = spu.rill(&["group", "describe", "billing"]);
    assert!(
        stderr(&gone).contains("GROUP_ID_NOT_FOUND"),
        "{}",
        stderr(&gone)
    );
}

/// Sorted lines of `out`.
fn sorted_lines(out: &str) -> Vec<String> {
    let mut v: Vec<String> = out.lines().map(str::to_owned).collect();
    v.sort();
    v
}

#[test]
fn consume_as_a_group_resumes_where_the_group_stopped() {
    let spu = TestSpu::start();
    spu.ok(&["topic", "create", "events", "-p", "3"]);
    let first: String = (0..30).map(|i| format!("e{i:02}\n")).collect();
    spu.produce("events", &first, &[]);

    // Nothing committed, no -B: only new records, so nothing now.
    assert_eq!(spu.ok(&["consume", "events", "-G", "late", "-d"]), "");
    // -B: everything stored, once.
    let out = spu.ok(&["consume", "events", "-G", "readers", "-B", "-d"]);
    assert_eq!(sorted_lines(&out), sorted_lines(&first));
    // The group committed all it printed: lag 0 on every partition.
    let described = spu.ok(&["group", "describe", "readers"]);
    let lags: Vec<String> = rows(&described).into_iter().map(|r| r[4].clone()).collect();
    assert_eq!(lags, ["0", "0", "0"], "{described}");
    // Again: nothing new.
    assert_eq!(
        spu.ok(&["consume", "events", "-G", "readers", "-B", "-d"]),
        ""
    );
    // New records, read in two goes with -n: each once.
    let second: String = (30..40).map(|i| format!("e{i:02}\n")).collect();
    spu.produce("events", &second, &[]);
    let part1 = spu.ok(&["consume", "events", "-G", "readers", "-n", "4"]);
    assert_eq!(part1.lines().count(), 4, "{part1}");
    let part2 = spu.ok(&["consume", "events", "-G", "readers", "-d"]);
    let both = format!("{part1}{part2}");
    assert_eq!(sorted_lines(&both), sorted_lines(&second));
    // The `late` group exists with its start committed at the log end.
    let described = spu.ok(&["group", "describe", "late"]);
    assert!(
        described.starts_with("group late: Empty, 0 members"),
        "{described}"
    );
    // -G does not mix with per-partition positions.
    let refused = spu.rill(&["consume", "events", "-G", "g", "-p", "0"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("cannot be used with"),
        "{}",
        stderr(&refused)
    );
}
