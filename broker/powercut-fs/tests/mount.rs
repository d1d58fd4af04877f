//! The filesystem mounted for real, driven through `std::fs` as a program
//! would: fsynced data and directory entries survive a cut, the rest does
//! not.

use powercut_fs::{Cut, PowerCutFs};
use std::fs::{self, File, OpenOptions};
use std::io::Write;

fn fsync_dir(path: &std::path::Path) {
    File::open(path).unwrap().sync_all().unwrap();
}

#[test]
fn a_power_cut_keeps_exactly_what_was_synced() {
    let dir = tempfile::tempdir().unwrap();
    let mut fs = PowerCutFs::mount(dir.path()).unwrap();
    let root = fs.mountpoint().to_owned();

    fs::create_dir(root.join("d")).unwrap();
    fsync_dir(&root);
    let mut synced = File::create(root.join("d/synced")).unwrap();
    synced.write_all(b"durable").unwrap();
    synced.sync_data().unwrap();
    synced.write_all(b" and not").unwrap();
    fsync_dir(&root.join("d"));
    drop(synced);
    fs::write(root.join("d/never-synced"), b"lost").unwrap();
    let mut appended = OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join("unsynced-entry"))
        .unwrap();
    appended.write_all(b"x").unwrap();
    appended.sync_all().unwrap();
    drop(appended);
    assert_eq!(fs::read(root.join("d/synced")).unwrap(), b"durable and not");
    assert!(fs.unsynced_bytes() > 0);

    let report = fs.power_cut(Cut::LoseUnsynced).unwrap();

    assert_eq!(fs::read(root.join("d/synced")).unwrap(), b"durable");
    assert!(!root.join("d/never-synced").exists());
    assert!(
        !root.join("unsynced-entry").exists(),
        "its directory was not synced"
    );
    assert_eq!(report.bytes_lost, " and not".len() as u64);
    assert_eq!(report.entries_lost, ["/d/never-synced", "/unsynced-entry"]);
    assert_eq!(fs.unsynced_bytes(), 0);
}

#[test]
fn an_atomic_replace_survives_and_an_unsynced_truncation_is_undone() {
    let dir = tempfile::tempdir().unwrap();
    let mut fs = PowerCutFs::mount(dir.path()).unwrap();
    let root = fs.mountpoint().to_owned();

    let mut file = File::create(root.join("state")).unwrap();
    file.write_all(b"version 1").unwrap();
    file.sync_all().unwrap();
    fsync_dir(&root);
    let mut tmp = File::create(root.join("state.tmp")).unwrap();
    tmp.write_all(b"version 2").unwrap();
    tmp.sync_all().unwrap();
    fs::rename(root.join("state.tmp"), root.join("state")).unwrap();
    fsync_dir(&root);
    drop((file, tmp));
    let replaced = OpenOptions::new()
        .write(true)
        .open(root.join("state"))
        .unwrap();
    replaced.set_len(3).unwrap();
    assert_eq!(fs::read(root.join("state")).unwrap(), b"ver");
    drop(replaced);

    fs.power_cut(Cut::LoseUnsynced).unwrap();
    assert_eq!(fs::read(root.join("state")).unwrap(), b"version 2");
    assert!(!root.join("state.tmp").exists());
    let names: Vec<_> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["state"]);
}
