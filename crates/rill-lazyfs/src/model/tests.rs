use super::*;

fn name(s: &str) -> &OsStr {
    OsStr::new(s)
}

fn content(m: &Model, ino: u64) -> Vec<u8> {
    m.read(ino, 0, usize::MAX).unwrap().to_vec()
}

/// A file created, written and fsynced, in a directory that is fsynced.
fn durable_file(m: &mut Model, dir: u64, n: &str, bytes: &[u8]) -> u64 {
    let ino = m.create(dir, name(n)).unwrap();
    m.write(ino, 0, bytes).unwrap();
    m.fsync(ino).unwrap();
    m.fsync(dir).unwrap();
    ino
}

#[test]
fn a_cut_keeps_fsynced_bytes_and_drops_the_rest() {
    let mut m = Model::new();
    let ino = durable_file(&mut m, ROOT, "log", b"hello ");
    m.write(ino, 6, b"world").unwrap();
    assert_eq!(content(&m, ino), b"hello world");
    let report = m.cut(None);
    assert_eq!(content(&m, ino), b"hello ");
    assert_eq!(report.bytes_dropped, 5);
    assert_eq!(report.nodes_dropped, 0);
}

#[test]
fn an_overwrite_in_place_without_fsync_is_undone() {
    let mut m = Model::new();
    let ino = durable_file(&mut m, ROOT, "meta", b"epoch 1\n");
    m.set_len(ino, 0).unwrap();
    m.write(ino, 0, b"epoch 2\n").unwrap();
    m.cut(None);
    assert_eq!(content(&m, ino), b"epoch 1\n");
}

#[test]
fn a_truncation_is_durable_only_after_fsync() {
    let mut m = Model::new();
    let ino = durable_file(&mut m, ROOT, "seg", b"0123456789");
    m.set_len(ino, 4).unwrap();
    m.cut(None);
    assert_eq!(content(&m, ino), b"0123456789");
    m.set_len(ino, 4).unwrap();
    m.fsync(ino).unwrap();
    m.cut(None);
    assert_eq!(content(&m, ino), b"0123");
}

#[test]
fn a_new_file_needs_a_directory_fsync_even_when_its_data_is_fsynced() {
    let mut m = Model::new();
    let ino = m.create(ROOT, name("new")).unwrap();
    m.write(ino, 0, b"data").unwrap();
    m.fsync(ino).unwrap();
    let report = m.cut(None);
    assert_eq!(m.lookup(ROOT, name("new")), Err(ENOENT));
    assert_eq!(report.nodes_dropped, 1);
}

#[test]
fn a_directory_fsync_without_a_file_fsync_keeps_an_empty_file() {
    let mut m = Model::new();
    let ino = m.create(ROOT, name("new")).unwrap();
    m.write(ino, 0, b"data").unwrap();
    m.fsync(ROOT).unwrap();
    m.cut(None);
    let ino = m.lookup(ROOT, name("new")).unwrap();
    assert_eq!(content(&m, ino), b"");
}

#[test]
fn an_unsynced_rename_leaves_the_old_names() {
    let mut m = Model::new();
    durable_file(&mut m, ROOT, "meta", b"old");
    let tmp = m.create(ROOT, name("meta.tmp")).unwrap();
    m.write(tmp, 0, b"new").unwrap();
    m.fsync(tmp).unwrap();
    m.rename(ROOT, name("meta.tmp"), ROOT, name("meta"))
        .unwrap();
    m.cut(None);
    let ino = m.lookup(ROOT, name("meta")).unwrap();
    assert_eq!(content(&m, ino), b"old");
    assert_eq!(m.lookup(ROOT, name("meta.tmp")), Err(ENOENT));

    // Write, fsync, rename, fsync the directory: the new content stays.
    let tmp = m.create(ROOT, name("meta.tmp")).unwrap();
    m.write(tmp, 0, b"new").unwrap();
    m.fsync(tmp).unwrap();
    m.rename(ROOT, name("meta.tmp"), ROOT, name("meta"))
        .unwrap();
    m.fsync(ROOT).unwrap();
    m.cut(None);
    let ino = m.lookup(ROOT, name("meta")).unwrap();
    assert_eq!(content(&m, ino), b"new");
}

#[test]
fn an_unsynced_unlink_comes_back() {
    let mut m = Model::new();
    let ino = durable_file(&mut m, ROOT, "old-segment", b"records");
    m.unlink(ROOT, name("old-segment")).unwrap();
    assert_eq!(m.lookup(ROOT, name("old-segment")), Err(ENOENT));
    m.cut(None);
    assert_eq!(m.lookup(ROOT, name("old-segment")), Ok(ino));
    assert_eq!(content(&m, ino), b"records");
}

#[test]
fn a_new_directory_and_everything_in_it_need_the_parent_fsynced() {
    let mut m = Model::new();
    let dir = m.mkdir(ROOT, name("topic-0")).unwrap();
    durable_file(&mut m, dir, "00.log", b"x");
    let report = m.cut(None);
    assert_eq!(m.lookup(ROOT, name("topic-0")), Err(ENOENT));
    assert_eq!(report.nodes_dropped, 2);

    let dir = m.mkdir(ROOT, name("topic-0")).unwrap();
    m.fsync(ROOT).unwrap();
    durable_file(&mut m, dir, "00.log", b"x");
    m.cut(None);
    let dir = m.lookup(ROOT, name("topic-0")).unwrap();
    let log = m.lookup(dir, name("00.log")).unwrap();
    assert_eq!(content(&m, log), b"x");
}

#[test]
fn a_torn_cut_keeps_a_prefix_of_the_pending_writes() {
    // Over many seeds: the survivor is always the durable bytes followed
    // by a prefix of what was appended, and some cuts tear a write in the
    // middle.
    let appended: Vec<u8> = (0..3 * 4096u32).map(|i| (i % 251) as u8).collect();
    let mut torn_mid_write = 0;
    let mut lengths = HashSet::new();
    for seed in 0..200 {
        let mut m = Model::new();
        let ino = durable_file(&mut m, ROOT, "log", b"head");
        for chunk in appended.chunks(4096) {
            let end = m.attr(ino).unwrap().1;
            m.write(ino, end, chunk).unwrap();
        }
        let report = m.cut(Some(seed));
        let survived = content(&m, ino);
        assert_eq!(&survived[..4], b"head");
        let tail = &survived[4..];
        assert_eq!(tail, &appended[..tail.len()], "seed {seed}");
        assert_eq!(report.bytes_torn_kept, tail.len() as u64);
        assert_eq!(
            report.bytes_dropped + report.bytes_torn_kept,
            appended.len() as u64
        );
        if !tail.len().is_multiple_of(4096) {
            torn_mid_write += 1;
        }
        lengths.insert(tail.len());
    }
    assert!(torn_mid_write > 100, "only {torn_mid_write} torn writes");
    assert!(
        lengths.len() > 50,
        "only {} different lengths",
        lengths.len()
    );
}

#[test]
fn a_file_never_fsynced_is_written_back_past_its_pending_limit() {
    let mut m = Model::new();
    let ino = durable_file(&mut m, ROOT, "big", b"");
    let chunk = vec![7u8; 1 << 20];
    let chunks = MAX_PENDING_BYTES_PER_FILE / chunk.len() + 3;
    for i in 0..chunks {
        m.write(ino, (i * chunk.len()) as u64, &chunk).unwrap();
    }
    let report = m.cut(None);
    assert_eq!(report.bytes_dropped as usize, MAX_PENDING_BYTES_PER_FILE);
    assert_eq!(
        m.attr(ino).unwrap().1 as usize,
        chunks * chunk.len() - MAX_PENDING_BYTES_PER_FILE
    );
}

#[test]
fn names_follow_posix_rules() {
    let mut m = Model::new();
    let d = m.mkdir(ROOT, name("d")).unwrap();
    m.create(d, name("f")).unwrap();
    assert_eq!(m.create(d, name("f")), Err(EEXIST));
    assert_eq!(m.rmdir(ROOT, name("d")), Err(ENOTEMPTY));
    assert_eq!(m.unlink(ROOT, name("d")), Err(EISDIR));
    assert_eq!(m.rename(ROOT, name("d"), d, name("e")), Err(EINVAL));
    m.unlink(d, name("f")).unwrap();
    m.rmdir(ROOT, name("d")).unwrap();
    assert!(m.entries(ROOT).unwrap().is_empty());
}
