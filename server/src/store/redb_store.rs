//! Placeholder: the engine lands on the `store` branch.

use std::path::Path;

use super::{
    Batch, EntryStore, IdempotencyRecord, IdempotencyStore, LeafIndex, LogStore, StoreError,
    StoreResult, TileStore,
};

/// Not yet implemented.
#[derive(Debug)]
pub struct RedbStore;

impl RedbStore {
    /// Not yet implemented: always an error.
    pub fn open(_dir: &Path) -> StoreResult<Self> {
        Err(StoreError::Io("engine not built yet".into()))
    }
}

impl EntryStore for RedbStore {
    fn entry(&self, _: u64) -> StoreResult<Option<Vec<u8>>> {
        Ok(None)
    }
    fn entries(&self, _: u64, _: u64) -> StoreResult<Vec<Vec<u8>>> {
        Ok(vec![])
    }
}
impl TileStore for RedbStore {
    fn tile(&self, _: u8, _: u64) -> StoreResult<Option<Vec<u8>>> {
        Ok(None)
    }
}
impl IdempotencyStore for RedbStore {
    fn idempotency(&self, _: &[u8; 32]) -> StoreResult<Option<IdempotencyRecord>> {
        Ok(None)
    }
}
impl LeafIndex for RedbStore {
    fn index_of(&self, _: &sealtrail_spec::Hash) -> StoreResult<Option<u64>> {
        Ok(None)
    }
}
impl LogStore for RedbStore {
    fn checkpoint(&self) -> StoreResult<Option<Vec<u8>>> {
        Ok(None)
    }
    fn tree_size(&self) -> StoreResult<u64> {
        Ok(0)
    }
    fn commit(&self, _: &Batch) -> StoreResult<()> {
        Err(StoreError::Io("engine not built yet".into()))
    }
    fn engine(&self) -> &'static str {
        "none"
    }
}
