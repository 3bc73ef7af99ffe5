//! `DataPins`: what each product's scans read within one execution of a query. The
//! first scan of a product takes its data ([`crate::ProductTable::data`]); later scans
//! of the same product in that execution (a self-join, a subquery) read the same, so a
//! refresh swapping an accelerated copy in meanwhile never mixes old and new rows.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::product_table::{ProductData, ProductTable};

/// Held in the session config of one execution (`SessionConfig::set_extension`).
#[derive(Debug, Default)]
pub struct DataPins {
    taken: Mutex<HashMap<usize, ProductData>>,
}

impl DataPins {
    /// `table`'s data as this execution reads it.
    pub fn data(&self, table: &ProductTable) -> ProductData {
        let key = std::ptr::from_ref(table) as usize;
        let Ok(mut taken) = self.taken.lock() else { return table.data() };
        taken.entry(key).or_insert_with(|| table.data()).clone()
    }
}
