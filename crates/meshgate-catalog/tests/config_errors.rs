//! Every configuration mistake is reported, each with its path.

use meshgate_catalog::load_mesh_str;

#[test]
fn reports_every_mistake_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = r#"
catalog: mesh
domains:
  sales:
    owner: sales@corp.example
    products:
      - name: orders
        location: ftp://files.example/orders/
        format: parquet
      - name: orders
        location: data/orders/
        format: parquet
      - name: items
        location: data/items/
        format: parquet
        colour: blue
      - name: returns
        version: "1.2"
        status: archived
        location: data/returns/
        format: parquet
  customers:
    owner: crm@corp.example
    products:
      - name: customer
        location: data/customer/
        format: parquet
        schema:
          - { name: c_custkey, type: int64 }
          - { name: c_email, type: strng }
  supply:
    owner: ""
    products_dir: no/such/dir
"#;
    let errors = load_mesh_str(yaml, dir.path()).unwrap_err();
    let text = errors.to_string();
    let expected = [
        "domains.sales.products.orders.location: unsupported scheme 'ftp'",
        "domains.sales.products.orders: duplicate product 'orders' version 0.1.0 in domain sales",
        "domains.sales.products.items.colour: unknown field `colour`",
        "domains.sales.products.returns.status: unknown variant `archived`",
        "domains.customers.products.customer.schema.c_email.type: unknown type 'strng'",
        "domains.supply.owner: must not be empty",
        "domains.supply.products_dir: cannot read directory",
    ];
    for line in expected {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}

/// Found by the mesh_yaml fuzz target: an empty key at the top was reported at no path.
#[test]
fn an_empty_key_at_the_top_is_reported_at_the_mesh_file() {
    let dir = tempfile::tempdir().unwrap();
    let errors = load_mesh_str("'': FROM", dir.path()).unwrap_err();
    assert_eq!(errors.0.len(), 1, "{errors}");
    assert_eq!(errors.0[0].path, "mesh file");
    assert!(errors.0[0].message.contains("unknown field ``"), "{errors}");
}

#[test]
fn a_valid_mesh_loads_with_relative_locations_resolved() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("domains/sales")).unwrap();
    std::fs::write(
        dir.path().join("domains/sales/orders.yaml"),
        "name: orders\nversion: 1.0.0\nlocation: ../../data/orders/\nformat: parquet\n",
    )
    .unwrap();
    let yaml = "domains:\n  sales:\n    owner: sales@corp.example\n    products_dir: domains/sales\n";
    let config = load_mesh_str(yaml, dir.path()).unwrap();
    assert_eq!(config.catalog, "mesh");
    let product = config.products().next().unwrap();
    assert_eq!(product.qualified_name(), "sales.orders");
    assert_eq!(product.owner, "sales@corp.example");
    assert!(product.location.as_str().ends_with("/data/orders/"), "{}", product.location);
    assert!(!product.location.as_str().contains(".."));
}
