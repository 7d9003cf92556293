//! Templates and their versions as records: what the store decodes rows into and the views are
//! built from. Pure, no I/O.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::TemplateContent;

/// Lifecycle of a template version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VersionStatus {
    /// Being edited: its content may be replaced (`PUT`), and it can be published. Visible to
    /// admins only.
    Draft,
    /// Immutable. Inspections use published versions and point at the exact version used.
    Published,
}

impl VersionStatus {
    /// The stored name (the serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            VersionStatus::Draft => "draft",
            VersionStatus::Published => "published",
        }
    }

    pub fn parse(s: &str) -> Option<VersionStatus> {
        match s {
            "draft" => Some(VersionStatus::Draft),
            "published" => Some(VersionStatus::Published),
            _ => None,
        }
    }
}

/// A template: a stable code and name; the content lives in its versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Template {
    pub id: String,
    pub code: String,
    pub name: String,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One version without its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionMeta {
    pub template_id: String,
    pub version: i64,
    pub status: VersionStatus,
    pub title: String,
    pub rule_kind: String,
    pub item_count: i64,
    pub key_count: i64,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub published_at: Option<i64>,
    pub published_by: Option<String>,
}

impl VersionMeta {
    /// The id of the version as an audit record: `<template id>/<version>`.
    pub fn record_id(&self) -> String {
        record_id(&self.template_id, self.version)
    }
}

/// `<template id>/<version>`, how audit events name one version.
pub fn record_id(template_id: &str, version: i64) -> String {
    format!("{template_id}/{version}")
}

/// One version with its content.
#[derive(Debug, Clone)]
pub struct Version {
    pub meta: VersionMeta,
    pub content: TemplateContent,
    /// The content exactly as stored, to publish only what was validated.
    pub content_json: String,
}
