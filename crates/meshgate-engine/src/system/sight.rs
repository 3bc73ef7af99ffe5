//! What one principal sees of a product version, for deciding which catalog figures
//! are theirs: whether they may read it at all, whether every row is theirs (no row
//! filter hides any), and which columns they see unmasked. Decided once per version.

use std::collections::{BTreeMap, BTreeSet};

use datafusion::common::Result;
use meshgate_policy::{Action, MeshView};

/// One principal's sight of one product version.
#[derive(Debug, Clone)]
pub(super) struct Seen {
    pub steward: bool,
    /// Every row is visible: figures about the whole product are theirs.
    pub whole: bool,
    /// Columns served to them as stored.
    pub plain_columns: BTreeSet<String>,
}

pub(super) struct Sight<'a> {
    view: &'a MeshView,
    steward: bool,
    seen: BTreeMap<(String, String, String), Option<Seen>>,
}

impl<'a> Sight<'a> {
    pub fn new(view: &'a MeshView) -> Self {
        let steward = view.policy().is_steward(view.principal());
        Self { view, steward, seen: BTreeMap::new() }
    }

    /// `None` when the principal may not read this version (or it is not loaded).
    pub fn version(&mut self, domain: &str, product: &str, version: &str) -> Result<Option<&Seen>> {
        let key = (domain.to_owned(), product.to_owned(), version.to_owned());
        if !self.seen.contains_key(&key) {
            let seen = self.decide(domain, product, version)?;
            self.seen.insert(key.clone(), seen);
        }
        Ok(self.seen.get(&key).and_then(Option::as_ref))
    }

    fn decide(&self, domain: &str, product: &str, version: &str) -> Result<Option<Seen>> {
        let view = self.view;
        let Some(entry) = view.snapshot().version_of(domain, product, version) else { return Ok(None) };
        if !view.policy().can_read(view.principal(), &entry.product) {
            return Ok(None);
        }
        let pinned = format!("{product}@{version}");
        let hides_rows = match view.table(domain, &pinned)? {
            Some(table) => table.hides_rows(),
            // A retired version reads nothing: judge by its row filter alone.
            None => true,
        };
        let decision = view.policy().decide(view.principal(), entry);
        let plain_columns = decision
            .columns
            .iter()
            .filter(|column| matches!(column.action, Action::Allow))
            .map(|column| column.name.clone())
            .collect();
        Ok(Some(Seen { steward: self.steward, whole: self.steward || !hides_rows, plain_columns }))
    }
}
