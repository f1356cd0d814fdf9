//! Membership and the controller election, on virtual time with the memory
//! store and for real with etcd.

use std::time::Duration;

use rill_cluster::{
    campaign, controller, live_spus, EtcdStore, MembershipError, MemoryStore, MetadataStore,
    Session,
};

use crate::etcd_server::EtcdServer;

const TIMEOUT: Duration = Duration::from_millis(6000);

/// Three SPUs join and campaign: one controller; when it dies without a
/// word, its registration and the controller key lapse with its session
/// and exactly one of the others takes over.
async fn failover<S: MetadataStore + Clone>(store: S, timeout: Duration) {
    let mut sessions = Vec::new();
    for id in 0..3u32 {
        sessions.push(
            Session::join(&store, id, &format!("127.0.0.1:{}", 9092 + id), timeout)
                .await
                .unwrap(),
        );
    }
    let spus = live_spus(&store).await.unwrap();
    assert_eq!(
        spus.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    assert_eq!(spus[1].1, "127.0.0.1:9093");
    assert!(matches!(
        Session::join(&store, 1, "elsewhere", timeout).await,
        Err(MembershipError::DuplicateId(1))
    ));

    let first = campaign(&store, &sessions[0]).await.unwrap();
    assert_eq!(controller(&store).await.unwrap(), Some(0));
    // The others wait in their campaigns while 0 holds it.
    let mut waiting = Vec::new();
    for s in sessions.drain(1..) {
        let store = store.clone();
        waiting.push(tokio::spawn(async move {
            let won = campaign(&store, &s).await.unwrap();
            (s, won)
        }));
    }
    tokio::time::sleep(timeout / 2).await;
    assert!(
        waiting.iter().all(|t| !t.is_finished()),
        "nobody else while 0 leads"
    );

    // SPU 0 dies: no leave, its renewals just stop.
    drop(sessions.pop());
    let (a, b) = waiting.split_at_mut(1);
    let (winner, won) = tokio::select! {
        r = &mut a[0] => r.unwrap(),
        r = &mut b[0] => r.unwrap(),
    };
    assert!(won.revision > first.revision);
    assert_eq!(controller(&store).await.unwrap(), Some(winner.id()));
    let live: Vec<u32> = live_spus(&store)
        .await
        .unwrap()
        .iter()
        .map(|(id, _)| *id)
        .collect();
    assert!(
        !live.contains(&0),
        "the dead SPU's registration lapsed: {live:?}"
    );
    assert_eq!(live.len(), 2);
    tokio::time::sleep(timeout / 2).await;
    let still_waiting = waiting.iter().filter(|t| !t.is_finished()).count();
    assert_eq!(still_waiting, 1, "one controller at a time");
    // A clean leave hands over at once.
    winner.leave(&store).await.unwrap();
    for t in waiting {
        if !t.is_finished() {
            let (last, _) = tokio::time::timeout(timeout, t)
                .await
                .expect("took over")
                .unwrap();
            assert_eq!(controller(&store).await.unwrap(), Some(last.id()));
        }
    }
}

#[tokio::test(start_paused = true)]
async fn on_virtual_time_the_controller_fails_over_to_exactly_one_spu() {
    failover(MemoryStore::new(), TIMEOUT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_etcd_the_controller_fails_over_to_exactly_one_spu() {
    let etcd = EtcdServer::start();
    let store = EtcdStore::connect(&[etcd.url()]).await.unwrap();
    failover(store, Duration::from_secs(2)).await;
}

#[tokio::test(start_paused = true)]
async fn a_session_cut_off_from_the_store_knows_it_is_lost() {
    let store = MemoryStore::new();
    let session = Session::join(&store, 5, "127.0.0.1:1", TIMEOUT)
        .await
        .unwrap();
    // Someone (an operator, or etcd after a partition) ends the lease.
    store.revoke_lease(session.lease()).await.unwrap();
    tokio::time::timeout(TIMEOUT, session.lost())
        .await
        .expect("noticed within a timeout");
    assert!(session.is_lost());
    assert!(live_spus(&store).await.unwrap().is_empty());
}
