//! What the benchmarks read off the machine and the kernel, and the statistics they report.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The median of some values (the mean of the middle two for an even count). `NaN` when empty.
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

/// The `p`-th percentile (0..=100) of sorted values, nearest rank. Zero when empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Milliseconds with two decimals, for latency columns.
pub fn ms(duration: Duration) -> String {
    format!("{:.2}", duration.as_secs_f64() * 1000.0)
}

/// A number with thousands separators.
pub fn thousands(value: f64) -> String {
    let rounded = value.round() as i128;
    let digits = rounded.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if rounded < 0 { format!("-{out}") } else { out }
}

/// The memory of a process as `/proc/<pid>/status` reports it, in KiB.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcMemory {
    /// `VmRSS`: resident set size.
    pub rss_kib: u64,
    /// `RssAnon`: resident anonymous memory (heap, stacks), without file-backed pages.
    pub anon_kib: u64,
}

/// Reads `VmRSS` and `RssAnon` of a process.
pub fn proc_memory(pid: u32) -> Result<ProcMemory> {
    let path = format!("/proc/{pid}/status");
    let status = fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let field = |name: &str| -> Result<u64> {
        let line = status
            .lines()
            .find(|line| line.starts_with(name))
            .with_context(|| format!("{path} has no {name} line"))?;
        let value = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse::<u64>()
            .with_context(|| format!("cannot parse {name} in {path}: {line:?}"))?;
        Ok(value)
    };
    Ok(ProcMemory {
        rss_kib: field("VmRSS:")?,
        anon_kib: field("RssAnon:")?,
    })
}

/// Pages of memory the kernel's TCP stack holds for all sockets of the machine (`/proc/net/sockstat`, "TCP:
/// ... mem N"). Not part of any process's RSS.
pub fn tcp_kernel_pages() -> Option<u64> {
    let sockstat = fs::read_to_string("/proc/net/sockstat").ok()?;
    let line = sockstat.lines().find(|line| line.starts_with("TCP:"))?;
    let mut words = line.split_whitespace();
    while let Some(word) = words.next() {
        if word == "mem" {
            return words.next()?.parse().ok();
        }
    }
    None
}

/// The limit on open files of this process (soft), from `/proc/self/limits`.
pub fn open_files_limit() -> Option<u64> {
    let limits = fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|line| line.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The machine the figures come from.
#[derive(Debug)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub load: String,
}

impl Machine {
    pub fn read() -> Machine {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let cpu_model = fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|line| line.starts_with("model name"))
                    .and_then(|line| line.split_once(':'))
                    .map(|(_, model)| model.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".into());
        let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|release| release.trim().to_owned())
            .unwrap_or_else(|_| "unknown".into());
        Machine {
            cpus,
            cpu_model,
            kernel,
            load: load_average(),
        }
    }

    pub fn print(&self) {
        println!(
            "machine: {} CPUs ({}), Linux {}, load average {}",
            self.cpus, self.cpu_model, self.kernel, self.load
        );
    }
}

/// The 1, 5 and 15 minute load averages.
pub fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|load| load.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// The file system a directory lives on.
#[derive(Debug)]
pub struct FileSystem {
    pub device: String,
    pub mount_point: String,
    pub fs_type: String,
    /// From `/sys/block/<dev>/queue/rotational`, when the device is a whole disk found there.
    pub rotational: Option<bool>,
}

impl FileSystem {
    /// Finds the mount holding `dir` (the longest mount point that is a prefix of its canonical path).
    pub fn of(dir: &Path) -> Result<FileSystem> {
        let dir = dir
            .canonicalize()
            .with_context(|| format!("cannot resolve {}", dir.display()))?;
        let mounts = fs::read_to_string("/proc/mounts").context("cannot read /proc/mounts")?;
        let mut best: Option<(usize, FileSystem)> = None;
        for line in mounts.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [device, mount_point, fs_type, ..] = fields[..] else {
                continue;
            };
            let mount_point = mount_point.replace("\\040", " ");
            if !dir.starts_with(&mount_point) {
                continue;
            }
            let len = mount_point.len();
            if best.as_ref().is_some_and(|(best_len, _)| *best_len > len) {
                continue;
            }
            let rotational = device
                .strip_prefix("/dev/")
                .and_then(|name| fs::read_to_string(format!("/sys/block/{name}/queue/rotational")).ok())
                .map(|flag| flag.trim() == "1");
            best = Some((
                len,
                FileSystem {
                    device: device.to_owned(),
                    mount_point,
                    fs_type: fs_type.to_owned(),
                    rotational,
                },
            ));
        }
        match best {
            Some((_, fs)) => Ok(fs),
            None => bail!("no mount found for {}", dir.display()),
        }
    }

    pub fn describe(&self) -> String {
        let kind = match self.rotational {
            Some(true) => "rotational",
            Some(false) => "non-rotational",
            None => "unknown kind",
        };
        format!(
            "{} on {} ({}, {kind} device)",
            self.fs_type, self.mount_point, self.device
        )
    }
}

/// The median time of `rounds` 4 KiB appends each followed by `fdatasync`, in a scratch file in `dir`: what
/// one durable commit costs at least on this disk.
pub fn fsync_latency(dir: &Path, rounds: usize) -> Result<Duration> {
    let path: PathBuf = dir.join(format!("fsync-probe-{}", std::process::id()));
    let mut file = fs::File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
    let block = [0x5a_u8; 4096];
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        file.write_all(&block)
            .with_context(|| format!("cannot write {}", path.display()))?;
        file.sync_data()
            .with_context(|| format!("cannot sync {}", path.display()))?;
        times.push(start.elapsed());
    }
    drop(file);
    fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
    times.sort();
    Ok(percentile(&times, 50.0))
}
