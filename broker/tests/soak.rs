//! The short slice of the soak (`make soak` runs an hour, results in
//! docs/soak.md): `iggy-soak` for 30 s against a broker with retention
//! every second — producers at a steady rate, a consumer group whose
//! members leave and join every 2 s, clients coming and going — and the
//! broker's open files must not grow, nor any request fail.

mod common;

use common::TestBroker;
use std::process::Command;

#[test]
fn a_short_soak_leaks_no_files_and_fails_no_request() {
    let broker = TestBroker::start_with(&[
        ("IGGY_RETENTION_INTERVAL", "1s"),
        ("IGGY_TOPIC_SEGMENT_SIZE", "1 MiB"),
    ]);
    let output = Command::new(env!("CARGO_BIN_EXE_iggy-soak"))
        .args(["--address", &broker.address.to_string()])
        .args(["--pid", &broker.pid().to_string()])
        .args(["--seconds", "30", "--sample-seconds", "3"])
        .args(["--churn-seconds", "2", "--expiry-seconds", "10"])
        .output()
        .expect("run iggy-soak");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "iggy-soak failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("no growth in open files"), "{stdout}");
}
