//! [`AuditLog`] in memory: every admin change, oldest first.

use async_trait::async_trait;

use super::MemoryStore;
use crate::store::{AuditEntry, AuditLog, AuditPage, AuditQuery, StoreError};

#[async_trait]
impl AuditLog for MemoryStore {
    async fn append_audit(&self, mut entry: AuditEntry) -> Result<u64, StoreError> {
        let mut state = self.state();
        entry.id = state.audit.len() as u64 + 1;
        let id = entry.id;
        state.audit.push(entry);
        Ok(id)
    }

    async fn audit_entries(&self, query: &AuditQuery) -> Result<AuditPage, StoreError> {
        let size = query.page_size()?;
        let state = self.state();
        let entries = state
            .audit
            .iter()
            .rev()
            .filter(|entry| query.matches(entry))
            .take(size + 1)
            .cloned()
            .collect();
        Ok(AuditPage::of(entries, size))
    }
}
