//! Entry points in the engine: the host's admin API, and where a visitor's `open` goes.
//!
//! The engine keeps every entry point in memory (loaded from the store at start-up, written through on change),
//! so resolving an `open` reads no database.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use super::{Engine, RequestError};
use crate::entry::EntryPoint;
use crate::model::{EntryPointId, GroupId, TenantId, VisitorId};
use crate::prechat::PrechatField;
use crate::store::{Directory, StoreError};

/// The entry points of every tenant, by tenant then id (so page rules are tried in id order).
#[derive(Debug, Default)]
pub(super) struct EntryPoints {
    all: Mutex<BTreeMap<TenantId, BTreeMap<EntryPointId, EntryPoint>>>,
}

impl EntryPoints {
    /// Loads every stored entry point.
    pub(super) async fn load(store: &dyn Directory) -> Result<EntryPoints, StoreError> {
        let mut all: BTreeMap<TenantId, BTreeMap<EntryPointId, EntryPoint>> = BTreeMap::new();
        for entry in store.entry_points().await? {
            all.entry(entry.tenant.clone())
                .or_default()
                .insert(entry.id.clone(), entry);
        }
        Ok(EntryPoints { all: Mutex::new(all) })
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<TenantId, BTreeMap<EntryPointId, EntryPoint>>> {
        self.all.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn get(&self, tenant: &TenantId, id: &EntryPointId) -> Option<EntryPoint> {
        self.lock().get(tenant).and_then(|of| of.get(id)).cloned()
    }

    /// A tenant's entry points, ordered by id.
    fn of(&self, tenant: &TenantId) -> Vec<EntryPoint> {
        self.lock()
            .get(tenant)
            .map(|of| of.values().cloned().collect())
            .unwrap_or_default()
    }

    fn insert(&self, entry: EntryPoint) {
        self.lock()
            .entry(entry.tenant.clone())
            .or_default()
            .insert(entry.id.clone(), entry);
    }

    fn remove(&self, tenant: &TenantId, id: &EntryPointId) {
        let mut all = self.lock();
        if let Some(of) = all.get_mut(tenant) {
            of.remove(id);
            if of.is_empty() {
                all.remove(tenant);
            }
        }
    }

    /// The first entry point, in id order, with a page rule matching `url` and whose group passes `usable`.
    fn by_page(&self, tenant: &TenantId, url: &str, usable: impl Fn(&GroupId) -> bool) -> Option<EntryPoint> {
        self.lock()
            .get(tenant)?
            .values()
            .find(|entry| entry.matches_page(url) && usable(&entry.group))
            .cloned()
    }
}

/// Where an `open` goes: the group, the entry point it came through, and that entry point's welcome.
#[derive(Debug)]
pub(super) struct Destination {
    pub(super) group: GroupId,
    pub(super) entry: Option<EntryPointId>,
    /// Overrides the group's welcome when set.
    pub(super) welcome: Option<String>,
    /// The pre-chat form of a named entry point (empty otherwise).
    pub(super) prechat: Vec<PrechatField>,
}

impl Engine {
    /// Creates or replaces an entry point. `Invalid` when its welcome or page rules break the rules
    /// ([`EntryPoint::validate`]), `NotFound` when its group does not exist. Takes effect for the next `open`.
    pub async fn put_entry_point(&self, entry: EntryPoint) -> Result<(), RequestError> {
        entry
            .validate()
            .map_err(|error| RequestError::Invalid(error.to_string()))?;
        if !self.inner.routing.ledger.has_group(&entry.tenant, &entry.group) {
            return Err(RequestError::NotFound(format!("group {}", entry.group)));
        }
        // Store and cache together, even if the caller is dropped in between.
        let engine = self.clone();
        self.detached(async move {
            engine.inner.directory.put_entry_point(entry.clone()).await?;
            engine.inner.catalog.entries.insert(entry);
            Ok(())
        })
        .await
    }

    /// A tenant's entry points, ordered by id.
    pub fn entry_points(&self, tenant: &TenantId) -> Vec<EntryPoint> {
        self.inner.catalog.entries.of(tenant)
    }

    /// One entry point.
    pub fn entry_point(&self, tenant: &TenantId, id: &EntryPointId) -> Option<EntryPoint> {
        self.inner.catalog.entries.get(tenant, id)
    }

    /// Deletes an entry point; false when there was none. Conversations opened through it keep it in their
    /// `created` event.
    pub async fn delete_entry_point(
        &self,
        tenant: &TenantId,
        id: &EntryPointId,
    ) -> Result<bool, RequestError> {
        let (engine, tenant, id) = (self.clone(), tenant.clone(), id.clone());
        self.detached(async move {
            let found = engine.inner.directory.delete_entry_point(&tenant, &id).await?;
            engine.inner.catalog.entries.remove(&tenant, &id);
            Ok(found)
        })
        .await
    }

    /// Resolves where a visitor's `open` goes, in this order:
    ///
    /// 1. an explicit `group` (a named `entry` must still exist and is recorded; its welcome is used only when
    ///    it leads to that same group);
    /// 2. the named `entry` (unknown: `NotFound`);
    /// 3. the first entry point (by id) with a page rule matching the visitor's current page — its last page
    ///    view, else the landing page of its context report — skipping those whose group is gone;
    /// 4. the engine's default group, else the tenant's first group by id.
    ///
    /// The group itself is checked by the caller.
    pub(super) fn destination(
        &self,
        tenant: &TenantId,
        visitor: &VisitorId,
        group: Option<GroupId>,
        entry: Option<EntryPointId>,
    ) -> Result<Destination, RequestError> {
        let named = match entry {
            Some(id) => Some(
                self.inner
                    .catalog
                    .entries
                    .get(tenant, &id)
                    .ok_or_else(|| RequestError::NotFound(format!("entry point {id}")))?,
            ),
            None => None,
        };
        if let Some(group) = group {
            let welcome = named
                .as_ref()
                .filter(|entry| entry.group == group)
                .and_then(|entry| entry.welcome.clone());
            return Ok(Destination {
                group,
                prechat: named
                    .as_ref()
                    .map(|entry| entry.prechat.clone())
                    .unwrap_or_default(),
                entry: named.map(|entry| entry.id),
                welcome,
            });
        }
        let chosen = named.or_else(|| {
            let url = self.inner.sessions.trails.current_page(tenant, visitor)?;
            let router = &self.inner.routing.ledger;
            self.inner
                .catalog
                .entries
                .by_page(tenant, &url, |group| router.has_group(tenant, group))
        });
        if let Some(entry) = chosen {
            return Ok(Destination {
                group: entry.group,
                entry: Some(entry.id),
                welcome: entry.welcome,
                prechat: entry.prechat,
            });
        }
        let group = match self.inner.routing.default_group.clone() {
            Some(group) => group,
            None => self
                .inner
                .routing
                .ledger
                .first_group(tenant)
                .ok_or_else(|| RequestError::NotFound("group".into()))?,
        };
        Ok(Destination {
            group,
            entry: None,
            welcome: None,
            prechat: Vec::new(),
        })
    }
}
