//! Online backup of a kf SQLite database, from a process of its own while the server runs:
//!
//! ```text
//! cargo run -p kf-store-sqlite --example backup -- data/kf.sqlite3 /backups/kf-$(date +%F).sqlite3
//! ```
//!
//! The copy is the database as of one commit (SQLite's online backup API over one read snapshot); the server's
//! writes go on meanwhile. See `docs/operations.md`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(source), Some(destination), None) = (args.next(), args.next(), args.next()) else {
        eprintln!("usage: backup <database file> <copy to write>");
        return ExitCode::from(2);
    };
    match kf_store_sqlite::backup_file(&source, &destination) {
        Ok(report) => {
            println!(
                "copied {} pages in {} steps to {}",
                report.pages,
                report.steps,
                std::path::Path::new(&destination).display()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("backup failed: {error}");
            ExitCode::FAILURE
        }
    }
}
