//! The files a configuration is read from: the mesh file, each domain's descriptor
//! folder (every `.yaml`/`.yml` in it), the policy files, the contract files products
//! name and the JWT key files. Read from the mesh file as written, so a mesh that
//! does not validate still names what to watch for its fix.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use serde_norway::Value;

/// What a change to the configuration can touch.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sources {
    /// Files read as a whole.
    files: BTreeSet<PathBuf>,
    /// Descriptor folders: any YAML file in them, and the folder itself.
    folders: BTreeSet<PathBuf>,
}

impl Sources {
    /// The sources of the mesh file at `mesh` (missing or unreadable parts add nothing).
    pub fn of(mesh: &Path) -> Self {
        let mesh = absolute(mesh);
        let base = mesh.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut sources = Sources::default();
        sources.files.insert(mesh.clone());
        let Some(root) = read_yaml(&mesh) else { return sources };
        sources.policies(root.get("governance").and_then(|g| g.get("policies")), &base);
        if let Some(jwt) = root.get("auth").and_then(|auth| auth.get("jwt")) {
            for key in ["public_key_file", "jwks_file"] {
                if let Some(file) = jwt.get(key).and_then(Value::as_str) {
                    sources.files.insert(normalize(&base.join(file)));
                }
            }
        }
        let domains = root.get("domains").and_then(Value::as_mapping).into_iter().flat_map(|m| m.values());
        for domain in domains {
            sources.policies(domain.get("policies"), &base);
            for product in domain.get("products").and_then(Value::as_sequence).into_iter().flatten() {
                sources.contract(product, &base);
            }
            if let Some(folder) = domain.get("products_dir").and_then(Value::as_str) {
                let folder = normalize(&base.join(folder));
                for descriptor in descriptors(&folder) {
                    if let Some(product) = read_yaml(&descriptor) {
                        sources.contract(&product, &folder);
                    }
                }
                sources.folders.insert(folder);
            }
        }
        sources
    }

    fn policies(&mut self, list: Option<&Value>, base: &Path) {
        for file in list.and_then(Value::as_sequence).into_iter().flatten().filter_map(Value::as_str) {
            self.files.insert(normalize(&base.join(file)));
        }
    }

    fn contract(&mut self, product: &Value, base: &Path) {
        if let Some(file) = product.get("contract").and_then(Value::as_str) {
            self.files.insert(normalize(&base.join(file)));
        }
    }

    /// Whether a change at `path` (as the watcher reports it) can change the configuration.
    pub fn touches(&self, path: &Path) -> bool {
        let path = normalize(path);
        if self.files.contains(&path) || self.folders.contains(&path) {
            return true;
        }
        let Some(parent) = path.parent() else { return false };
        (self.folders.contains(parent) && is_yaml(&path))
            // A Kubernetes ConfigMap or Secret volume updates its files by pointing its
            // `..data` link at a new folder: the files' own paths see no event.
            || (path.file_name().is_some_and(|name| name == "..data")
                && self.files.iter().chain(&self.folders).any(|file| file.parent() == Some(parent)))
    }

    /// The folders to watch: each file's folder, each descriptor folder and the folder
    /// holding it (so its creation, removal or renaming is seen). A folder that does not
    /// exist is watched through its nearest existing ancestor.
    pub fn folders_to_watch(&self) -> BTreeSet<PathBuf> {
        let parents = self.files.iter().chain(&self.folders).filter_map(|path| path.parent());
        self.folders.iter().map(PathBuf::as_path).chain(parents).filter_map(existing_ancestor).collect()
    }
}

fn read_yaml(path: &Path) -> Option<Value> {
    serde_norway::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn descriptors(folder: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(folder) else { return Vec::new() };
    entries.filter_map(Result::ok).map(|entry| entry.path()).filter(|path| is_yaml(path)).collect()
}

fn is_yaml(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
}

fn existing_ancestor(path: &Path) -> Option<PathBuf> {
    path.ancestors().find(|dir| dir.is_dir()).map(Path::to_path_buf)
}

fn absolute(path: &Path) -> PathBuf {
    normalize(&std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()))
}

/// `a/./b/../c` → `a/c`, without touching the file system (paths in events are
/// spelled the way their folder was watched).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn the_demo_mesh_names_its_descriptor_folder_policies_and_contracts() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(
            &root.join("mesh.yaml"),
            "governance: { policies: [policies/mesh.yaml] }\n\
             auth: { jwt: { jwks_file: keys/jwks.json } }\n\
             domains:\n  sales:\n    owner: x\n    products_dir: domains/sales/products\n    policies: [domains/sales/p.yaml]\n\
             \x20 hr:\n    owner: y\n    products: [{ name: staff, contract: contracts/staff.yaml }]\n",
        );
        write(&root.join("domains/sales/products/orders.yaml"), "name: orders\ncontract: ../orders.odcs.yaml\n");
        let sources = Sources::of(&root.join("mesh.yaml"));
        for touched in [
            "mesh.yaml",
            "policies/mesh.yaml",
            "keys/jwks.json",
            "domains/sales/p.yaml",
            "contracts/staff.yaml",
            "domains/sales/orders.odcs.yaml",
            "domains/sales/products/new.yml",
            "domains/sales/products",
        ] {
            assert!(sources.touches(&root.join(touched)), "{touched}");
        }
        // The mesh is in a Kubernetes ConfigMap volume.
        assert!(sources.touches(&root.join("..data")));
        for untouched in ["data/orders/part-0.parquet", "domains/sales/products/notes.txt", "other.yaml", "data/..data"]
        {
            assert!(!sources.touches(&root.join(untouched)), "{untouched}");
        }
        let folders = sources.folders_to_watch();
        assert!(folders.contains(&root.join("domains/sales/products")));
        assert!(folders.contains(&root.join("domains/sales")));
        // keys/ and contracts/ do not exist: watched through the mesh's folder.
        assert!(folders.contains(root));
        assert!(!folders.contains(&root.join("keys")));
    }

    #[test]
    fn a_mesh_file_that_does_not_parse_is_still_watched() {
        let dir = tempfile::tempdir().unwrap();
        let mesh = dir.path().join("mesh.yaml");
        write(&mesh, "domains: [unclosed");
        let sources = Sources::of(&mesh);
        assert!(sources.touches(&mesh));
        assert_eq!(sources.folders_to_watch(), BTreeSet::from([dir.path().to_path_buf()]));
    }

    #[test]
    fn dots_in_paths_are_resolved() {
        assert_eq!(normalize(Path::new("/a/./b/../c/x.yaml")), PathBuf::from("/a/c/x.yaml"));
    }
}
