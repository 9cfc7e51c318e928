//! The server children of the load scenarios (`serve-kf`, `serve-baseline`): starting one (optionally under
//! callgrind), reading its CPU time and memory from `/proc`, and stopping it cleanly (its stdin is closed; it
//! shuts down, commits and exits by itself, so callgrind writes its output).

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::{TcpListener, TcpSocket};
use tokio::process::{Child, ChildStdin, Command};
use tokio::time::timeout;

use crate::sys::{ProcMemory, proc_memory};

/// The environment variable that hands the token signing key (hex) to the kf child.
pub const KEY_VAR: &str = "KF_BENCH_LOAD_KEY";
/// The listen backlog of both children (the kernel caps it at `net.core.somaxconn`).
const BACKLOG: u32 = 4096;

/// Which server a child runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// `serve-kf`: kf's engine, SQLite store and WebSocket transport.
    Kf,
    /// `serve-baseline`: tokio-tungstenite relay with one SQLite group-commit writer thread.
    Baseline,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Kf => "kf",
            Target::Baseline => "baseline",
        }
    }

    fn subcommand(self) -> &'static str {
        match self {
            Target::Kf => "serve-kf",
            Target::Baseline => "serve-baseline",
        }
    }
}

/// How to start a child.
#[derive(Clone, Debug)]
pub struct ChildSpec {
    pub target: Target,
    /// The SQLite file (its directory must exist).
    pub db: PathBuf,
    pub agents: usize,
    /// The signing key, hex (kf only).
    pub key_hex: String,
    /// Run under `valgrind --tool=callgrind`, writing its output to this file.
    pub callgrind_out: Option<PathBuf>,
}

/// A running server child.
#[derive(Debug)]
pub struct ServerChild {
    child: Child,
    stdin: Option<ChildStdin>,
    pub pid: u32,
    pub addr: SocketAddr,
}

impl ServerChild {
    pub async fn spawn(spec: &ChildSpec) -> Result<ServerChild> {
        let exe = std::env::current_exe().context("cannot find the benchmark's own executable")?;
        let mut command = match &spec.callgrind_out {
            Some(out) => {
                let mut command = Command::new("valgrind");
                command
                    .arg("--tool=callgrind")
                    .arg(format!("--callgrind-out-file={}", out.display()))
                    .arg(exe);
                command
            }
            None => Command::new(exe),
        };
        command
            .arg(spec.target.subcommand())
            .arg("--addr")
            .arg("127.0.0.1:0")
            .arg("--db")
            .arg(&spec.db)
            .arg("--agents")
            .arg(spec.agents.to_string())
            .env(KEY_VAR, &spec.key_hex)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(if spec.callgrind_out.is_some() {
                Stdio::null()
            } else {
                Stdio::inherit()
            })
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start the {} child", spec.target.name()))?;
        let pid = child.id().context("the child has no pid")?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("the child's stdout is not piped")?;
        let mut lines = BufReader::new(stdout).lines();
        let start = if spec.callgrind_out.is_some() { 600 } else { 120 };
        let line = timeout(Duration::from_secs(start), lines.next_line())
            .await
            .context("the server child did not report ready in time")?
            .context("cannot read the server child's output")?
            .context("the server child exited before it was ready")?;
        let port: u16 = line
            .strip_prefix("ready port=")
            .and_then(|rest| rest.split_whitespace().next())
            .with_context(|| format!("unexpected ready line {line:?}"))?
            .parse()
            .with_context(|| format!("bad port in {line:?}"))?;
        // Keep reading (and dropping) the child's stdout so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(ServerChild {
            child,
            stdin,
            pid,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        })
    }

    /// User plus system CPU time of the child so far, in clock ticks.
    pub fn cpu_ticks(&self) -> Result<u64> {
        proc_cpu_ticks(self.pid)
    }

    pub fn memory(&self) -> Result<ProcMemory> {
        proc_memory(self.pid)
    }

    /// Closes the child's stdin and waits for it to exit by itself (killing it after `patience`).
    pub async fn stop(mut self, patience: Duration) -> Result<()> {
        drop(self.stdin.take());
        match timeout(patience, self.child.wait()).await {
            Ok(status) => {
                let status = status.context("cannot wait for the server child")?;
                ensure!(status.success(), "the server child exited with {status}");
                Ok(())
            }
            Err(_) => {
                self.child.kill().await.ok();
                anyhow::bail!("the server child did not exit within {patience:?}; killed")
            }
        }
    }
}

/// User plus system CPU time of a process, in clock ticks (`/proc/<pid>/stat` fields 14 and 15).
pub fn proc_cpu_ticks(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let stat = fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    parse_cpu_ticks(&stat).with_context(|| format!("cannot parse {path}"))
}

fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may contain spaces: count fields after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')' come field 3 (state) onwards: utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 when that cannot be run).
pub fn ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100)
}

/// A loopback listener with a backlog of [`BACKLOG`].
pub fn listen(addr: SocketAddr) -> Result<TcpListener> {
    ensure!(
        addr.ip().is_loopback(),
        "the benchmark servers listen on loopback only, not {addr}"
    );
    let socket = TcpSocket::new_v4().context("cannot create a socket")?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr).with_context(|| format!("cannot bind {addr}"))?;
    socket
        .listen(BACKLOG)
        .with_context(|| format!("cannot listen on {addr}"))
}

/// Resolves when the parent closes this child's stdin (or dies).
pub async fn parent_gone() {
    let mut stdin = tokio::io::stdin();
    let mut sink = [0_u8; 64];
    while let Ok(n) = stdin.read(&mut sink).await {
        if n == 0 {
            break;
        }
    }
}

/// A fresh directory for one run's database, under `dir`.
pub fn run_dir(dir: &Path, label: &str) -> Result<PathBuf> {
    let path = dir.join(format!("load-{}-{label}", std::process::id()));
    if path.exists() {
        fs::remove_dir_all(&path).with_context(|| format!("cannot clear {}", path.display()))?;
    }
    fs::create_dir_all(&path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_ticks_past_a_command_with_spaces() {
        let stat = "1234 (kf bench) S 1 1234 1234 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse_cpu_ticks(stat), Some(300));
        assert_eq!(parse_cpu_ticks("garbage"), None);
    }
}
