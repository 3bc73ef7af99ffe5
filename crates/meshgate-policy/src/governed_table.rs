//! `GovernedTable`: a product as one principal may see it. Its scan is
//! `product files → policy row filter → column masks → barrier`; user filters reach
//! the files only when they are plain comparisons that cannot fail, on unmasked columns.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{DFSchema, Result};
use datafusion::datasource::TableType;
use datafusion::logical_expr::{Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use meshgate_catalog::ProductEntry;

use crate::barrier::BarrierExec;

/// One output column: its expression over the raw columns.
#[derive(Debug, Clone)]
pub(crate) struct Output {
    pub name: String,
    pub expr: Expr,
    pub raw_index: usize,
    /// Served as stored: user comparisons on it may prune files.
    pub unmasked: bool,
}

#[derive(Debug)]
pub struct GovernedTable {
    entry: Arc<ProductEntry>,
    schema: SchemaRef,
    filter: Expr,
    /// The row filter keeps every row: no row is hidden from this principal.
    all_rows: bool,
    outputs: Vec<Output>,
    /// The scan also yields the provenance columns (`_source_file`, `_source_row`).
    provenance: bool,
}

impl GovernedTable {
    pub(crate) fn new(
        entry: Arc<ProductEntry>,
        schema: SchemaRef,
        filter: Expr,
        all_rows: bool,
        outputs: Vec<Output>,
    ) -> Self {
        Self { entry, schema, filter, all_rows, outputs, provenance: false }
    }

    /// This table with the provenance columns after its own: where each row was read
    /// (docs/ml.md). They say nothing a row filter or mask hides: the file and position
    /// of a row the principal sees anyway.
    ///
    /// Refused where they would: row positions count the rows between, so not when a
    /// row filter may hide rows from this principal; and file paths hold the values of
    /// partition columns, so not when one of those is masked for them.
    pub fn with_provenance(mut self) -> Result<Self> {
        use datafusion::arrow::datatypes::Schema;
        let name = self.entry.product.qualified_name();
        if !self.all_rows {
            return datafusion::common::plan_err!(
                "provenance columns are not available for {name}: a row filter applies to you, and row positions \
                 would tell how many rows it hides"
            );
        }
        if let Some((column, _)) = self.entry.product.partitions.iter().find(|(column, _)| !self.unmasked(column)) {
            return datafusion::common::plan_err!(
                "provenance columns are not available for {name}: its file paths hold the values of {column}, \
                 which is masked for you"
            );
        }
        let mut fields: Vec<_> = self.schema.fields().iter().cloned().collect();
        let raw_columns = self.entry.table.schema().fields().len();
        for (offset, field) in meshgate_catalog::provenance_fields().into_iter().enumerate() {
            if self.schema.field_with_name(field.name()).is_ok() {
                return datafusion::common::plan_err!(
                    "provenance columns are not available for {}: it has a column named {} of its own",
                    self.entry.product.qualified_name(),
                    field.name()
                );
            }
            // After the raw columns, where the provenance scan puts them.
            let raw_index = raw_columns + offset;
            let name = field.name().clone();
            self.outputs.push(Output { expr: Expr::Column(name.as_str().into()), name, raw_index, unmasked: false });
            fields.push(Arc::new(field));
        }
        self.schema = Arc::new(Schema::new_with_metadata(fields, self.schema.metadata().clone()));
        self.provenance = true;
        Ok(self)
    }

    fn unmasked(&self, name: &str) -> bool {
        self.outputs.iter().any(|o| o.unmasked && o.name == name)
    }

    pub fn product(&self) -> &ProductEntry {
        &self.entry
    }

    /// What governs this principal's reads, as text: the row filter and each column's
    /// expression, attribute values bound. Two reads governed alike give the same
    /// text; a changed policy changes it (training manifests fingerprint it).
    pub fn rules_text(&self) -> String {
        let mut text = format!("{}: rows where {}", self.entry.product.qualified_name(), self.filter);
        for output in &self.outputs {
            text.push_str(&format!("\n{} = {}", output.name, output.expr));
        }
        text
    }

    /// Whether scans carry provenance columns (and so read the files, accelerated or not).
    pub fn provenance(&self) -> bool {
        self.provenance
    }

    /// Whether the row filter may hide rows from this principal: then figures about
    /// the whole product (row counts, sizes, measured quality values) are not theirs.
    pub fn hides_rows(&self) -> bool {
        !self.all_rows
    }

    /// Whether `expr` may be evaluated below the row filter. When no row is hidden,
    /// any deterministic expression over unmasked columns may: it sees only what the
    /// principal sees. Otherwise only a comparison of an unmasked column with a literal
    /// of exactly its type, which can neither fail nor observe anything but its result.
    fn prunable(&self, expr: &Expr) -> bool {
        if self.all_rows {
            return !expr.is_volatile() && expr.column_refs().iter().all(|column| self.unmasked(&column.name));
        }
        let raw = self.entry.table.schema();
        let unmasked_type = |expr: &Expr| match expr {
            Expr::Column(column) => self
                .outputs
                .iter()
                .find(|o| o.unmasked && o.name == column.name)
                .map(|o| raw.field(o.raw_index).data_type().clone()),
            _ => None,
        };
        let literal_of = |expr: &Expr, ty: &datafusion::arrow::datatypes::DataType| matches!(expr, Expr::Literal(value, _) if value.data_type() == *ty);
        match expr {
            Expr::BinaryExpr(binary) => {
                let comparison = matches!(
                    binary.op,
                    Operator::Eq | Operator::NotEq | Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq
                );
                let pair = |a: &Expr, b: &Expr| unmasked_type(a).is_some_and(|ty| literal_of(b, &ty));
                comparison && (pair(&binary.left, &binary.right) || pair(&binary.right, &binary.left))
            }
            Expr::IsNull(inner) | Expr::IsNotNull(inner) => unmasked_type(inner).is_some(),
            Expr::InList(in_list) => {
                unmasked_type(&in_list.expr).is_some_and(|ty| in_list.list.iter().all(|item| literal_of(item, &ty)))
            }
            Expr::Between(between) => unmasked_type(&between.expr)
                .is_some_and(|ty| literal_of(&between.low, &ty) && literal_of(&between.high, &ty)),
            _ => false,
        }
    }
}

#[async_trait]
impl TableProvider for GovernedTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        // Inexact: DataFusion still filters above the barrier; the files only prune.
        Ok(filters
            .iter()
            .map(|filter| {
                if self.prunable(filter) {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // A limit is never pushed below the row filter: it would count hidden rows.
        let wanted: Vec<&Output> = match projection {
            Some(indices) => indices.iter().filter_map(|&i| self.outputs.get(i)).collect(),
            None => self.outputs.iter().collect(),
        };
        let mut raw_columns = BTreeSet::new();
        let raw_schema = self.entry.table.schema();
        let mut note = |expr: &Expr| {
            for column in expr.column_refs() {
                if let Ok(index) = raw_schema.index_of(&column.name) {
                    raw_columns.insert(index);
                }
            }
        };
        note(&self.filter);
        for output in &wanted {
            note(&output.expr);
        }
        let raw_projection: Vec<usize> = raw_columns.into_iter().collect();
        let prunable: Vec<Expr> = filters.iter().filter(|f| self.prunable(f)).cloned().collect();
        // One execution reads one version of the product's data, however often it scans it.
        let data = match state.config().get_extension::<meshgate_catalog::DataPins>() {
            Some(pins) => pins.data(&self.entry.table),
            None => self.entry.table.data(),
        };
        let source = if self.provenance {
            // Provenance names files and row positions: it reads the files, accelerated or not.
            meshgate_catalog::with_provenance(data.scan_files(state, Some(&raw_projection), &prunable, None).await?)?
        } else {
            data.scan(state, Some(&raw_projection), &prunable, None).await?
        };
        let source_schema = DFSchema::try_from(source.schema().as_ref().clone())?;
        // A filter that keeps every row is left out: it would only blur the statistics.
        let (mut visible_rows, mut filter_cannot_fail) = (None, true);
        let filtered: Arc<dyn ExecutionPlan> = if self.all_rows {
            source
        } else {
            let predicate = state.create_physical_expr(self.filter.clone(), &source_schema)?;
            let every_column = vec![true; source.schema().fields().len()];
            filter_cannot_fail = crate::cannot_fail::cannot_fail(&predicate, &source.schema(), &every_column);
            if !self.provenance {
                visible_rows = rows_kept(state, &data, &self.filter);
            }
            Arc::new(FilterExec::try_new(predicate, source)?)
        };
        let mut expressions = Vec::with_capacity(wanted.len());
        for output in &wanted {
            expressions.push((state.create_physical_expr(output.expr.clone(), &source_schema)?, output.name.clone()));
        }
        let masked: Arc<dyn ExecutionPlan> = Arc::new(ProjectionExec::try_new(expressions, filtered)?);
        let product = self.entry.product.qualified_name().into();
        let unmasked: Vec<bool> = wanted.iter().map(|o| o.unmasked).collect();
        // With no row hidden, the barrier may let statistics and filters on unmasked
        // columns through: they describe only what the principal can see.
        let barrier = if self.all_rows {
            BarrierExec::new(product, masked, Some(unmasked))
        } else {
            let barrier = BarrierExec::new(product, masked, None).with_visible_rows(visible_rows);
            // Filters below a row filter that can fail would choose the rows it fails on.
            if filter_cannot_fail { barrier.with_unmasked(unmasked) } else { barrier }
        };
        Ok(Arc::new(barrier))
    }
}

/// The rows `filter` (a row filter) keeps of an accelerated copy: counted in memory
/// once per copy and filter, so that joins with this product are ordered as they are
/// for a principal who sees every row. `None` for files and spilled copies (counting
/// would read them).
fn rows_kept(state: &dyn Session, data: &meshgate_catalog::ProductData, filter: &Expr) -> Option<usize> {
    let copy = data.accelerated()?;
    let plan = |schema: &SchemaRef| {
        let schema = DFSchema::try_from(schema.as_ref().clone())?;
        state.create_physical_expr(filter.clone(), &schema)
    };
    // A filter that fails here fails the query itself, with its own error.
    copy.rows_where(filter, plan).ok().flatten().and_then(|rows| usize::try_from(rows).ok())
}
