//! The file system mounted for real: programs' writes, fsyncs and renames
//! through the kernel, then a cut.

use std::fs::{self, File, OpenOptions};
use std::io::Write;

use rill_lazyfs::mount::{unavailable, Mount};

fn mount() -> Option<(tempfile::TempDir, Mount)> {
    if let Some(why) = unavailable() {
        println!("SKIPPED: {why}");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let mount = Mount::new(dir.path()).unwrap();
    Some((dir, mount))
}

#[test]
fn a_cut_through_the_kernel_keeps_only_what_was_fsynced() {
    let Some((_dir, m)) = mount() else { return };
    let root = m.path();
    // Durable: written, fsynced, its name fsynced in the directory.
    let mut log = File::create(root.join("log")).unwrap();
    log.write_all(b"acknowledged").unwrap();
    log.sync_data().unwrap();
    File::open(root).unwrap().sync_all().unwrap();
    // Not durable: an append without fsync, a file whose name was never
    // fsynced, an in-place rewrite, a rename without a directory fsync.
    log.write_all(b" unsynced").unwrap();
    fs::create_dir(root.join("topic-0")).unwrap();
    fs::write(root.join("topic-0/00.log"), b"records").unwrap();
    let mut meta = File::create(root.join("meta.tmp")).unwrap();
    meta.write_all(b"new").unwrap();
    meta.sync_all().unwrap();
    fs::rename(root.join("meta.tmp"), root.join("meta")).unwrap();
    assert_eq!(
        fs::read(root.join("log")).unwrap(),
        b"acknowledged unsynced"
    );

    m.cut(None).unwrap();
    drop(log);
    assert_eq!(fs::read(root.join("log")).unwrap(), b"acknowledged");
    assert!(!root.join("topic-0").exists());
    assert!(!root.join("meta").exists());
    assert!(!root.join("meta.tmp").exists());
}

#[test]
fn after_a_cut_the_file_system_keeps_serving() {
    let Some((_dir, m)) = mount() else { return };
    let root = m.path();
    fs::create_dir(root.join("d")).unwrap();
    File::open(root).unwrap().sync_all().unwrap();
    m.cut(Some(1)).unwrap();
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(root.join("d/f"))
        .unwrap();
    f.write_all(b"after").unwrap();
    f.sync_all().unwrap();
    File::open(root.join("d")).unwrap().sync_all().unwrap();
    m.cut(Some(2)).unwrap();
    assert_eq!(fs::read(root.join("d/f")).unwrap(), b"after");
    let names: Vec<_> = fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["d"]);
}
