//! Seen marks: the `read` receipts each participant sends, kept so that "seen" survives a reconnect or a reload.
//!
//! A receipt is relayed at once (`conversations.rs`), then noted here: the highest seq per (conversation,
//! participant) waits in memory and a flush task hands everything pending to the store in one
//! [`ConversationLog::record_seen`](crate::store::ConversationLog::record_seen) call, [`SEEN_FLUSH_DELAY`]
//! after the first receipt it did not write yet — so a busy conversation costs one store write per second at
//! most, never one per receipt, and the SQLite writer folds it into a batch of appends. At most one flush task
//! runs; shutdown flushes at once (the task is tracked, so [`Engine::closed`] waits for it).
//!
//! Readers ([`Engine::seen_marks`], used by `inbox` and `subscribed`) merge the store's marks with the pending
//! ones, so a reload within the delay sees the latest mark too. A mark leaves the pending map only once the store
//! holds it (or a higher one): nothing is lost between the two, and no mark moves backwards.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{Engine, RequestError};
use crate::model::{Actor, ConversationId, SeenMark, Seq};

/// How long a noted receipt may wait before it is written, gathering the receipts that follow it.
pub const SEEN_FLUSH_DELAY: Duration = Duration::from_secs(1);

/// The receipts not yet written, and whether a flush task runs.
#[derive(Debug, Default)]
pub(crate) struct SeenBook {
    pending: Mutex<HashMap<(ConversationId, Actor), Seq>>,
    flushing: AtomicBool,
}

impl SeenBook {
    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<(ConversationId, Actor), Seq>> {
        // Every update is a single insert or removal: a poisoned map is still consistent.
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Raises a pending mark; true when no flush task runs yet (the caller starts one).
    fn note(&self, mark: SeenMark) -> bool {
        let mut pending = self.pending();
        let seq = pending.entry((mark.conversation, mark.from)).or_default();
        *seq = (*seq).max(mark.seq);
        !self.flushing.swap(true, Ordering::AcqRel)
    }

    fn snapshot(&self) -> Vec<SeenMark> {
        self.pending()
            .iter()
            .map(|((conversation, from), &seq)| SeenMark::new(*conversation, from.clone(), seq))
            .collect()
    }

    /// Forgets the written marks, unless a higher one arrived meanwhile.
    fn written(&self, marks: &[SeenMark]) {
        let mut pending = self.pending();
        for mark in marks {
            let key = (mark.conversation, mark.from.clone());
            if pending.get(&key).is_some_and(|&seq| seq <= mark.seq) {
                pending.remove(&key);
            }
        }
    }

    /// Ends the flush task unless marks are pending; true when the task must go on.
    fn finish(&self) -> bool {
        let pending = self.pending();
        if pending.is_empty() {
            self.flushing.store(false, Ordering::Release);
            return false;
        }
        true
    }

    /// Merges the pending marks of `conversations` into `marks` (the store's), keeping the higher seq.
    fn merge_into(&self, conversations: &[ConversationId], marks: &mut Vec<SeenMark>) {
        let pending = self.pending();
        for ((conversation, from), &seq) in pending.iter() {
            if !conversations.contains(conversation) {
                continue;
            }
            match marks
                .iter_mut()
                .find(|m| m.conversation == *conversation && m.from == *from)
            {
                Some(mark) => mark.seq = mark.seq.max(seq),
                None => marks.push(SeenMark::new(*conversation, from.clone(), seq)),
            }
        }
    }
}

impl Engine {
    /// Notes a participant's receipt, to be written with the next flush.
    pub(super) fn note_seen(&self, mark: SeenMark) {
        if !self.inner.seen.note(mark) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No runtime, no flush task: the marks stay readable from memory.
            return;
        };
        let engine = self.clone();
        self.inner
            .lifecycle
            .background
            .spawn_on(async move { engine.flush_seen().await }, &runtime);
    }

    /// The flush task: waits for more receipts (or the shutdown), writes what is pending, and goes on while
    /// receipts keep coming. A failed write keeps the marks pending for the next round; at shutdown it gives up
    /// after one more try (the marks only ever show "seen": losing one loses no message).
    async fn flush_seen(&self) {
        let token = self.shutdown_token();
        let mut failures = 0;
        loop {
            if !token.is_cancelled() {
                tokio::select! {
                    () = tokio::time::sleep(SEEN_FLUSH_DELAY) => {}
                    () = token.cancelled() => {}
                }
            }
            let marks = self.inner.seen.snapshot();
            match self.inner.log.record_seen(marks.clone()).await {
                Ok(()) => {
                    self.inner.seen.written(&marks);
                    failures = 0;
                }
                Err(error) => {
                    failures += 1;
                    tracing::warn!(%error, marks = marks.len(), "cannot store seen marks; will retry");
                    if token.is_cancelled() && failures > 1 {
                        self.inner.seen.written(&marks);
                    }
                }
            }
            if !self.inner.seen.finish() {
                return;
            }
        }
    }

    /// Every participant's seen mark in these conversations: the stored ones raised by those not written yet.
    pub(crate) async fn seen_marks(
        &self,
        conversations: &[ConversationId],
    ) -> Result<Vec<SeenMark>, RequestError> {
        if conversations.is_empty() {
            return Ok(Vec::new());
        }
        let mut marks = self.inner.log.seen(conversations).await?;
        self.inner.seen.merge_into(conversations, &mut marks);
        Ok(marks)
    }
}
