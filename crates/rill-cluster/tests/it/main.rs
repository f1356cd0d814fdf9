//! The metadata store contract, held against every backend: memory, the
//! local file, and a real etcd (Debian's `etcd-server`, started on loopback
//! by the test and stopped by its pid).

mod controller;
mod etcd_server;
mod member;
mod membership;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use rill_cluster::{
    EtcdStore, Expect, FileStore, Guard, MemoryStore, MetadataStore, StoreError, WatchEvent,
};

/// Compare-and-swap: absent, at a revision, or anything; a failed
/// expectation changes nothing.
async fn cas<S: MetadataStore>(s: &S) {
    let r1 = s
        .put("/t/a", b"1".to_vec(), Expect::Absent, None)
        .await
        .unwrap();
    let e = s.get("/t/a").await.unwrap().unwrap();
    assert_eq!(
        (e.value.as_slice(), e.mod_revision, e.lease),
        (&b"1"[..], r1, None)
    );
    let again = s.put("/t/a", b"x".to_vec(), Expect::Absent, None).await;
    assert!(
        matches!(&again, Err(StoreError::Conflict { actual: Some(r), .. }) if *r == r1),
        "{again:?}"
    );
    let stale = s
        .put("/t/a", b"x".to_vec(), Expect::ModRevision(r1 - 1), None)
        .await;
    assert!(
        matches!(stale, Err(StoreError::Conflict { .. })),
        "{stale:?}"
    );
    assert_eq!(
        s.get("/t/a").await.unwrap().unwrap().value,
        b"1",
        "nothing changed"
    );
    let r2 = s
        .put("/t/a", b"2".to_vec(), Expect::ModRevision(r1), None)
        .await
        .unwrap();
    assert!(r2 > r1);
    let wrong = s.delete("/t/a", Expect::ModRevision(r1)).await;
    assert!(
        matches!(wrong, Err(StoreError::Conflict { .. })),
        "{wrong:?}"
    );
    let r3 = s.delete("/t/a", Expect::ModRevision(r2)).await.unwrap();
    assert!(r3 > r2);
    assert_eq!(s.get("/t/a").await.unwrap(), None);
    s.delete("/t/a", Expect::Any)
        .await
        .expect("deleting nothing is fine");
    let gone = s
        .put("/t/a", b"3".to_vec(), Expect::ModRevision(r2), None)
        .await;
    assert!(
        matches!(gone, Err(StoreError::Conflict { actual: None, .. })),
        "{gone:?}"
    );
}

/// Writers racing read-modify-write on one key: each increment lands once.
async fn racing_writers<S: MetadataStore + Clone>(s: &S) {
    s.put("/race/n", b"0".to_vec(), Expect::Absent, None)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0;
            for _ in 0..10 {
                loop {
                    let e = s.get("/race/n").await.unwrap().unwrap();
                    let n: u32 = String::from_utf8(e.value).unwrap().parse().unwrap();
                    let next = (n + 1).to_string().into_bytes();
                    match s
                        .put("/race/n", next, Expect::ModRevision(e.mod_revision), None)
                        .await
                    {
                        Ok(_) => break,
                        Err(StoreError::Conflict { .. }) => conflicts += 1,
                        Err(e) => panic!("{e}"),
                    }
                }
            }
            conflicts
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(s.get("/race/n").await.unwrap().unwrap().value, b"40");
}

/// Prefix listing, sorted, with the revision to watch from; a watch from
/// there sees every later change in order.
async fn list_and_watch<S: MetadataStore>(s: &S) {
    for k in ["/l/b", "/l/a", "/lz", "/l/c"] {
        s.put(k, k.as_bytes().to_vec(), Expect::Any, None)
            .await
            .unwrap();
    }
    let listing = s.list("/l/").await.unwrap();
    let keys: Vec<&str> = listing.entries.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["/l/a", "/l/b", "/l/c"]);
    let mut watch = s.watch("/l/", listing.revision).await.unwrap();
    let r1 = s
        .put("/l/d", b"d".to_vec(), Expect::Absent, None)
        .await
        .unwrap();
    s.put("/other", b"o".to_vec(), Expect::Any, None)
        .await
        .unwrap();
    let r2 = s.delete("/l/a", Expect::Any).await.unwrap();
    let first = next(&mut watch).await;
    assert!(
        matches!(&first, WatchEvent::Put(e) if e.key == "/l/d" && e.mod_revision == r1),
        "{first:?}"
    );
    let second = next(&mut watch).await;
    assert_eq!(
        second,
        WatchEvent::Delete {
            key: "/l/a".into(),
            mod_revision: r2
        }
    );
    // A watch from an earlier revision replays what came after it.
    let mut replay = s.watch("/l/d", listing.revision).await.unwrap();
    assert!(matches!(next(&mut replay).await, WatchEvent::Put(e) if e.key == "/l/d"));
}

async fn next(w: &mut rill_cluster::Watch) -> WatchEvent {
    tokio::time::timeout(Duration::from_secs(10), w.next())
        .await
        .expect("no watch event within 10 s")
        .expect("watch ended")
        .expect("watch failed")
}

/// Keys under a lease live while it is renewed and vanish, with a delete
/// event, when it expires or is revoked.
async fn leases<S: MetadataStore>(s: &S, ttl: Duration) {
    let listing = s.list("/members/").await.unwrap();
    let mut watch = s.watch("/members/", listing.revision).await.unwrap();
    let a = s.grant_lease(ttl).await.unwrap();
    let b = s.grant_lease(ttl).await.unwrap();
    s.put("/members/a", b"a".to_vec(), Expect::Absent, Some(a))
        .await
        .unwrap();
    s.put("/members/b", b"b".to_vec(), Expect::Absent, Some(b))
        .await
        .unwrap();
    assert_eq!(s.get("/members/a").await.unwrap().unwrap().lease, Some(a));
    let bad = s
        .put("/members/c", b"c".to_vec(), Expect::Any, Some(987_654_321))
        .await;
    assert!(matches!(bad, Err(StoreError::LeaseNotFound(_))), "{bad:?}");
    // a is renewed past its TTL; b is not.
    let until = tokio::time::Instant::now() + ttl * 2;
    while tokio::time::Instant::now() < until {
        s.keep_alive(a).await.unwrap();
        tokio::time::sleep(ttl / 4).await;
    }
    let mut seen = BTreeSet::new();
    loop {
        match next(&mut watch).await {
            WatchEvent::Delete { key, .. } => {
                assert_eq!(key, "/members/b", "only the lapsed lease's key goes");
                break;
            }
            WatchEvent::Put(e) => {
                seen.insert(e.key);
            }
        }
    }
    assert!(seen.contains("/members/a") && seen.contains("/members/b"));
    assert!(s.get("/members/b").await.unwrap().is_none());
    assert!(
        s.get("/members/a").await.unwrap().is_some(),
        "renewed: still there"
    );
    assert!(matches!(
        s.keep_alive(b).await,
        Err(StoreError::LeaseNotFound(_))
    ));
    s.revoke_lease(a).await.unwrap();
    assert!(
        s.get("/members/a").await.unwrap().is_none(),
        "revoked: gone"
    );
}

/// A guarded write happens only while another key is where it was (a
/// deposed controller's writes fail).
async fn guards<S: MetadataStore>(s: &S) {
    let lead = s
        .put("/g/controller", b"1".to_vec(), Expect::Absent, None)
        .await
        .unwrap();
    let guard = Guard {
        key: "/g/controller",
        mod_revision: lead,
    };
    s.put_guarded("/g/p0", b"a".to_vec(), Expect::Absent, None, Some(guard))
        .await
        .unwrap();
    s.put("/g/controller", b"2".to_vec(), Expect::Any, None)
        .await
        .unwrap();
    let deposed = s
        .put_guarded("/g/p0", b"b".to_vec(), Expect::Any, None, Some(guard))
        .await;
    assert!(
        matches!(&deposed, Err(StoreError::Conflict { key, .. }) if key == "/g/controller"),
        "{deposed:?}"
    );
    let deposed = s.delete_guarded("/g/p0", Expect::Any, Some(guard)).await;
    assert!(
        matches!(deposed, Err(StoreError::Conflict { .. })),
        "{deposed:?}"
    );
    assert_eq!(
        s.get("/g/p0").await.unwrap().unwrap().value,
        b"a",
        "untouched"
    );
}

async fn contract<S: MetadataStore + Clone>(s: S, ttl: Duration) {
    cas(&s).await;
    guards(&s).await;
    racing_writers(&s).await;
    list_and_watch(&s).await;
    leases(&s, ttl).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_store_keeps_the_contract() {
    contract(MemoryStore::new(), Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_store_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    contract(
        FileStore::open(dir.path()).unwrap(),
        Duration::from_millis(300),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_etcd_store_keeps_the_contract() {
    let etcd = etcd_server::EtcdServer::start();
    let store = EtcdStore::connect(&[etcd.url()]).await.unwrap();
    // etcd's TTLs are whole seconds (and at least its election timeout).
    contract(store, Duration::from_secs(2)).await;
}

#[tokio::test]
async fn an_unreachable_etcd_is_a_clear_error() {
    // Nothing listens there: a port just bound and released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = EtcdStore::connect(&[format!("http://127.0.0.1:{port}")])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
    assert!(err.to_string().contains(&port.to_string()), "{err}");
}

#[tokio::test]
async fn the_file_store_keeps_its_keys_and_revision_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (revision, kept) = {
        let s = FileStore::open(dir.path()).unwrap();
        s.put("/topics/a", b"3 partitions".to_vec(), Expect::Absent, None)
            .await
            .unwrap();
        s.put("/topics/b", b"1".to_vec(), Expect::Absent, None)
            .await
            .unwrap();
        s.delete("/topics/b", Expect::Any).await.unwrap();
        let lease = s.grant_lease(Duration::from_secs(60)).await.unwrap();
        let r = s
            .put("/spus/1", b"up".to_vec(), Expect::Absent, Some(lease))
            .await
            .unwrap();
        (r, s.get("/topics/a").await.unwrap().unwrap())
    };
    let s = FileStore::open(dir.path()).unwrap();
    assert_eq!(s.get("/topics/a").await.unwrap(), Some(kept));
    assert_eq!(s.get("/topics/b").await.unwrap(), None);
    assert_eq!(
        s.get("/spus/1").await.unwrap(),
        None,
        "a lease does not outlive its process"
    );
    let next = s
        .put("/topics/c", b"1".to_vec(), Expect::Absent, None)
        .await
        .unwrap();
    assert!(
        next > revision,
        "revisions never go back: {next} after {revision}"
    );
}

#[tokio::test]
async fn the_file_store_cuts_a_torn_tail_and_keeps_what_came_before() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = FileStore::open(dir.path()).unwrap();
        s.put("/k", b"v".to_vec(), Expect::Absent, None)
            .await
            .unwrap();
    }
    let log = dir.path().join("metadata.log");
    let mut bytes = std::fs::read(&log).unwrap();
    bytes.extend_from_slice(&[0, 0, 0, 40, 1, 2]); // a record cut short
    std::fs::write(&log, &bytes).unwrap();
    let s = FileStore::open(dir.path()).unwrap();
    assert_eq!(s.get("/k").await.unwrap().unwrap().value, b"v");
    s.put("/k2", b"w".to_vec(), Expect::Absent, None)
        .await
        .unwrap();
    drop(s);
    let s = FileStore::open(dir.path()).unwrap();
    assert!(
        s.get("/k2").await.unwrap().is_some(),
        "writes after the cut are readable"
    );
}

#[tokio::test(start_paused = true)]
async fn on_virtual_time_a_lapsed_member_vanishes_exactly_at_its_ttl() {
    let s = Arc::new(MemoryStore::new());
    let lease = s.grant_lease(Duration::from_millis(6000)).await.unwrap();
    s.put(
        "/spus/7",
        b"127.0.0.1:9092".to_vec(),
        Expect::Absent,
        Some(lease),
    )
    .await
    .unwrap();
    let mut watch = s
        .watch("/spus/", s.list("/spus/").await.unwrap().revision)
        .await
        .unwrap();
    tokio::time::advance(Duration::from_millis(5999)).await;
    assert!(
        s.get("/spus/7").await.unwrap().is_some(),
        "not before its TTL"
    );
    let started = tokio::time::Instant::now();
    let event = next(&mut watch).await;
    assert!(
        matches!(event, WatchEvent::Delete { ref key, .. } if key == "/spus/7"),
        "{event:?}"
    );
    assert!(
        started.elapsed() <= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_watcher_that_falls_behind_is_told_to_list_again() {
    let s = MemoryStore::new();
    let mut watch = s.watch("/q/", 0).await.unwrap();
    for i in 0..rill_cluster::WATCH_QUEUE_EVENTS + 10 {
        s.put(&format!("/q/{i}"), vec![], Expect::Any, None)
            .await
            .unwrap();
    }
    let mut lost = false;
    while let Some(event) = watch.next().await {
        if let Err(StoreError::WatchLost(_)) = event {
            lost = true;
            break;
        }
    }
    assert!(
        lost,
        "the watch says it was lost, never silently drops events"
    );
}
