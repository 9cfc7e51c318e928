//! The fault-injection suite's short profile (`docs/proof.md`): 20 conversations × 30 messages each way over
//! WebSocket and SSE, through a proxy that cuts, blackholes, delays and slices connections; nothing acknowledged
//! may be lost, nothing shown twice, order must hold.

use kf_proof::fault::{FaultProfile, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contract_holds_through_cuts_blackholes_delays_and_slicing() {
    let profile = FaultProfile::short();
    let report = run(&profile).await.expect("the suite runs");
    println!("{report}");
    assert!(report.is_clean(), "{report}");
    let expected = profile.workload.total_messages();
    assert_eq!(report.verdict.sent, expected, "{report}");
    assert_eq!(report.verdict.acked, expected, "{report}");
    assert_eq!(report.verdict.delivered, expected, "{report}");
    // Every fault kind was injected.
    let faults = report.faults;
    assert!(
        faults.cuts > 0 && faults.blackholes > 0 && faults.delayed > 0 && faults.sliced > 0,
        "{report}"
    );
    // And the clients had to live through them.
    assert!(
        report.clients.dead > 0,
        "a blackhole was detected by the liveness rule: {report}"
    );
    assert!(report.clients.sessions > (profile.workload.conversations + profile.workload.agents) as u64);
}
