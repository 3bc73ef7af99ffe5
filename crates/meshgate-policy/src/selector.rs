//! Which products a rule applies to.

use meshgate_catalog::config::Product;

use crate::model::SelectorSpec;

/// A compiled product selector. `domain` limits a domain's own policies to its products.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    pub domain: Option<String>,
    pub names: Vec<String>,
    pub domains: Vec<String>,
    pub tags: Vec<String>,
    pub column_tags: Vec<String>,
    pub status: Vec<String>,
}

impl Selector {
    /// The file-level selector narrowed by a rule's own `products:`.
    pub fn from_specs(domain: Option<&str>, file: Option<&SelectorSpec>, rule: Option<&SelectorSpec>) -> Vec<Self> {
        let base = Self { domain: domain.map(str::to_owned), ..Self::default() };
        let mut selectors = Vec::new();
        for spec in [file, rule].into_iter().flatten() {
            selectors.push(base.clone().narrowed(spec));
        }
        if selectors.is_empty() {
            selectors.push(base);
        }
        selectors
    }

    fn narrowed(mut self, spec: &SelectorSpec) -> Self {
        match spec {
            SelectorSpec::Names(names) => self.names = names.clone(),
            SelectorSpec::Criteria(criteria) => {
                self.names = criteria.names.clone();
                self.domains = criteria.domains.clone();
                self.tags = criteria.tags.clone();
                self.column_tags = criteria.column_tags.clone();
                self.status = criteria.status.clone();
            }
        }
        self
    }

    pub fn matches(&self, product: &Product) -> bool {
        if self.domain.as_deref().is_some_and(|domain| domain != product.domain) {
            return false;
        }
        let qualified = product.qualified_name();
        let name_ok = self.names.is_empty() || self.names.iter().any(|n| *n == product.name || *n == qualified);
        let domain_ok = self.domains.is_empty() || self.domains.contains(&product.domain);
        let tags_ok = self.tags.is_empty() || product.tags.iter().any(|tag| any_tag_matches(&self.tags, tag));
        let column_tags_ok = self.column_tags.is_empty()
            || product
                .schema
                .iter()
                .flatten()
                .flat_map(|c| c.tags.iter())
                .any(|tag| any_tag_matches(&self.column_tags, tag));
        let status_ok = self.status.is_empty() || self.status.iter().any(|s| s == product.status.as_str());
        name_ok && domain_ok && tags_ok && column_tags_ok && status_ok
    }
}

/// Every selector of a rule must match (file scope and rule scope).
pub fn all_match(selectors: &[Selector], product: &Product) -> bool {
    selectors.iter().all(|selector| selector.matches(product))
}

/// `pii.*` matches `pii.email`; other patterns match exactly.
pub fn tag_matches(pattern: &str, tag: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => tag.starts_with(prefix),
        None => pattern == tag,
    }
}

pub fn any_tag_matches(patterns: &[String], tag: &str) -> bool {
    patterns.iter().any(|pattern| tag_matches(pattern, tag))
}
