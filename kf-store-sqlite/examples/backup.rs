//! Online backup of a kf SQLite database, from a process of its own while the server runs, and its restore
//! while the server is stopped:
//!
//! ```text
//! cargo run -p kf-store-sqlite --example backup -- data/kf.sqlite3 /backups/kf-$(date +%F).sqlite3
//! cargo run -p kf-store-sqlite --example backup -- --restore /backups/kf-2026-12-07.sqlite3 data/kf.sqlite3
//! ```
//!
//! The copy is the database as of one commit (SQLite's online backup API over one read snapshot); the server's
//! writes go on meanwhile. A restore gives the database a new epoch, so clients start over instead of keeping
//! cursors past the restored log. See `docs/operations.md`.

use std::ffi::OsString;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let (restore, paths) = match args.split_first() {
        Some((flag, rest)) if flag == "--restore" => (true, rest),
        _ => (false, args.as_slice()),
    };
    let [from, to] = paths else {
        eprintln!(
            "usage: backup <database file> <copy to write>\n       backup --restore <copy> <database file>"
        );
        return ExitCode::from(2);
    };
    let result = if restore {
        kf_store_sqlite::restore_file(from, to)
    } else {
        kf_store_sqlite::backup_file(from, to)
    };
    match result {
        Ok(report) => {
            let done = if restore { "restored" } else { "copied" };
            println!(
                "{done} {} pages in {} steps to {}",
                report.pages,
                report.steps,
                std::path::Path::new(to).display()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{} failed: {error}", if restore { "restore" } else { "backup" });
            ExitCode::FAILURE
        }
    }
}
