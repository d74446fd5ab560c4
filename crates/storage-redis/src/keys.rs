//! The key schema. Every key of a tenant carries `{<tenant>}`, so all of a tenant's keys share
//! one slot. On a Cluster the namespace itself is the hash tag (`{<namespace>}:...`: the first
//! braces decide the slot), so every key of a namespace shares one slot: a unit may check a
//! globally unique value (a slug, a token) in the same script as it writes a tenant's record.

use storage_core::{Result, StorageError, TenantId};

/// Builds the keys of one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    namespace: String,
}

impl Keys {
    /// Keys under `namespace` (letters, digits, `_`, `-`, `.`), one slot per tenant.
    pub fn new(namespace: &str) -> Result<Self> {
        let ok =
            !namespace.is_empty() && namespace.len() <= 64 && namespace.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
        if !ok {
            return Err(StorageError::invalid("redis namespace", format!("`{namespace}` must be 1 to 64 of a-z, A-Z, 0-9, `_`, `-`, `.`")));
        }
        Ok(Self { namespace: namespace.to_owned() })
    }

    /// Keys under `namespace` that all share one Cluster slot (`{<namespace>}:...`).
    pub fn single_slot(namespace: &str) -> Result<Self> {
        Self::new(namespace).map(|keys| Self { namespace: format!("{{{}}}", keys.namespace) })
    }

    /// The first segment of every key (the namespace, in braces for [`Keys::single_slot`]).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// `<ns>:{<tenant>}:<store>`, the prefix of a store's keys in a tenant.
    fn store(&self, tenant: &TenantId, store: &str) -> String {
        format!("{}:{{{}}}:{store}", self.namespace, tenant.as_str())
    }

    /// A record: `<ns>:{<tenant>}:<store>:<id>`.
    pub fn record(&self, tenant: &TenantId, store: &str, id: &str) -> String {
        format!("{}{id}", self.record_prefix(tenant, store))
    }

    /// What every record key of a store in a tenant starts with.
    pub fn record_prefix(&self, tenant: &TenantId, store: &str) -> String {
        format!("{}:", self.store(tenant, store))
    }

    /// The sorted set of every record id of a store in a tenant (lexicographic).
    pub fn all(&self, tenant: &TenantId, store: &str) -> String {
        format!("{}#", self.store(tenant, store))
    }

    /// The sorted set of an index: members `<encoded value>\0<id>`, all of score 0, so that
    /// lexicographic order is (value, id) order.
    pub fn index(&self, tenant: &TenantId, store: &str, column: &str) -> String {
        format!("{}#{column}", self.store(tenant, store))
    }

    /// The expiry index of a store in a tenant (members `<encoded instant>\0<id>`).
    pub fn expiries(&self, tenant: &TenantId, store: &str) -> String {
        format!("{}#@expires", self.store(tenant, store))
    }

    /// The index values of every record of an expiring store, kept after the record's own key
    /// has been collected by its `PEXPIREAT`, so a sweep can remove its index entries.
    pub fn saved(&self, tenant: &TenantId, store: &str) -> String {
        format!("{}#@saved", self.store(tenant, store))
    }

    /// The directory of a globally unique index: encoded value → `<tenant>\0<id>`. It has no
    /// tenant hash tag (it spans tenants).
    pub fn directory(&self, store: &str, column: &str) -> String {
        format!("{}:{store}#{column}@global", self.namespace)
    }

    /// The set of tenants that have records of `store` (for cross-tenant scans and sweeps).
    pub fn tenants(&self, store: &str) -> String {
        format!("{}:{store}:tenants", self.namespace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_a_tenant_carries_its_hash_tag_and_records_never_collide_with_indexes() {
        let keys = Keys::new("aragora").expect("namespace");
        let t = TenantId::new("acme").expect("tenant");
        assert_eq!(keys.record(&t, "integrations", "ws-1"), "aragora:{acme}:integrations:ws-1");
        for key in [
            keys.all(&t, "integrations"),
            keys.index(&t, "integrations", "user_id"),
            keys.expiries(&t, "webhook_events"),
            keys.saved(&t, "engine_probe"),
        ] {
            assert!(key.starts_with("aragora:{acme}:"), "{key}");
            assert!(key.contains('#'), "index keys are outside the record key space: {key}");
        }
        assert!(Keys::new("a:b").is_err() && Keys::new("").is_err() && Keys::single_slot("{a}").is_err());
        let cluster = Keys::single_slot("aragora").expect("namespace");
        assert_eq!(cluster.record(&t, "integrations", "ws-1"), "{aragora}:{acme}:integrations:ws-1");
        assert_eq!(cluster.directory("debates", "slug"), "{aragora}:debates#slug@global");
    }
}
