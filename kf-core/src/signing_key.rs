//! The signing key of [`SignedTokens`](crate::auth::SignedTokens) kept in a file: made with fresh random bytes on
//! the first run (private to its owner on Unix) and read on every later one, so tokens stay valid across
//! restarts.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Length of a key this module makes (the shortest [`SignedTokens`](crate::auth::SignedTokens) accepts).
pub const KEY_LEN: usize = crate::limits::MIN_SIGNING_KEY_LEN;

/// The signing key file could not be read or made.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// Reading, creating or writing the file failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The key file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The file exists but does not hold a key.
    #[error("the signing key file {} holds {len} bytes, expected {KEY_LEN}; delete it to make a new key (tokens issued with the old one stop working)", path.display())]
    NotAKey {
        /// The key file.
        path: PathBuf,
        /// Its length.
        len: usize,
    },
    /// The operating system's random number generator failed.
    #[error("cannot generate a signing key: {0}")]
    Random(#[from] getrandom::Error),
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> KeyFileError {
    let path = path.to_path_buf();
    move |source| KeyFileError::Io { action, path, source }
}

/// Reads the key at `path`, or makes it: [`KEY_LEN`] random bytes written to a new file (mode 0600 on Unix) and
/// synced to disk. Two processes starting at once end up with the same key.
pub fn load_or_create(path: &Path) -> Result<[u8; KEY_LEN], KeyFileError> {
    match fs::File::open(path) {
        Ok(mut file) => {
            let mut bytes = Vec::with_capacity(KEY_LEN);
            file.read_to_end(&mut bytes)
                .map_err(io_error("cannot read the signing key", path))?;
            let len = bytes.len();
            <[u8; KEY_LEN]>::try_from(bytes).map_err(|_| KeyFileError::NotAKey {
                path: path.to_path_buf(),
                len,
            })
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => create(path),
        Err(error) => Err(io_error("cannot open the signing key", path)(error)),
    }
}

fn create(path: &Path) -> Result<[u8; KEY_LEN], KeyFileError> {
    let mut key = [0u8; KEY_LEN];
    getrandom::fill(&mut key)?;
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = match options.open(path) {
        Ok(file) => file,
        // Another process made it meanwhile: use theirs.
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => return load_or_create(path),
        Err(error) => return Err(io_error("cannot create the signing key", path)(error)),
    };
    if let Err(error) = file.write_all(&key).and_then(|()| file.sync_all()) {
        // Leave no truncated key behind.
        let _ = fs::remove_file(path);
        return Err(io_error("cannot write the signing key", path)(error));
    }
    tracing::info!(path = %path.display(), "created a new signing key");
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_made_once_then_read_and_a_file_that_is_no_key_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("signing.key");
        let first = load_or_create(&path).expect("create");
        let second = load_or_create(&path).expect("read");
        assert_eq!(first, second);
        assert_ne!(first, [0u8; KEY_LEN]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).expect("metadata").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        fs::write(&path, b"short").expect("write");
        assert!(matches!(
            load_or_create(&path),
            Err(KeyFileError::NotAKey { len: 5, .. })
        ));
        let missing_dir = dir.path().join("no/such/dir/signing.key");
        assert!(matches!(
            load_or_create(&missing_dir),
            Err(KeyFileError::Io { .. })
        ));
    }
}
