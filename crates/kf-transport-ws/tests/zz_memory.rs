mod common;
use std::io::{BufRead, Write};
fn rss() -> i64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap();
    s.split_whitespace().nth(1).unwrap().parse::<i64>().unwrap() * 4096
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measure() {
    use common::*;
    let engine = engine(kf_core::protocol::Limits::default()).await;
    let addr = start(&engine, kf_transport_ws::WsConfig::default()).await;
    for n in [200i64, 2000] {
        let tok = token(&visitor(&format!("v-{n}")));
        let port = addr.port();
        let (before, after) = tokio::task::spawn_blocking(move || {
            let before = rss();
            let mut child = std::process::Command::new("python3").arg("/tmp/wsmem/clients.py").arg(port.to_string()).arg(n.to_string()).arg(tok)
                .stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
            let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(300));
            let after = rss();
            child.stdin.take().unwrap().write_all(b"\n").unwrap();
            let _ = child.wait();
            (before, after)
        }).await.unwrap();
        eprintln!("MEM n={n} per connection: {} bytes", (after - before) / n);
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}
