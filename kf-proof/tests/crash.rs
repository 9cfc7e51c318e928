//! The crash suite's short profile (`docs/proof.md`): the server as a separate process, killed with SIGKILL three
//! times under load and restarted on the same data directory; every acknowledged message must be in the store
//! (read back through its API after the final kill), logs gapless, each message applied exactly once in order.

use std::path::Path;

use kf_proof::crash::{CrashProfile, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_kill_9() {
    let profile = CrashProfile::short();
    let report = run(&profile, Path::new(env!("CARGO_BIN_EXE_kf-proof")))
        .await
        .expect("the suite runs");
    println!("{report}");
    assert!(report.is_clean(), "{report}");
    let expected = profile.workload.total_messages();
    assert_eq!(report.verdict.acked, expected, "{report}");
    assert_eq!(report.verdict.delivered, expected, "{report}");
    assert_eq!(report.kills, profile.kills as u64 + 1, "{report}");
}
