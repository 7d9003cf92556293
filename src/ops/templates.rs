//! Checklist versions met while reading many inspections (lists' facts, exports' failed items):
//! each version is loaded once per use case, and a request meets only the few versions its
//! inspections were made with.

use std::collections::HashMap;

use sqlx::AnyConnection;

use super::{Error, Result};
use crate::checklist::TemplateContent;
use crate::store;

#[derive(Default)]
pub(crate) struct Templates(HashMap<(String, i64), TemplateContent>);

impl Templates {
    pub(crate) async fn get(
        &mut self,
        conn: &mut AnyConnection,
        id: &str,
        version: i64,
    ) -> Result<&TemplateContent> {
        let k = (id.to_string(), version);
        if !self.0.contains_key(&k) {
            let v = store::checklists::version_in(conn, id, version)
                .await?
                .ok_or_else(|| {
                    Error::Internal(anyhow::anyhow!("checklist version {id}:{version} missing"))
                })?;
            self.0.insert(k.clone(), v.content);
        }
        Ok(&self.0[&k])
    }
}

/// The failed item codes of a stored evaluation (`{"failed_items": [...]}`), in template order;
/// none when there is no evaluation.
pub(crate) fn failed_codes(evaluation: Option<&str>) -> Vec<String> {
    evaluation
        .and_then(|e| serde_json::from_str::<serde_json::Value>(e).ok())
        .and_then(|v| serde_json::from_value(v["failed_items"].clone()).ok())
        .unwrap_or_default()
}
