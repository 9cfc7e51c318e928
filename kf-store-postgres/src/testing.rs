//! A throwaway PostgreSQL server for tests (feature `testing`).
//!
//! [`server`] gives the test process one server: the one named by `KF_TEST_POSTGRES_URL` (a connection string to
//! a database the tests may create databases from, such as `scripts/pg-test-server.sh` starts), or else one it
//! starts itself from the Debian packages' binaries: `initdb` and `pg_ctl` in a temporary directory, as the
//! `postgres` system user when the process runs as root (PostgreSQL refuses to run as root), listening only on a
//! Unix socket in that directory (so two test processes never compete for a port). A watchdog shell started
//! with it stops the server and removes the directory once the test process has exited — whether its tests
//! passed, failed or panicked — since Rust runs no destructor of a static at exit.
//!
//! [`TestServer::fresh_database`] creates an empty database per test, so tests run in parallel.
//!
//! Nothing is skipped: when no server can be found or started, [`server`] panics with the reason.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable naming a running server for the tests.
pub const URL_VARIABLE: &str = "KF_TEST_POSTGRES_URL";

/// A server the tests create their databases on.
#[derive(Debug)]
pub struct TestServer {
    /// A connection string to its maintenance database.
    admin_url: String,
    /// Databases created so far by this process.
    created: AtomicU64,
}

/// This process's server, started on first use (see the module documentation). Panics when there is none.
pub fn server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let admin_url = match std::env::var(URL_VARIABLE) {
            Ok(url) if !url.trim().is_empty() => url,
            _ => match start() {
                Ok(url) => url,
                Err(reason) => panic!(
                    "no PostgreSQL server for the tests: {URL_VARIABLE} is not set and one could not be \
                     started: {reason} (install Debian's `postgresql` package, or run scripts/test.sh)"
                ),
            },
        };
        TestServer {
            admin_url,
            created: AtomicU64::new(0),
        }
    })
}

impl TestServer {
    /// The connection string of the maintenance database.
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }

    /// Creates an empty database and returns its connection string.
    pub async fn fresh_database(&self) -> String {
        let n = self.created.fetch_add(1, Ordering::Relaxed);
        let name = format!("kf_test_{}_{n}", std::process::id());
        let (client, connection) = tokio_postgres::connect(&self.admin_url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|error| panic!("cannot connect to the test server: {error}"));
        let task = tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|error| panic!("cannot create the test database {name}: {error}"));
        drop(client);
        let _ = task.await;
        with_dbname(&self.admin_url, &name)
    }
}

/// The connection string `url` with another database.
fn with_dbname(url: &str, dbname: &str) -> String {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        // URL form: replace the path (the database), keep the query (the options).
        let (base, query) = match url.split_once('?') {
            Some((base, query)) => (base, Some(query)),
            None => (url, None),
        };
        let authority_end = base
            .find("://")
            .map(|scheme| scheme + 3)
            .and_then(|start| base[start..].find('/').map(|slash| start + slash))
            .unwrap_or(base.len());
        let mut out = format!("{}/{dbname}", &base[..authority_end]);
        if let Some(query) = query {
            out.push('?');
            out.push_str(query);
        }
        out
    } else {
        // Key-value form: a later `dbname` wins.
        format!("{url} dbname={dbname}")
    }
}

/// A transaction left open by [`PostgresStore::append_uncommitted`](crate::PostgresStore::append_uncommitted):
/// [`commit`](Self::commit) it, or drop it to roll it back (its connection is closed, not returned to the pool).
#[derive(Debug)]
pub struct OpenTransaction {
    client: Option<deadpool_postgres::Object>,
}

impl OpenTransaction {
    pub(crate) fn new(client: deadpool_postgres::Object) -> Self {
        Self { client: Some(client) }
    }

    /// Commits the transaction.
    pub async fn commit(mut self) -> Result<(), kf_core::store::StoreError> {
        let Some(client) = self.client.take() else {
            return Ok(());
        };
        client
            .batch_execute("COMMIT")
            .await
            .map_err(crate::error::backend)
    }
}

impl Drop for OpenTransaction {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            // Out of the pool and closed: the server rolls the transaction back.
            drop(deadpool_postgres::Object::take(client));
        }
    }
}

/// Where Debian's server binaries are: `KF_POSTGRES_BIN`, else the newest /usr/lib/postgresql/<version>/bin,
/// else the directory of `initdb` on the PATH.
fn binaries() -> Result<PathBuf, String> {
    if let Ok(dir) = std::env::var("KF_POSTGRES_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .find(|dir| dir.join("initdb").exists())
        .ok_or_else(|| "no initdb in /usr/lib/postgresql/*/bin nor on the PATH".to_string())
}

/// Whether this process runs as root (then the server runs as `postgres`).
fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A command run as the server's user.
fn as_server_user(root: bool, program: &Path) -> Command {
    if root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run(mut command: Command, what: &str) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("{what}: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Starts a server in a new temporary directory, with its watchdog; returns the maintenance connection string.
fn start() -> Result<String, String> {
    let bin = binaries()?;
    let root = running_as_root();
    let dir = tempfile::Builder::new()
        .prefix("kf-pg-")
        .tempdir()
        .map_err(|error| format!("temporary directory: {error}"))?
        // The watchdog removes it, after the server has stopped.
        .keep();
    let data = dir.join("data");
    // Before anything else: whenever this process ends from here on, the directory goes (and the server, once
    // there is one).
    watchdog(root, &bin, &dir, &data)?;
    if root {
        run(
            {
                let mut chown = Command::new("chown");
                chown.arg("postgres:postgres").arg(&dir);
                chown
            },
            "chown of the temporary directory to postgres",
        )?;
    }
    let mut initdb = as_server_user(root, &bin.join("initdb"));
    initdb
        .args([
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--username=postgres",
            "-D",
        ])
        .arg(&data);
    run(initdb, "initdb")?;
    // Any number names the socket file; the directory is ours alone.
    let port = 5432;
    let options = format!(
        "-c listen_addresses='' -c unix_socket_directories='{}' -p {port} -c fsync=off \
         -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
        dir.display()
    );
    let mut pg_ctl = as_server_user(root, &bin.join("pg_ctl"));
    pg_ctl
        .args(["start", "-w", "-t", "60", "-D"])
        .arg(&data)
        .arg("-l")
        .arg(dir.join("server.log"))
        .arg("-o")
        .arg(&options);
    run(pg_ctl, "pg_ctl start")?;
    Ok(format!(
        "host={} port={port} user=postgres dbname=postgres",
        dir.display()
    ))
}

/// A shell that waits for this process to exit, then stops the server (if one runs) and removes its directory.
fn watchdog(root: bool, bin: &Path, dir: &Path, data: &Path) -> Result<(), String> {
    let pg_ctl = bin.join("pg_ctl");
    let stop = if root {
        format!(
            "runuser -u postgres -- '{}' stop -m immediate -D '{}'",
            pg_ctl.display(),
            data.display()
        )
    } else {
        format!("'{}' stop -m immediate -D '{}'", pg_ctl.display(), data.display())
    };
    let script = format!(
        // The pause lets a start that was under way when the process died write its pid file first.
        "while kill -0 {pid} 2>/dev/null; do sleep 0.2; done; sleep 1; {stop} >/dev/null 2>&1; rm -rf '{dir}'",
        pid = std::process::id(),
        dir = dir.display()
    );
    let mut watchdog = Command::new("sh");
    // A process group of its own: an interrupt (Ctrl-C) or a kill of the test process's group must not take
    // the watchdog with it, or the server would outlive the tests.
    std::os::unix::process::CommandExt::process_group(&mut watchdog, 0);
    watchdog
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(drop)
        .map_err(|error| format!("cannot start the server's watchdog: {error}"))
}

#[cfg(test)]
mod tests {
    use super::with_dbname;

    #[test]
    fn a_connection_string_gets_another_database() {
        assert_eq!(
            with_dbname("postgres://u@h:5/postgres?sslmode=disable", "t1"),
            "postgres://u@h:5/t1?sslmode=disable"
        );
        assert_eq!(with_dbname("postgresql://u@h", "t1"), "postgresql://u@h/t1");
        assert_eq!(
            with_dbname("host=/tmp port=5 dbname=postgres", "t1"),
            "host=/tmp port=5 dbname=postgres dbname=t1"
        );
    }
}
