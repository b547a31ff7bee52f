//! Throwaway PostgreSQL databases, so that each test and each benchmark run starts empty.

use tokio_postgres::NoTls;

use crate::error::{Error, Result};

/// A database created on the server named by an admin URL, dropped by [`ScratchDatabase::drop`].
#[derive(Debug)]
pub struct ScratchDatabase {
    admin_url: String,
    name: String,
    url: String,
}

/// The URL with its database name replaced (query parameters kept).
fn with_database(url: &str, name: &str) -> Result<String> {
    let scheme_end = url
        .find("://")
        .ok_or_else(|| Error::Config(format!("not a URL: {url}")))?
        + 3;
    let (base, query) = match url.find('?') {
        Some(q) => (&url[..q], &url[q..]),
        None => (url, ""),
    };
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    Ok(format!("{}/{name}{query}", &base[..authority_end]))
}

async fn execute(url: &str, sql: &str) -> Result<()> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(Error::unavailable)?;
    let driver = tokio::spawn(connection);
    let outcome = client.batch_execute(sql).await.map_err(Error::unavailable);
    drop(client);
    let _ = driver.await;
    outcome
}

impl ScratchDatabase {
    /// Creates `<prefix>_<random>` on the server of `admin_url`.
    pub async fn create(admin_url: &str, prefix: &str, random: u64) -> Result<Self> {
        let name = format!("{prefix}_{random:016x}");
        execute(admin_url, &format!("CREATE DATABASE {name}")).await?;
        Ok(Self {
            admin_url: admin_url.to_owned(),
            url: with_database(admin_url, &name)?,
            name,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Drops the database, disconnecting whoever still uses it.
    pub async fn drop(self) -> Result<()> {
        execute(
            &self.admin_url,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_name_is_replaced_and_parameters_kept() {
        let url =
            with_database("postgres://u@127.0.0.1:5432/test?sslmode=disable", "x").expect("valid");
        assert_eq!(url, "postgres://u@127.0.0.1:5432/x?sslmode=disable");
        assert_eq!(
            with_database("postgres://u@h", "x").expect("valid"),
            "postgres://u@h/x"
        );
    }
}
