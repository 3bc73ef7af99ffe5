//! `mesh_catalog.columns`: the columns of every product the principal may read, as
//! they see them: denied columns are absent, masked ones flagged and typed as served.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::common::Result;
use meshgate_policy::{Action, MeshView};

use super::rows::{Cell, Rows, text, text_list, texts};

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        text("domain", false),
        text("product", false),
        text("column_name", false),
        Field::new("ordinal_position", DataType::Int64, false),
        text("data_type", false),
        Field::new("is_nullable", DataType::Boolean, false),
        text("description", false),
        text_list("tags"),
        text("ml_role", true),
        text("unit", true),
        Field::new("is_key", DataType::Boolean, false),
        Field::new("masked_for_you", DataType::Boolean, false),
    ]))
});

pub(super) fn schema() -> SchemaRef {
    Arc::clone(&SCHEMA)
}

pub(super) fn rows(view: &MeshView) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema());
    for entry in view.products() {
        let product = &entry.product;
        let Some(table) = view.table(&product.domain, &product.name)? else { continue };
        let decision = view.policy().decide(view.principal(), entry);
        let served = table.schema();
        for (position, field) in served.fields().iter().enumerate() {
            let declared = product.schema.iter().flatten().find(|column| &column.name == field.name());
            let masked = decision
                .columns
                .iter()
                .any(|column| &column.name == field.name() && matches!(column.action, Action::Mask(_)));
            let data_type = field.data_type().to_string();
            rows.push(vec![
                text(&product.domain),
                text(&product.name),
                text(field.name()),
                Cell::Int(Some(position as i64 + 1)),
                text(&data_type),
                Cell::Bool(Some(field.is_nullable())),
                text(declared.map_or("", |column| column.description.as_str())),
                texts(declared.map(|column| column.tags.as_slice()).unwrap_or_default()),
                Cell::Str(declared.and_then(|column| column.role).map(|role| role.as_str())),
                Cell::Str(declared.and_then(|column| column.unit.as_deref())),
                Cell::Bool(Some(declared.is_some_and(|column| column.key))),
                Cell::Bool(Some(masked)),
            ])?;
        }
    }
    rows.finish()
}
