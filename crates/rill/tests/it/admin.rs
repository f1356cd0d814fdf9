use rill::{Rill, RillError};

use crate::spu::TestSpu;

#[tokio::test]
async fn create_list_delete_topics() {
    let spu = TestSpu::start().await;
    let rill = Rill::connect_to(&spu.addr()).await.unwrap();
    let admin = rill.admin();
    admin
        .create_topic("orders", 3, 1, &[("retention.ms", "60000")])
        .await
        .unwrap();
    admin.create_topic("audit", 1, 1, &[]).await.unwrap();
    let err = admin.create_topic("orders", 1, 1, &[]).await.unwrap_err();
    assert!(matches!(err, RillError::Broker { code: 36, .. }), "{err}");
    let err = admin.create_topic("bad name", 1, 1, &[]).await.unwrap_err();
    assert!(err.to_string().contains("INVALID_TOPIC_EXCEPTION"), "{err}");
    let names: Vec<(String, u32)> = admin
        .list_topics()
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.name, t.partitions))
        .collect();
    assert_eq!(names, vec![("audit".into(), 1), ("orders".into(), 3)]);
    admin.delete_topic("audit").await.unwrap();
    assert_eq!(admin.list_topics().await.unwrap().len(), 1);
    assert!(admin.delete_topic("audit").await.is_err());
    spu.stop().await;
}

#[tokio::test]
async fn no_spu_is_a_clear_error() {
    // A port that was free a moment ago.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = Rill::connect_to(&format!("127.0.0.1:{port}"))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("no SPU answers at 127.0.0.1:") && msg.contains("rill cluster start"),
        "{msg}"
    );
}

#[tokio::test]
async fn describe_a_topic() {
    let spu = TestSpu::start().await;
    let rill = Rill::connect_to(&spu.addr()).await.unwrap();
    let admin = rill.admin();
    admin
        .create_topic("described", 2, 1, &[("retention.ms", "3600000")])
        .await
        .unwrap();
    let d = admin.describe_topic("described").await.unwrap();
    assert_eq!((d.name.as_str(), d.partitions), ("described", 2));
    let get = |k: &str| {
        d.configs
            .iter()
            .find(|(name, _, _)| name == k)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        get("retention.ms"),
        ("retention.ms".into(), "3600000".into(), true)
    );
    assert!(!get("segment.bytes").2, "a default");
    assert!(matches!(
        admin.describe_topic("nope").await,
        Err(RillError::TopicNotFound(_))
    ));
    spu.stop().await;
}
