//! The read side: a small pool of read-only connections used from `spawn_blocking`, so reads never wait for
//! the writer (WAL gives each read a consistent snapshot of the last commit).

use std::sync::{Arc, Mutex, MutexGuard};

use kf_core::store::StoreError;
use rusqlite::Connection;
use tokio::sync::Semaphore;

use crate::SqliteError;

/// Idle read connections, and one permit per connection.
#[derive(Debug)]
pub(crate) struct Readers {
    permits: Arc<Semaphore>,
    idle: Arc<Mutex<Vec<Connection>>>,
}

fn lock(idle: &Mutex<Vec<Connection>>) -> MutexGuard<'_, Vec<Connection>> {
    // The vector is only pushed to and popped from; a panic cannot leave it half-changed.
    idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A connection taken from the pool; it goes back when dropped (also when the read panicked), unless the pool
/// was closed meanwhile.
struct Lease {
    conn: Option<Connection>,
    idle: Arc<Mutex<Vec<Connection>>>,
    permits: Arc<Semaphore>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && !self.permits.is_closed()
        {
            lock(&self.idle).push(conn);
        }
    }
}

impl Readers {
    pub(crate) fn new(connections: Vec<Connection>) -> Self {
        let permits = Arc::new(Semaphore::new(connections.len()));
        Self {
            permits,
            idle: Arc::new(Mutex::new(connections)),
        }
    }

    /// Runs a read on a pooled connection in the blocking thread pool.
    pub(crate) async fn run<T, F>(&self, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        let idle = Arc::clone(&self.idle);
        let permits = Arc::clone(&self.permits);
        let job = move || {
            let _permit = permit;
            let conn = lock(&idle).pop();
            let lease = Lease { conn, idle, permits };
            match &lease.conn {
                Some(conn) => read(conn),
                None => Err(StoreError::Closed),
            }
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // Polled outside a Tokio runtime: there is no blocking pool to hand the read to, so run it here.
            return job();
        };
        match runtime.spawn_blocking(job).await {
            Ok(result) => result,
            Err(error) => Err(SqliteError::ReadTask(error.to_string()).into()),
        }
    }

    /// Refuses further reads and closes the idle connections (busy ones close when their read ends).
    pub(crate) fn close(&self) {
        self.permits.close();
        lock(&self.idle).clear();
    }
}
