//! The catalogue: what admins configure that the engine consults on every `open`, cached in memory (loaded at
//! start-up, written through on change) so that resolving a visitor's request reads no database — the groups'
//! working hours and the entry points. Groups and agents themselves live in the routing ledger, which needs them
//! under its own lock. It also remembers which visitors have a record, so that a returning visitor's `hello`
//! does not read the directory to find out.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use super::entry::EntryPoints;
use crate::hours::WorkingHours;
use crate::model::{GroupId, TenantId, Timestamp, VisitorId};
use crate::store::{Directory, Settings, StoreError};

type GroupKey = (TenantId, GroupId);

/// Visitors remembered as having a record, at most; past it the memory starts over (a forgotten visitor costs one
/// directory read at its next `hello`).
const VISITORS_REMEMBERED: usize = 100_000;

/// Working hours and entry points.
#[derive(Debug, Default)]
pub(crate) struct Catalog {
    hours: Mutex<HashMap<GroupKey, WorkingHours>>,
    pub(crate) entries: EntryPoints,
    /// Visitors known to have a record in the directory.
    visitors: Mutex<HashSet<(TenantId, VisitorId)>>,
}

impl Catalog {
    /// Loads the working hours and the entry points.
    pub(crate) async fn load(
        directory: &dyn Directory,
        settings: &dyn Settings,
    ) -> Result<Catalog, StoreError> {
        let hours = settings
            .group_hours()
            .await?
            .into_iter()
            .map(|g| ((g.tenant, g.group), g.hours))
            .collect();
        Ok(Catalog {
            hours: Mutex::new(hours),
            entries: EntryPoints::load(directory).await?,
            visitors: Mutex::default(),
        })
    }

    fn visitors(&self) -> MutexGuard<'_, HashSet<(TenantId, VisitorId)>> {
        self.visitors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether `visitor` is known to have a record.
    pub(crate) fn has_visitor(&self, tenant: &TenantId, visitor: &VisitorId) -> bool {
        self.visitors().contains(&(tenant.clone(), visitor.clone()))
    }

    /// Remembers that `visitor` has a record.
    pub(crate) fn visitor_recorded(&self, tenant: &TenantId, visitor: &VisitorId) {
        let mut visitors = self.visitors();
        if visitors.len() >= VISITORS_REMEMBERED {
            visitors.clear();
        }
        visitors.insert((tenant.clone(), visitor.clone()));
    }

    fn hours(&self) -> MutexGuard<'_, HashMap<GroupKey, WorkingHours>> {
        self.hours.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sets (or with `None` removes) a group's hours in the cache.
    pub(crate) fn set_hours(&self, tenant: &TenantId, group: &GroupId, hours: Option<WorkingHours>) {
        let key = (tenant.clone(), group.clone());
        match hours {
            Some(hours) => self.hours().insert(key, hours),
            None => self.hours().remove(&key),
        };
    }

    /// A group's hours; `None` when it has none (always open).
    pub(crate) fn hours_of(&self, tenant: &TenantId, group: &GroupId) -> Option<WorkingHours> {
        self.hours().get(&(tenant.clone(), group.clone())).cloned()
    }

    /// Whether a group takes live conversations at `now`: always, without working hours.
    pub(crate) fn is_open(&self, tenant: &TenantId, group: &GroupId, now: Timestamp) -> bool {
        self.hours()
            .get(&(tenant.clone(), group.clone()))
            .is_none_or(|hours| hours.is_open(now))
    }
}
