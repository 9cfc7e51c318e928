//! Online backups: a consistent copy of the database while the store keeps writing, with SQLite's online backup
//! API (`sqlite3_backup_*`).
//!
//! The copy is read from **one read transaction** on a connection of its own, so every page comes from the same
//! WAL snapshot — the database as of one commit — however long the copy takes and however much the writer
//! commits meanwhile. In WAL mode readers never block the writer, so the store's writes go on at full speed;
//! the copy is made `pages_per_step` pages at a time, yielding the thread between steps. What the snapshot costs:
//! checkpoints cannot move past it until the copy ends, so the `-wal` file grows by what is written meanwhile.
//!
//! The copy is written to `<destination>.partial` beside the destination, synced, and renamed over the
//! destination at the end: a crash or an error never leaves a half-written file under the destination's name.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use crate::error::Db;
use crate::{SqliteError, SqliteStore};

/// Pages copied per step by [`SqliteStore::backup_to`] (4 MiB with SQLite's default 4 KiB pages).
pub const BACKUP_PAGES_PER_STEP: u32 = 1024;

/// How long to wait before retrying a step the destination's lock refused.
const BUSY_PAUSE: Duration = Duration::from_millis(10);

/// What an online backup copied.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct BackupReport {
    /// Pages in the copy.
    pub pages: u64,
    /// Steps the copy took.
    pub steps: u64,
}

impl SqliteStore {
    /// Writes a consistent copy of the database to `destination` while the store keeps serving reads and writes:
    /// the copy is read from one read transaction (a WAL snapshot) in steps of [`BACKUP_PAGES_PER_STEP`] pages,
    /// into `<destination>.partial`, synced and renamed when complete. It is the database as of one commit, every event up to it and none after, the
    /// same schema version and epoch. Replaces `destination` if it exists (only once the copy is complete).
    ///
    /// Runs on Tokio's blocking pool (inline when called outside a runtime). To restore the copy, stop the
    /// server and put it in place with [`restore_file`].
    pub async fn backup_to(&self, destination: impl AsRef<Path>) -> Result<BackupReport, SqliteError> {
        let steps = NonZeroU32::new(BACKUP_PAGES_PER_STEP).unwrap_or(NonZeroU32::MIN);
        self.backup_in_steps(destination, steps).await
    }

    /// [`backup_to`](Self::backup_to), copying `pages_per_step` pages per step.
    pub async fn backup_in_steps(
        &self,
        destination: impl AsRef<Path>,
        pages_per_step: NonZeroU32,
    ) -> Result<BackupReport, SqliteError> {
        let source = self.path().to_path_buf();
        let destination = destination.as_ref().to_path_buf();
        if same_file(&source, &destination) {
            return Err(SqliteError::BackupOntoItself(destination));
        }
        let job = move || copy(&source, &destination, pages_per_step);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return job();
        };
        match runtime.spawn_blocking(job).await {
            Ok(result) => result,
            Err(error) => Err(SqliteError::ReadTask(error.to_string())),
        }
    }
}

/// Writes a consistent copy of the SQLite database at `source` to `destination`, from any process — a
/// command-line tool or a cron job while the server runs — without opening it as a store (nothing is migrated
/// or written in `source`). The same copy as [`SqliteStore::backup_to`], which it blocks the calling thread for.
pub fn backup_file(
    source: impl AsRef<Path>,
    destination: impl AsRef<Path>,
) -> Result<BackupReport, SqliteError> {
    let (source, destination) = (source.as_ref(), destination.as_ref());
    if same_file(source, destination) {
        return Err(SqliteError::BackupOntoItself(destination.to_path_buf()));
    }
    if !source.is_file() {
        return Err(SqliteError::Backup {
            path: source.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no database file here"),
        });
    }
    let steps = NonZeroU32::new(BACKUP_PAGES_PER_STEP).unwrap_or(NonZeroU32::MIN);
    copy(source, destination, steps)
}

/// Puts a backup in place of the database at `database`, for a server that is **stopped**: the copy is written
/// beside it, given a new epoch (a kf store's; other SQLite files are copied as they are), synced and renamed over it, and the old `-wal` and `-shm` files are removed
/// (they belong to the replaced file; applied to another one they would corrupt it).
///
/// The new epoch is what makes a restore safe for clients: one that saw events newer than the backup holds a
/// cursor past the restored log; with the epoch changed it is told to start over (`reset`) instead of skipping
/// the next events written at seqs it has already seen. `backup` itself is left as it was.
pub fn restore_file(
    backup: impl AsRef<Path>,
    database: impl AsRef<Path>,
) -> Result<BackupReport, SqliteError> {
    let (backup, database) = (backup.as_ref(), database.as_ref());
    if same_file(backup, database) {
        return Err(SqliteError::BackupOntoItself(database.to_path_buf()));
    }
    if !backup.is_file() {
        return Err(SqliteError::Backup {
            path: backup.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no backup file here"),
        });
    }
    let partial = partial_path(database);
    let steps = NonZeroU32::new(BACKUP_PAGES_PER_STEP).unwrap_or(NonZeroU32::MIN);
    let result = copy_to(backup, &partial, steps).and_then(|report| {
        new_epoch(&partial)?;
        Ok(report)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
        return result;
    }
    for suffix in ["-wal", "-shm"] {
        let mut name = database.as_os_str().to_owned();
        name.push(suffix);
        match std::fs::remove_file(PathBuf::from(name)) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(io_error(database)(error)),
        }
    }
    install(&partial, database)?;
    result
}

/// Gives the database at `path` a new epoch (see [`restore_file`]); a file without kf's `meta` table (another
/// SQLite file kf keeps, such as the webhooks' state) has none to change.
fn new_epoch(path: &Path) -> Result<(), SqliteError> {
    let conn = Connection::open(path).db()?;
    let kf_store: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta')",
            [],
            |row| row.get(0),
        )
        .db()?;
    if !kf_store {
        return conn.close().map_err(|(_, error)| crate::error::database(error));
    }
    let changed = conn
        .execute(
            "UPDATE meta SET value = ?1 WHERE key = 'epoch'",
            [uuid::Uuid::new_v4().to_string()],
        )
        .db()?;
    conn.close().map_err(|(_, error)| crate::error::database(error))?;
    if changed == 0 {
        return Err(SqliteError::Backup {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "not a kf database (no epoch)"),
        });
    }
    std::fs::File::open(path)
        .and_then(|file| file.sync_all())
        .map_err(io_error(path))
}

fn same_file(source: &Path, destination: &Path) -> bool {
    match (source.canonicalize(), destination.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => source == destination,
    }
}

fn partial_path(destination: &Path) -> PathBuf {
    let mut name = destination.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> SqliteError + '_ {
    move |source| SqliteError::Backup {
        path: path.to_path_buf(),
        source,
    }
}

fn copy(source: &Path, destination: &Path, pages_per_step: NonZeroU32) -> Result<BackupReport, SqliteError> {
    let partial = partial_path(destination);
    match std::fs::remove_file(&partial) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(io_error(&partial)(error)),
    }
    let result = copy_to(source, &partial, pages_per_step);
    if result.is_err() {
        // Best effort: what is left of a failed copy is of no use.
        let _ = std::fs::remove_file(&partial);
        return result;
    }
    install(&partial, destination)?;
    result
}

/// Renames a complete copy over `destination`, durably.
fn install(partial: &Path, destination: &Path) -> Result<(), SqliteError> {
    std::fs::rename(partial, destination).map_err(io_error(destination))?;
    if let Some(parent) = destination.parent().filter(|p| !p.as_os_str().is_empty()) {
        // Make the rename itself durable (directories can be opened and synced on Unix only).
        #[cfg(unix)]
        std::fs::File::open(parent)
            .and_then(|dir| dir.sync_all())
            .map_err(io_error(parent))?;
        #[cfg(not(unix))]
        let _ = parent;
    }
    Ok(())
}

fn copy_to(source: &Path, partial: &Path, pages_per_step: NonZeroU32) -> Result<BackupReport, SqliteError> {
    let from = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .db()?;
    from.busy_timeout(Duration::from_secs(5)).db()?;
    // One read transaction for the whole copy: every step reads the same snapshot.
    from.execute_batch("BEGIN DEFERRED").db()?;
    from.query_row("SELECT count(*) FROM sqlite_master", [], |row| {
        row.get::<_, i64>(0)
    })
    .db()?;
    let mut to = Connection::open(partial).db()?;
    let report = {
        let backup = Backup::new(&from, &mut to).db()?;
        let per_step = i32::try_from(pages_per_step.get()).unwrap_or(i32::MAX);
        let mut steps = 0u64;
        loop {
            steps += 1;
            match backup.step(per_step).db()? {
                StepResult::Done => break,
                StepResult::More => std::thread::yield_now(),
                StepResult::Busy | StepResult::Locked => std::thread::sleep(BUSY_PAUSE),
                // `StepResult` is non-exhaustive: treat anything new as "try again".
                _ => std::thread::sleep(BUSY_PAUSE),
            }
        }
        let progress = backup.progress();
        BackupReport {
            pages: u64::try_from(progress.pagecount).unwrap_or_default(),
            steps,
        }
    };
    from.execute_batch("COMMIT").db()?;
    to.close().map_err(|(_, error)| crate::error::database(error))?;
    std::fs::File::open(partial)
        .and_then(|file| file.sync_all())
        .map_err(io_error(partial))?;
    Ok(report)
}
