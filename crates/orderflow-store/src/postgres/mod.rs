//! The PostgreSQL backend. Being written: see the helper's task.

use crate::error::{Error, Result};

#[derive(Debug)]
pub struct PostgresStore;

impl PostgresStore {
    pub async fn connect(_url: &str) -> Result<Self> {
        Err(Error::Config("PostgreSQL backend not written yet".into()))
    }
}
